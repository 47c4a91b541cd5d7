"""Attention, eq. (1) of the lecture: scores, softmax, weighted sum; masks; several heads.

    q_i = Q x_i,  k_j = K x_j,  v_j = V x_j
    s_ij = q_i^T k_j,  alpha_i = Softmax(s_i),  y_i = sum_j alpha_ij v_j

Mask convention (as torch.nn.functional.scaled_dot_product_attention): a boolean mask, True = "may attend".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validate import check_broadcast, check_positive_float, check_positive_int, check_tensor


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (1) batched: return y = alpha v and the attention weights alpha = softmax(scale * q k^T).

    q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv); leading dimensions broadcast.
    mask: boolean, broadcastable to (..., Lq, Lk), True = query i may attend to key j.
    scale: 1/sqrt(d) by default (the Transformer paper); scale=1.0 is the lecture's unscaled s_ij = q_i^T k_j.
    A query whose row of the mask is all False attends to nothing: its alpha row and its output are zeros
    (what torch's scaled_dot_product_attention returns), instead of the NaN of a softmax over no entries.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, t, ndim_min=2, floating=True)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share their last dimension d, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of keys Lk (dim -2), got k {tuple(k.shape)} and v {tuple(v.shape)}"
        )
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} do not broadcast"
        ) from None
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    else:
        check_positive_float("scale", scale)

    s = (q @ k.transpose(-2, -1)) * scale  # (..., Lq, Lk): s_ij = q_i^T k_j
    if mask is not None:
        check_tensor("mask", mask)
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}")
        check_broadcast("mask", mask.shape, (*batch, q.shape[-2], k.shape[-2]), "the scores (..., Lq, Lk)")
        s = s.masked_fill(~mask, float("-inf"))
    alpha = torch.softmax(s, dim=-1)  # (..., Lq, Lk), each row sums to 1
    if mask is not None:
        alpha = alpha.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)  # rows with no visible key
    y = alpha @ v  # (..., Lq, dv): y_i = sum_j alpha_ij v_j
    return y, alpha


def causal_mask(length: int, n_keys: int | None = None) -> torch.Tensor:
    """Boolean (length, n_keys) mask, True on and below the diagonal: token i sees tokens j <= i.

    With n_keys > length the queries are the last `length` positions (as when earlier keys are cached),
    so the diagonal is aligned to the lower-right corner.
    """
    check_positive_int("length", length)
    n_keys = length if n_keys is None else n_keys
    check_positive_int("n_keys", n_keys, minimum=length)
    return torch.ones(length, n_keys, dtype=torch.bool).tril(diagonal=n_keys - length)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """From a 0/1 attention mask (B, L) (1 = real token) to a boolean (B, 1, 1, L) mask over the keys.

    The result broadcasts over heads and queries: no query may attend to a padded key.
    """
    check_tensor("attention_mask", attention_mask, ndim=2)
    if attention_mask.dtype != torch.bool and not ((attention_mask == 0) | (attention_mask == 1)).all():
        raise ValueError("attention_mask must contain only 0 (padding) and 1 (token)")
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, L)


class MultiHeadAttention(nn.Module):
    """Eq. (1) with n_heads heads of size d_model / n_heads, then an output projection.

    forward(x) is self-attention; forward(x, context) is cross-attention: queries from x, keys and values
    from context (the encoder output h^enc of the lecture). Returns (y, alpha), alpha of shape (B, H, Lq, Lk).
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        check_positive_int("d_model", d_model)
        check_positive_int("n_heads", n_heads)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)  # Q of eq. (1), all heads side by side
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)  # K
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)  # V
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # mixes the heads back into d_model

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        return x.view(B, L, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, L, d_head)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Self-attention over x (B, Lq, d_model), or cross-attention to context (B, Lk, d_model)."""
        check_tensor("x", x, ndim=3, floating=True)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have last dimension d_model={self.d_model}, got shape {tuple(x.shape)}")
        if context is None:
            context = x
        else:
            check_tensor("context", context, ndim=3, floating=True)
            if context.shape[0] != x.shape[0] or context.shape[-1] != self.d_model:
                raise ValueError(
                    f"context must have shape (B={x.shape[0]}, Lk, d_model={self.d_model}), got {tuple(context.shape)}"
                )
        B, Lq, _ = x.shape
        q = self._split_heads(self.q_proj(x))  # (B, H, Lq, d_head)
        k = self._split_heads(self.k_proj(context))  # (B, H, Lk, d_head)
        v = self._split_heads(self.v_proj(context))  # (B, H, Lk, d_head)
        y, alpha = scaled_dot_product_attention(q, k, v, mask=mask)  # (B, H, Lq, d_head), (B, H, Lq, Lk)
        y = y.transpose(1, 2).reshape(B, Lq, self.d_model)  # concatenate the heads
        return self.out_proj(y), alpha
