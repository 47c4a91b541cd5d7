"""Reference implementations for the course book "LLMs: from attention to generation".

One module per idea; a module imports only from the rows below it (finetune also loads pretrain's checkpoint):
    widgets, exercises, pretrain, finetune    the chapters' faces: widgets, checks, `python -m` scripts
    generation, training, hf                  decoding (greedy, beam, sampling) with a KV cache; the train loop;
                                              weights to and from torch and transformers
    models                                    Encoder (BERT-like) and its heads, Decoder (GPT-like), EncoderDecoder
                                              (BART-like)
    layers, objectives                        eq. (2)-(4); Word2Vec, MLM and NSP data; BART's noising
    attention, data, plots                    eq. (1), masks, KV cache; corpus, splits, tokenizers, the date task;
                                              matplotlib helpers
"""

import random

import numpy as np
import torch

__version__ = "0.1.0"


def set_seed(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU) so a notebook re-executes identically; returns a torch.Generator."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r} of type {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
