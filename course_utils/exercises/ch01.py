"""Checks for the exercises of chapter 01 (attention, eq. (1)): softmax, attention, causal mask, head split.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from . import compare, randn


def check_softmax(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """fn(s) = Softmax over the last dimension of s (..., L), stable for large scores and -inf (masked) entries."""
    masked = randn(3, 6, seed=3)
    masked[0, 1:] = float("-inf")  # one visible entry left: weight 1
    masked[1, ::2] = float("-inf")
    cases = [
        (randn(5, seed=0),),  # one vector s_i
        (randn(4, 7, seed=1),),  # a row per query
        (randn(2, 3, 6, seed=2),),  # a batch
        (randn(3, 6, seed=4, scale=500.0),),  # large scores: exp overflows without subtracting the max
        (masked,),
        (torch.zeros(2, 4),),  # equal scores: uniform weights
        (randn(3, 1, seed=5),),  # a single key: weight 1
    ]
    return compare("softmax", fn, lambda s: torch.softmax(s, dim=-1), cases)


def check_attention(fn: Callable) -> bool:
    """fn(x, Q, K, V) = (y, alpha): eq. (1) without scaling for one sequence x (L, d_in), Q, K, V (d, d_in)."""

    def reference(x, Q, K, V):
        q, k, v = x @ Q.T, x @ K.T, x @ V.T  # (L, d): row i is q_i = Q x_i
        return scaled_dot_product_attention(q, k, v, scale=1.0)  # y (L, d_v), alpha (L, L)

    def case(L: int, d_in: int, d: int, seed: int, d_v: int | None = None, scale: float = 0.5):
        return (randn(L, d_in, seed=seed), randn(d, d_in, seed=seed + 1, scale=scale),
                randn(d, d_in, seed=seed + 2, scale=scale), randn(d_v or d, d_in, seed=seed + 3))

    cases = [
        case(5, 8, 4, seed=10),
        case(1, 6, 3, seed=20),  # a single token attends to itself only: alpha = 1, y_1 = v_1
        case(7, 16, 8, seed=30, d_v=5),  # values may have another size than queries and keys
        case(6, 32, 16, seed=40, scale=3.0),  # large scores (no scaling!): alpha almost one-hot
    ]
    return compare("attention (eq. 1)", fn, reference, cases, atol=1e-4)


def check_causal_mask(fn: Callable[[int], torch.Tensor]) -> bool:
    """fn(L) = boolean (L, L) mask, True where token i may attend to token j, i.e. j <= i."""
    return compare("causal mask", fn, causal_mask, [(1,), (2,), (5,), (12,)])


def check_split_heads(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> bool:
    """fn(x, n_heads): (B, L, d_model) -> (B, H, L, d_head), head h = features [h d_head, (h+1) d_head)."""

    def reference(x: torch.Tensor, n_heads: int) -> torch.Tensor:
        with torch.device("meta"):  # no random initialisation: the global random state is left alone
            mha = MultiHeadAttention(x.shape[-1], n_heads)
        return mha._split_heads(x)  # (B, H, L, d_head)

    cases = [
        (randn(2, 5, 12, seed=50), 3),
        (randn(3, 4, 8, seed=51), 1),  # one head: just a new axis
        (randn(1, 3, 8, seed=52), 8),  # d_head = 1
        (randn(2, 7, 12, seed=53), 4),  # L != H: a reshape to (B, H, L, d_head) mixes tokens and heads
    ]
    return compare("split heads", fn, reference, cases)
