"""Checks for the exercises of chapter 06 (the causal decoder): the causal mask of new queries behind cached keys,
the log-likelihood of a sequence under the factorisation log P(x) = sum_i log P(x_i | x_<i), and the language
modelling loss with shifted targets over a right-padded batch.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..attention import causal_mask
from ..objectives import IGNORE_INDEX
from . import compare, lengths_mask, randint, randn

# ---------------------------------------------------------------- exercise 1: the causal mask behind a cache


def check_cached_causal_mask(fn: Callable[[int, int], torch.Tensor]) -> bool:
    """fn(L, T) = boolean (L, T) mask for L new queries after T - L cached tokens: True where query i may see key j.

    The queries are the positions T - L .. T - 1 of the sequence, the keys all its positions 0 .. T - 1, so query i
    sees key j iff j <= T - L + i (T = L is the square mask of chapter 1). Reference: attention.causal_mask(L, T).
    """
    cases = [(4, 4), (1, 1), (1, 6), (3, 7), (2, 3), (5, 12)]  # square; one token, then generation steps; a chunk
    return compare("causal mask with a cache", fn, causal_mask, cases, atol=0)


# ---------------------------------------------------------------- exercise 2: log P(x) from the logits


def sequence_log_likelihood(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The reference: (B,) sum over i >= 2 of log P(x_i | x_<i), read from the logits of positions 1 .. L - 1."""
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).double(), ids[:, 1:], reduction="none")  # (B, L - 1)
    return -nll.sum(dim=-1)


def check_sequence_log_likelihood(fn: Callable) -> bool:
    """fn(logits, ids) = (B,) log P(x_2 .. x_L | x_1) = sum_{i=2..L} log P(x_i | x_<i), one value per sequence.

    ids (B, L) are the sequences, logits (B, L, V) the model's output on them: logits[:, t] scores the token after
    position t, i.e. x_{t+2} in the lecture's 1-based indexing. The first token is given (no logits predict it).
    One case has large logits: use log_softmax, not the log of a softmax that rounded to 0.
    """
    def case(B: int, L: int, V: int, seed: int, scale: float = 1.0):
        return randn(B, L, V, seed=seed, scale=scale), randint(V, B, L, seed=seed + 1)

    cases = [
        case(1, 5, 7, seed=1),
        case(3, 8, 11, seed=2),
        case(2, 2, 5, seed=3),  # two tokens: one factor, log P(x_2 | x_1)
        case(4, 6, 50, seed=4, scale=40.0),  # confident logits: some probabilities underflow to 0 in float32
        case(2, 12, 30, seed=5, scale=3.0),
    ]
    return compare("log-likelihood of a sequence", fn, sequence_log_likelihood, cases, atol=1e-3)


# ---------------------------------------------------------------- exercise 3: the LM loss with shifted targets


def lm_loss(logits: torch.Tensor, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The reference: mean cross-entropy of the next token over the real (not padding) targets ids[:, 1:]."""
    targets = ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, IGNORE_INDEX)  # (B, L - 1)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX)


def check_lm_loss(fn: Callable) -> bool:
    """fn(logits, ids, attention_mask) = the mean of -log P(x_i | x_<i) over every real target token of the batch.

    ids (B, L) is a right-padded batch, attention_mask (B, L) has 1 for a real token and 0 for padding, logits
    (B, L, V) the model's output: logits[:, t] predicts ids[:, t + 1]. A target that is padding is left out, and
    the mean is over the remaining targets of the whole batch (as F.cross_entropy with ignore_index=-100).
    """
    def case(lengths: list[int], L: int, V: int, seed: int, scale: float = 1.0):
        ids, mask = randint(V, len(lengths), L, seed=seed + 1), lengths_mask(lengths, L)
        return randn(len(lengths), L, V, seed=seed, scale=scale), ids.masked_fill(mask == 0, 1), mask

    cases = [
        case([6], 6, 9, seed=10),  # one sequence, no padding
        case([7, 7, 7], 7, 20, seed=20),  # no padding: the plain mean over B (L - 1) targets
        case([8, 3, 5], 8, 15, seed=30),  # right padding: 7 + 2 + 4 real targets
        case([2, 9, 1, 4], 9, 12, seed=40, scale=3.0),  # a row of one token has no target at all
        case([10, 6], 10, 40, seed=50, scale=30.0),  # confident logits
    ]
    return compare("LM loss (shifted targets, padding ignored)", fn, lm_loss, cases, atol=1e-4)
