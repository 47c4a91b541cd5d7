"""The tiny GPT in the page: one script with browser_gpt.js (tokenizer and forward pass) and the checkpoint's numbers.

    python -m course_utils.browser_gpt OUT_DIR      writes OUT_DIR/tiny_gpt.js (the book's build runs it each time,
                                                     so the page never drifts from the checkpoint)

The script is classic JavaScript, loaded by a <script> element, so that it also loads from file:// (a fetch would
not). A temperature explorer whose page_model is "tiny_gpt" adds that element once it has drawn its figure, in a
page of the built book; the script sets globalThis.courseTinyGPT = {tokenizer, model, sample} and fires the event
"course-tiny-gpt", and the explorer, if no kernel has answered, then reads any prompt typed into it, and samples.
The weights are the checkpoint's float32 bytes (base64): the page computes what PyTorch computes, to about 1e-7.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from ._validate import check_instance
from .checkpoints import TINY_GPT_CONFIG, TINY_GPT_PATH, load_tiny_gpt
from .data import BPE_PATH, BPE_SPECIAL_TOKENS, load_bpe
from .models import Decoder

SCRIPT = Path(__file__).with_name("browser_gpt.js")
PAGE_MODEL = "tiny_gpt"  # the name a TemperatureExplorer carries when the page can run its model
FILE_NAME = f"{PAGE_MODEL}.js"  # in the book's _static/, where the explorer looks for it


def page_data(model: Decoder | None = None) -> dict:
    """What browser_gpt.js's load() reads: the config, the BPE (vocabulary, merges, special ids), the weights."""
    model = load_tiny_gpt() if model is None else model
    tokenizer = json.loads(BPE_PATH.read_text())  # the file load_bpe() reads: its vocabulary holds the special tokens
    vocab = sorted(tokenizer["model"]["vocab"].items(), key=lambda item: item[1])
    if [i for _, i in vocab] != list(range(len(vocab))):
        raise ValueError(f"{BPE_PATH} must number its tokens 0 .. V - 1 without gaps")
    tensors, chunks, offset = {}, [], 0
    for name, tensor in model.state_dict().items():  # tok.weight once: the LM head is tied to it
        data = tensor.detach().to(torch.float32).contiguous().numpy().tobytes()  # little-endian, as the page reads
        tensors[name] = [offset, tensor.numel()]
        chunks.append(data)
        offset += len(data)
    c = model.config
    return {
        "name": PAGE_MODEL,
        "config": {"vocab_size": c.vocab_size, "d_model": c.d_model, "n_heads": c.n_heads, "n_layers": c.n_layers,
                   "d_ff": c.d_ff, "max_len": c.max_len, "eps": c.eps},
        "tokenizer": {"vocab": [token for token, _ in vocab],
                      "merges": [" ".join(pair) if isinstance(pair, list) else pair
                                 for pair in tokenizer["model"]["merges"]],
                      "special": {token: BPE_SPECIAL_TOKENS.index(token) for token in BPE_SPECIAL_TOKENS}},
        "tensors": tensors,
        "weights": base64.b64encode(b"".join(chunks)).decode(),
    }


def write_script(folder: Path | str) -> Path:
    """folder/tiny_gpt.js: browser_gpt.js, then the shipped checkpoint's numbers, loaded into courseTinyGPT."""
    check_instance("folder", folder, (str, os.PathLike), "folder path (str or pathlib.Path)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    loader = (f"globalThis.courseTinyGPT = BrowserGPT.load({json.dumps(page_data(), separators=(',', ':'))});\n"
              'globalThis.dispatchEvent?.(new Event("course-tiny-gpt"));\n')
    path.write_text(SCRIPT.read_text() + loader)
    return path


def runs_in_page(model: nn.Module, tokenizer) -> bool:
    """Is this the shipped tiny GPT with its BPE, the pair the page can run? (the same weights, bit for bit)"""
    if not (isinstance(model, Decoder) and model.config == TINY_GPT_CONFIG and hasattr(tokenizer, "to_str")):
        return False
    if tokenizer.to_str() != load_bpe().to_str():
        return False
    shipped = load_tiny_gpt(TINY_GPT_PATH).state_dict()
    return all(torch.equal(tensor, shipped[name]) for name, tensor in model.state_dict().items())


def main(argv: list[str]) -> None:
    """python -m course_utils.browser_gpt OUT_DIR"""
    if len(argv) != 1:
        raise SystemExit("usage: python -m course_utils.browser_gpt OUT_DIR")
    print(f"wrote {write_script(argv[0])}")


if __name__ == "__main__":
    main(sys.argv[1:])
