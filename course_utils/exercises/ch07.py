"""Checks for the exercises of chapter 07 (cross-attention): one head of cross-attention from q, k, v and the
source's padding, BART's shift_tokens_right (the decoder input for teacher forcing), and the mask of the decoder's
self-attention (causal and target padding together).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..attention import causal_mask, padding_mask, scaled_dot_product_attention
from ..noising import shift_tokens_right
from . import compare, lengths_mask, randn


# ---------------------------------------------------------------- exercise 1: one head of cross-attention


def cross_attention_head(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, source_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: alpha = softmax(q k^T / sqrt(d)) over the source keys that are not padding, y = alpha v."""
    return scaled_dot_product_attention(q, k, v, mask=padding_mask(source_mask)[:, 0])  # mask (B, 1, L_enc)


def check_cross_attention_head(fn: Callable) -> bool:
    """fn(q, k, v, source_mask) = (y, alpha): one head of cross-attention, scaled by 1 / sqrt(d).

    q (B, L_dec, d) comes from the decoder, k (B, L_enc, d) and v (B, L_enc, d_v) from the encoder output, and
    source_mask (B, L_enc) is 1 on real source tokens, 0 on padding. alpha (B, L_dec, L_enc) holds, in row i, the
    softmax over the source positions j of s_ij = q_i . k_j / sqrt(d), with padded keys given weight 0; y (B, L_dec,
    d_v) is alpha v. Every source holds at least one real token. Reference: attention.scaled_dot_product_attention.
    """
    def case(lengths: list[int], L_dec: int, L_enc: int, d: int, seed: int, d_v: int | None = None,
             scale: float = 1.0, left: bool = False):
        B = len(lengths)
        return (randn(B, L_dec, d, seed=seed, scale=scale), randn(B, L_enc, d, seed=seed + 1, scale=scale),
                randn(B, L_enc, d_v or d, seed=seed + 2), lengths_mask(lengths, L_enc, left))

    cases = [
        case([5], 3, 5, 4, seed=10),  # no padding
        case([7, 4], 4, 7, 8, seed=20),  # the second source is padded on the right
        case([3, 1, 2], 9, 3, 6, seed=30),  # more queries than keys; a source of one token
        case([6, 3], 5, 6, 4, seed=40, d_v=3, left=True),  # values of another width; padding on the left
        case([11, 8], 11, 11, 16, seed=50, scale=2.0),  # L_dec = L_enc, large scores: nearly one-hot rows
    ]
    return compare("cross-attention, one head", fn, cross_attention_head, cases, atol=1e-5)


# ---------------------------------------------------------------- exercise 2: shift_tokens_right


def check_shift_tokens_right(fn: Callable) -> bool:
    """fn(labels, pad_token_id, decoder_start_token_id) = the decoder input (B, L) for teacher forcing.

    Row b is decoder_start_token_id followed by labels[b, :-1] (one step to the right, the last label dropped), and
    every -100 (a position the loss ignores) becomes pad_token_id. labels is not changed in place.
    Reference: noising.shift_tokens_right, which is transformers' BART function.
    """
    dates = torch.tensor([[46, 54, 54, 54, 55, 45, 52, 55, 45, 49, 2],  # 1999-07-04</s>, shared date ids
                          [47, 45, 45, 45, 55, 46, 47, 55, 48, 46, 2]])  # 2000-12-31</s>
    ignored = torch.tensor([[5, 6, 7, 2, -100, -100], [8, 9, 2, -100, -100, -100], [3, 4, 5, 6, 7, 2]])
    cases = [
        (dates, 1, 2),  # BART: pad 1, decoder start </s> = 2
        (ignored, 1, 2),  # -100 after </s> in the shorter rows: pad in the decoder input
        (ignored, 0, 0),  # T5's convention: pad 0, decoder start = pad
        (torch.tensor([[7, -100, 9, 2]]), 1, 2),  # an ignored position in the middle
        (torch.tensor([[42], [43]]), 1, 2),  # one label per row: the decoder reads the start token only
    ]
    return compare("shift_tokens_right", fn, shift_tokens_right, cases, atol=0)


# ---------------------------------------------------------------- exercise 3: the decoder's self-attention mask


def decoder_self_mask(decoder_attention_mask: torch.Tensor) -> torch.Tensor:
    """The reference: (B, 1, L, L), True where query i may attend key j: j <= i and key j is a real token."""
    L = decoder_attention_mask.shape[1]
    return padding_mask(decoder_attention_mask) & causal_mask(L)  # (B, 1, 1, L) & (L, L) -> (B, 1, L, L)


def check_decoder_self_mask(fn: Callable) -> bool:
    """fn(decoder_attention_mask) = boolean (B, 1, L, L) mask of the decoder's self-attention, True = may attend.

    decoder_attention_mask (B, L) is 1 on real target tokens, 0 on padding. Query i may attend key j iff j <= i
    (causal) and key j is not padding; the axis of size 1 is the heads' (the mask broadcasts over them).
    Reference: attention.padding_mask(m) & attention.causal_mask(L), as EncoderDecoder builds it.
    """
    cases = [
        (lengths_mask([4], 4),),  # no padding: the causal mask of chapter 6
        (lengths_mask([5, 3, 1], 5),),  # right padding
        (lengths_mask([6, 2], 6, left=True),),  # left padding: the first queries see no real key
        (lengths_mask([1], 1),),  # a single token
        (torch.tensor([[1, 1, 0, 1, 0, 0, 1]]),),  # holes anywhere: only the keys matter
    ]
    return compare("decoder self-attention mask", fn, decoder_self_mask, cases, atol=0)
