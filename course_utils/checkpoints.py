"""The course's tiny checkpoints: their configs, safetensors files with the config in the metadata, the loaders
`load_tiny_bert`, `load_tiny_gpt`, `load_tiny_bart`, and the model card written beside each file.

A checkpoint's metadata holds "config" (json of `asdict(config)`; the shipped files hold the constructor's
keyword arguments, which load the same way) and "card" (json of what `python -m course_utils.pretrain` recorded).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Callable

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from ._validate import check_instance, check_path
from .data import ASSETS
from .models import (
    Decoder, DecoderConfig, Encoder, EncoderConfig, EncoderDecoder, EncoderDecoderConfig, EncoderForPreTraining,
)

TINY_BERT_PATH = ASSETS / "tiny_bert.safetensors"
TINY_GPT_PATH = ASSETS / "tiny_gpt.safetensors"
TINY_BART_PATH = ASSETS / "tiny_bart.safetensors"
TINY_BERT_CONFIG = EncoderConfig(vocab_size=8000, d_model=128, n_heads=4, n_layers=4, d_ff=512, max_len=64)
TINY_GPT_CONFIG = DecoderConfig(vocab_size=8000, d_model=128, n_heads=4, n_layers=4, d_ff=512, max_len=128)
TINY_BART_CONFIG = EncoderDecoderConfig(vocab_size=8000, d_model=128, n_heads=4, n_encoder_layers=2,
                                        n_decoder_layers=3, d_ff=512, max_len=128)  # 3 decoder layers copy sooner
CARD_KEYS = ("config", "recipe", "wall_minutes", "threads", "final_loss", "metrics")  # what the model card prints


def sha256(path: Path | str) -> str:
    """The file's SHA-256: results files record the checkpoint they were measured on, and tests compare it."""
    return hashlib.sha256(check_path("path", path).read_bytes()).hexdigest()


def read_metadata(path: Path | str) -> dict[str, str]:
    """A safetensors file's metadata (a dict of strings); a clear ValueError for a file that is not safetensors."""
    path = check_path("path", path)
    try:
        with safe_open(str(path), "pt") as f:
            return f.metadata() or {}
    except SafetensorError as err:
        raise ValueError(f"{path} is not a safetensors checkpoint: {err}") from None


def load_card(path: Path | str) -> dict:
    """The training record a checkpoint carries: config, recipe, wall time, final loss, held-out metrics."""
    metadata = read_metadata(path)
    if "card" not in metadata:
        raise ValueError(f"{path} has no 'card' in its metadata: not a checkpoint of course_utils.pretrain")
    return json.loads(metadata["card"])


def load_checkpoint(path: Path | str, config_class: type, build: Callable[[object], nn.Module], command: str
                    ) -> nn.Module:
    """A checkpoint, in eval mode; raises if the file's weights do not match the config it carries."""
    path = check_path("path", path, f": rebuild it with `python -m course_utils.pretrain {command}`")
    if not (isinstance(config_class, type) and is_dataclass(config_class)):
        raise TypeError(f"config_class must be a model Config dataclass (e.g. DecoderConfig), got {config_class!r}")
    check_instance("build", build, Callable, "callable config -> model (e.g. Decoder.from_config)")
    metadata = read_metadata(path)
    if "config" not in metadata:
        raise ValueError(f"{path} has no 'config' in its metadata: not a course_utils checkpoint")
    try:
        config = json.loads(metadata["config"])
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} has a 'config' that is not JSON: {err}") from None
    try:
        model = build(config_class(**config))
        load_model(model, str(path), strict=True)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"{path} does not match its config {config}: {err}") from None
    return model.eval()


def save_checkpoint(model: nn.Module, out: Path | str, config, card: dict, title: str, command: str,
                    history: list[float]) -> None:
    """The checkpoint (asdict(config) and the card in its metadata) and its model card (.md) beside it."""
    check_instance("model", model, nn.Module, "torch.nn.Module")
    if not is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a model Config dataclass (model.config), got {type(config).__name__}")
    check_instance("card", card, dict)
    if set(CARD_KEYS) - set(card):
        raise ValueError(f"card must hold {CARD_KEYS}, missing {sorted(set(CARD_KEYS) - set(card))}")
    check_instance("out", out, (str, os.PathLike), "file path (str or pathlib.Path)")
    if Path(out).is_dir() or not Path(out).parent.is_dir():
        raise ValueError(f"out must be a file path in an existing folder, got {out}")
    check_instance("history", history, (list, tuple), "list of losses")
    out = Path(out)
    save_model(model, str(out), metadata={"config": json.dumps(asdict(config)), "card": json.dumps(card)})
    out.with_suffix(".md").write_text(_model_card(title, command, card, history))


def load_tiny_bert(path: Path | str = TINY_BERT_PATH) -> EncoderForPreTraining:
    """The shipped tiny BERT (MLM + NSP heads), in eval mode."""
    return load_checkpoint(path, EncoderConfig, lambda c: EncoderForPreTraining(Encoder.from_config(c)), "bert")


def load_tiny_gpt(path: Path | str = TINY_GPT_PATH) -> Decoder:
    """The shipped tiny GPT, in eval mode."""
    return load_checkpoint(path, DecoderConfig, Decoder.from_config, "gpt")


def load_tiny_bart(path: Path | str = TINY_BART_PATH) -> EncoderDecoder:
    """The shipped tiny BART, in eval mode."""
    return load_checkpoint(path, EncoderDecoderConfig, EncoderDecoder.from_config, "bart")


def _model_card(title: str, command: str, card: dict, history: list[float]) -> str:
    """The model card: what was trained, how, how long, and how well it does on held-out plays."""
    every = max(1, len(history) // 10)
    curve = ", ".join(f"{i}: {sum(history[i:i + every]) / len(history[i:i + every]):.3f}"
                      for i in range(0, len(history), every))
    lines = [f"# {title}", "", f"Written by `python -m course_utils.pretrain {command}` on the training plays of "
             "`course_utils.data`.", "",
             f"- config: `{json.dumps(card['config'])}`", f"- recipe: `{json.dumps(card['recipe'])}`"]
    if "n_instances" in card:
        lines.append(f"- training instances: {card['n_instances']}")
    lines += [f"- wall time: {card['wall_minutes']} min on {card['threads']} CPU threads",
              f"- loss (mean over the last 100 steps): {card['final_loss']}",
              f"- loss curve (mean per tenth of training): {curve}",
              f"- held-out metrics: `{json.dumps(card['metrics'])}`", ""]
    return "\n".join(lines)
