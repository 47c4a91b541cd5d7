"""Attention, eq. (1) of the lecture: scores, softmax, weighted sum; masks; several heads.

    q_i = Q x_i,  k_j = K x_j,  v_j = V x_j
    s_ij = q_i^T k_j,  alpha_i = Softmax(s_i),  y_i = sum_j alpha_ij v_j

Mask convention (as torch.nn.functional.scaled_dot_product_attention): a boolean mask, True = "may attend".
KVCache keeps the keys and values of the tokens already seen, so generation computes one new row at a time.
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


class KVCache:
    """Keys and values of the tokens already seen, per layer, so a new token costs one row of attention, not L.

    Self-attention keys and values grow along the time axis with each `update`; the cross-attention keys and
    values of the encoder output never change while decoding, so `cross[layer]` holds them once computed.
    """

    def __init__(self):
        self.keys: list[torch.Tensor] = []  # one (B, H, T, d_head) tensor per layer
        self.values: list[torch.Tensor] = []
        self.cross: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # layer -> (k, v) of the encoder output

    @property
    def length(self) -> int:
        """Number of tokens cached so far (T of layer 0), 0 when empty."""
        return self.keys[0].shape[2] if self.keys else 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append k, v (B, H, L, d_head) to layer `layer`'s cache; return all its keys and values (B, H, T, d_head)."""
        check_positive_int("layer", layer, minimum=0)
        if layer > len(self.keys):
            raise ValueError(f"layer must be at most {len(self.keys)} (layers are cached in order), got {layer}")
        check_tensor("k", k, ndim=4, floating=True)
        check_tensor("v", v, ndim=4, floating=True)
        if k.shape != v.shape:
            raise ValueError(f"k and v must have one shape (B, H, L, d_head), got {tuple(k.shape)}, {tuple(v.shape)}")
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        else:
            past = self.keys[layer].shape
            if (k.shape[0], k.shape[1], k.shape[3]) != (past[0], past[1], past[3]):
                raise ValueError(f"k of shape {tuple(k.shape)} does not continue the cached keys {tuple(past)}")
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=2)
        return self.keys[layer], self.values[layer]

    def reorder(self, index: torch.Tensor) -> None:
        """Keep the batch rows `index` (B_new,) of every cached tensor: beam search follows its surviving beams."""
        check_tensor("index", index, ndim=1)
        if index.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"index must be an integer tensor (torch.long), got dtype {index.dtype}")
        cached = self.keys + [k for k, _ in self.cross.values()]
        if cached and index.numel() and (index.min() < 0 or index.max() >= cached[0].shape[0]):
            raise ValueError(f"index must lie in [0, {cached[0].shape[0]}) (the cached batch), got {index.tolist()}")
        self.keys = [k.index_select(0, index) for k in self.keys]
        self.values = [v.index_select(0, index) for v in self.values]
        self.cross = {i: (k.index_select(0, index), v.index_select(0, index)) for i, (k, v) in self.cross.items()}


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
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Self-attention over x (B, Lq, d_model), or cross-attention to context (B, Lk, d_model).

        With a cache, self-attention appends this call's keys and values to layer `layer`'s and attends to all
        T_past + Lq of them (mask then covers those keys); cross-attention projects context at the first call only.
        """
        check_tensor("x", x, ndim=3, floating=True)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have last dimension d_model={self.d_model}, got shape {tuple(x.shape)}")
        if context is not None:
            check_tensor("context", context, ndim=3, floating=True)
            if context.shape[0] != x.shape[0] or context.shape[-1] != self.d_model:
                raise ValueError(
                    f"context must have shape (B={x.shape[0]}, Lk, d_model={self.d_model}), got {tuple(context.shape)}"
                )
        if cache is not None and not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache, got {type(cache).__name__}")
        check_positive_int("layer", layer, minimum=0)
        B, Lq, _ = x.shape
        q = self._split_heads(self.q_proj(x))  # (B, H, Lq, d_head)
        if context is not None and cache is not None and layer in cache.cross:
            k, v = cache.cross[layer]  # (B, H, Lk, d_head), projected at the first decoding step
        else:
            source = x if context is None else context
            k = self._split_heads(self.k_proj(source))  # (B, H, Lk, d_head)
            v = self._split_heads(self.v_proj(source))  # (B, H, Lk, d_head)
            if cache is not None and context is None:
                k, v = cache.update(layer, k, v)  # (B, H, T_past + Lq, d_head): the past keys come first
            elif cache is not None:
                cache.cross[layer] = (k, v)
        y, alpha = scaled_dot_product_attention(q, k, v, mask=mask)  # (B, H, Lq, d_head), (B, H, Lq, Lk)
        y = y.transpose(1, 2).reshape(B, Lq, self.d_model)  # concatenate the heads
        return self.out_proj(y), alpha
