"""Reference implementations for the course book "LLMs: from attention to generation".

One module per idea; a module imports only from the rows below it (finetune also loads pretrain's checkpoint):
    widgets, exercises, pretrain, finetune    the chapters' faces: widgets, checks, `python -m` scripts
    training, hf                              the train loop; weights to and from torch and transformers
    models                                    Encoder (BERT-like) and its heads
    layers, objectives                        eq. (2)-(4); Word2Vec, MLM and NSP data
    attention, data, plots                    eq. (1) and masks; corpus, splits, tokenizer; matplotlib helpers
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
