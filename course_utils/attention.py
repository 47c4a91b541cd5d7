"""Attention, eq. (1) of the lecture: scores, softmax, weighted sum; masks; several heads; the KV cache.

    q_i = Q x_i,  k_j = K x_j,  v_j = V x_j
    s_ij = q_i^T k_j,  alpha_i = Softmax(s_i),  y_i = sum_j alpha_ij v_j

Mask convention (as torch.nn.functional.scaled_dot_product_attention): a boolean mask, True = "may attend".
KVCache keeps, per layer, the keys and values of the tokens already seen, so generation computes one new row at a time.
Today's decoders (Llama) change two things here: fewer key/value heads than query heads (grouped-query attention),
and positions that enter as rotations of q and k (RoPE) instead of a learned vector added to x.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._validate import (
    MAX_WIDTH, check_bool, check_broadcast, check_choice, check_dtype, check_finite, check_ids, check_instance,
    check_int, check_int_tensor, check_last_dim, check_positive, check_tensor,
)

MAX_LENGTH = 32_768  # the longest sequence a mask is built for: a (32768, 32768) boolean mask already takes 1 GB
MASK_KINDS = ("bidirectional", "causal", "padding", "cross")
PAD_SIDES = ("right", "left")


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
    _check_sdpa(q, k, v, mask, scale)
    return _attend(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float):
    """Eq. (1) itself: MultiHeadAttention calls it on the q, k, v it has just built (checked once, where they enter)."""
    s = (q @ k.transpose(-2, -1)) * scale  # (..., Lq, Lk): s_ij = q_i^T k_j
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    alpha = torch.softmax(s, dim=-1)  # (..., Lq, Lk), each row sums to 1
    if mask is not None:
        alpha = alpha.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)  # rows with no visible key
    y = alpha @ v  # (..., Lq, dv): y_i = sum_j alpha_ij v_j
    return y, alpha


def _check_sdpa(q, k, v, mask, scale) -> None:
    """The checks of scaled_dot_product_attention: shapes that fit eq. (1), a boolean mask, a positive scale."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, t, ndim_min=2, floating=True)
        check_finite(name, t)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share their last dimension d, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2] or k.shape[-2] == 0:
        raise ValueError(f"k and v must have the same number of keys Lk >= 1 (dim -2), got k {tuple(k.shape)} and "
                         f"v {tuple(v.shape)}")
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} do not broadcast"
        ) from None
    if scale is not None:
        check_positive("scale", scale)
    _check_mask(mask, (*batch, q.shape[-2], k.shape[-2]))


def _check_mask(mask, scores_shape: tuple) -> None:
    """A boolean mask (True = may attend) that broadcasts to the scores (..., Lq, Lk), or None."""
    if mask is not None:
        check_tensor("mask", mask)
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}")
        check_broadcast("mask", mask.shape, scores_shape, "the scores (..., Lq, Lk)")


# ---------------------------------------------------------------- masks


def causal_mask(length: int, n_keys: int | None = None) -> torch.Tensor:
    """Boolean (length, n_keys) mask, True on and below the diagonal: token i sees tokens j <= i.

    With n_keys > length the queries are the last `length` positions (as when earlier keys are cached),
    so the diagonal is aligned to the lower-right corner.
    """
    check_int("length", length, 1, MAX_LENGTH)
    n_keys = length if n_keys is None else n_keys
    check_int("n_keys", n_keys, length, MAX_LENGTH)
    return torch.ones(length, n_keys, dtype=torch.bool).tril(diagonal=n_keys - length)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """From a 0/1 attention mask (B, L) (1 = real token) to a boolean (B, 1, 1, L) mask over the keys.

    The result broadcasts over heads and queries: no query may attend to a padded key.
    """
    check_tensor("attention_mask", attention_mask, ndim=2)
    if attention_mask.dtype != torch.bool and not ((attention_mask == 0) | (attention_mask == 1)).all():
        raise ValueError("attention_mask must contain only 0 (padding) and 1 (token)")
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, L)


def position_ids_from_mask(attention_mask: torch.Tensor | None, batch: int, length: int) -> torch.Tensor:
    """Position ids (B, T) as transformers builds them: count real tokens only, so left padding shifts nothing."""
    check_int("batch", batch, 1)
    check_int("length", length, 1)
    if attention_mask is not None:
        check_ids("attention_mask", attention_mask, 2, shape=(batch, length))
    if attention_mask is None:
        return torch.arange(length).expand(batch, length)
    return (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)  # pads get position 0


def pad_positions(n: int, n_pad: int = 0, pad_side: str = "right") -> torch.Tensor:
    """Boolean (n,) vector, True at the n_pad padded positions (the last ones, or the first ones if "left")."""
    check_int("n", n, 1)
    check_int("n_pad", n_pad, 0, n)
    check_choice("pad_side", pad_side, PAD_SIDES)
    pad = torch.zeros(n, dtype=torch.bool)
    if n_pad:
        pad[slice(n - n_pad, None) if pad_side == "right" else slice(0, n_pad)] = True
    return pad


def build_mask(
    kind: str, n_queries: int, n_keys: int | None = None, n_pad: int = 0, pad_side: str = "right"
) -> torch.Tensor:
    """Boolean mask (n_queries, n_keys), True = query i may attend to key j; n_pad keys are padding.

    "bidirectional": all True (n_pad must be 0).  "causal": j <= i.  "padding": all True but the padded keys.
    "cross": queries from one sequence, keys from another (n_keys may differ); the padded keys are hidden.
    The padded keys are the last n_pad (pad_side="right") or the first n_pad (pad_side="left").
    """
    check_choice("kind", kind, MASK_KINDS)
    check_choice("pad_side", pad_side, PAD_SIDES)
    check_int("n_queries", n_queries, 1, MAX_LENGTH)
    n_keys = n_queries if n_keys is None else n_keys
    check_int("n_keys", n_keys, 1, MAX_LENGTH)
    if kind != "cross" and n_keys != n_queries:
        raise ValueError(f"n_keys must equal n_queries={n_queries} for self-attention kind={kind!r}, got {n_keys}")
    check_int("n_pad", n_pad, 0, n_keys - 1)  # at least one real key
    if kind == "bidirectional" and n_pad:
        raise ValueError(f"n_pad must be 0 for kind='bidirectional' (use kind='padding'), got {n_pad}")
    mask = causal_mask(n_queries) if kind == "causal" else torch.ones(n_queries, n_keys, dtype=torch.bool)
    return mask & ~pad_positions(n_keys, n_pad, pad_side)  # (Lq, Lk): a padded key is hidden from every query


# ---------------------------------------------------------------- the KV cache


class LayerCache:
    """One layer's cache: self-attention keys and values grow with each step; cross-attention's are computed once."""

    def __init__(self):
        self.keys: torch.Tensor | None = None  # (B, H, T, d_head)
        self.values: torch.Tensor | None = None
        self.cross: tuple[torch.Tensor, torch.Tensor] | None = None  # (k, v) of the encoder output h^enc

    @property
    def length(self) -> int:
        """Number of tokens cached so far (T), 0 when empty."""
        return 0 if self.keys is None else self.keys.shape[2]

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append k, v (B, H, L, d_head) to this layer's cache; return all its keys and values (B, H, T, d_head)."""
        self._check_update(k, v)
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            self.keys = torch.cat([self.keys, k], dim=2)  # the past keys come first
            self.values = torch.cat([self.values, v], dim=2)
        return self.keys, self.values

    def reorder(self, index: torch.Tensor, cross: bool = True) -> None:
        """Keep the batch rows `index` of every cached tensor (cross=False: of the self-attention keys only)."""
        cached = self.keys if self.keys is not None else None if self.cross is None else self.cross[0]
        check_int_tensor("index", index, ndim=1, low=0, high=None if cached is None else cached.shape[0])
        if self.keys is not None:
            self.keys, self.values = self.keys.index_select(0, index), self.values.index_select(0, index)
        if self.cross is not None and cross:
            self.cross = tuple(t.index_select(0, index) for t in self.cross)

    def _check_update(self, k, v) -> None:
        check_tensor("k", k, ndim=4, floating=True)
        check_tensor("v", v, ndim=4, floating=True)
        if k.shape != v.shape:
            raise ValueError(f"k and v must have one shape (B, H, L, d_head), got {tuple(k.shape)}, {tuple(v.shape)}")
        if self.keys is not None:
            (B, H, _, d), (b, h, _, e) = self.keys.shape, k.shape
            if (b, h, e) != (B, H, d):
                raise ValueError(f"the new keys (batch {b}, heads {h}, d_head {e}) do not continue the cached ones "
                                 f"(batch {B}, heads {H}, d_head {d}): a cache serves one batch of one model")


class KVCache:
    """Keys and values of the tokens already seen, one LayerCache per layer (`cache[i]`), created on first use.

    A new token then costs one row of attention per layer, not L rows.
    """

    def __init__(self):
        self.layers: list[LayerCache] = []

    def __getitem__(self, i: int) -> LayerCache:
        """Layer i's cache; the layers are filled in order, so i is at most the number already cached."""
        check_int("layer", i, 0, len(self.layers))
        if i == len(self.layers):
            self.layers.append(LayerCache())
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def length(self) -> int:
        """Number of tokens cached so far (T of layer 0), 0 when empty."""
        return self.layers[0].length if self.layers else 0

    @property
    def batch_size(self) -> int | None:
        """The batch the cache serves (None while empty)."""
        cached = [t for layer in self.layers for t in (layer.keys, *(layer.cross or ())) if t is not None]
        return cached[0].shape[0] if cached else None

    def reorder(self, index: torch.Tensor, cross: bool = True) -> None:
        """Keep the batch rows `index` (B_new,) of every cached tensor: beam search follows its surviving beams.

        cross=False leaves the cross-attention keys and values as they are, which is right (and cheaper) when index
        only moves rows between the beams of one source: those rows hold the same h^enc.
        """
        for layer in self.layers:
            layer.reorder(index, cross)


# ---------------------------------------------------------------- rotary positions (RoPE)


def rotary_angles(positions: torch.Tensor, d_head: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (B, 1, L, d_head) of RoPE's angles m * theta^(-2i / d_head) for the positions m (B, L).

    Pair i of a head turns by the angle m * theta^(-2i / d_head): fast for the first pairs, slow for the last.
    """
    inv_freq = 1.0 / theta ** (torch.arange(0, d_head, 2, dtype=torch.int64).float() / d_head)  # (d_head / 2,)
    angles = positions[..., None].float() * inv_freq.to(positions.device)  # (B, L, d_head / 2)
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # (B, 1, L, d_head): pair i is (x_i, x_{i + d_head/2})
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE: turn each pair (x_i, x_{i + d/2}) of x (B, H, L, d) by its angle, so q_m^T k_n depends on m - n only."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin  # the 2-D rotation [[cos, -sin], [sin, cos]] of each pair


# ---------------------------------------------------------------- several heads


class MultiHeadAttention(nn.Module):
    """Eq. (1) with n_heads heads of size d_model / n_heads, then an output projection.

    forward(x) is self-attention; forward(x, context) is cross-attention: queries from x, keys and values
    from context (the encoder output h^enc of the lecture). Returns (y, alpha), alpha of shape (B, H, Lq, Lk).
    Today's decoders: n_kv_heads < n_heads shares each key/value head among n_heads / n_kv_heads query heads
    (grouped-query attention: a smaller KV cache); rope_theta turns q and k by their positions (RoPE).
    """

    def __init__(
        self, d_model: int, n_heads: int, bias: bool = True, n_kv_heads: int | None = None,
        rope_theta: float | None = None,
    ):
        super().__init__()
        check_int("d_model", d_model, 1, MAX_WIDTH)
        check_int("n_heads", n_heads, 1)
        check_bool("bias", bias)
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        check_int("n_kv_heads", n_kv_heads, 1, n_heads)
        if d_model % n_heads or n_heads % n_kv_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads}), and n_heads by "
                             f"n_kv_heads ({n_kv_heads})")
        if rope_theta is not None:
            check_positive("rope_theta", rope_theta)
            if (d_model // n_heads) % 2:
                raise ValueError(f"RoPE turns pairs of coordinates: d_head = {d_model // n_heads} must be even")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.n_kv_heads, self.rope_theta = n_kv_heads, rope_theta
        d_kv = n_kv_heads * self.d_head
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)  # Q of eq. (1), all heads side by side
        self.k_proj = nn.Linear(d_model, d_kv, bias=bias)  # K
        self.v_proj = nn.Linear(d_model, d_kv, bias=bias)  # V
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # mixes the heads back into d_model

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        return x.view(B, L, -1, self.d_head).transpose(1, 2)  # (B, heads, L, d_head)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        *,
        cache: LayerCache | None = None,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Self-attention over x (B, Lq, d_model), or cross-attention to context (B, Lk, d_model).

        With a layer's cache, self-attention appends this call's keys and values to the cached ones and attends
        to all T_past + Lq of them (mask then covers those keys); cross-attention projects context once.
        rotary: RoPE's (cos, sin) of the positions of x, rotary_angles(positions, d_head, rope_theta), computed once
        per forward pass by the model (default: positions T_past .. T_past + Lq - 1); only RoPE reads it.
        """
        self._check_inputs(x, context, cache, rotary)
        B, Lq, _ = x.shape
        q = self._split_heads(self.q_proj(x))  # (B, H, Lq, d_head)
        if context is not None and cache is not None and cache.cross is not None:
            k, v = cache.cross  # (B, H, Lk, d_head), projected at the first decoding step
        else:
            source = x if context is None else context
            k = self._split_heads(self.k_proj(source))  # (B, H_kv, Lk, d_head)
            v = self._split_heads(self.v_proj(source))  # (B, H_kv, Lk, d_head)
            if self.rope_theta is not None:  # RoPE: q and k turned by their positions, before k is cached
                if rotary is None:
                    past = 0 if cache is None else cache.length
                    positions = torch.arange(past, past + Lq, device=x.device).expand(B, Lq)
                    rotary = rotary_angles(positions, self.d_head, self.rope_theta)
                cos, sin = rotary  # (B, 1, Lq, d_head)
                q, k = rotate(q, cos, sin), rotate(k, cos, sin)
            if cache is not None and context is None:
                k, v = cache.update(k, v)  # (B, H_kv, T_past + Lq, d_head): GQA caches the shared heads only
            elif cache is not None:
                cache.cross = (k.contiguous(), v.contiguous())  # read every step: copied once
        Lk, H, H_kv = k.shape[2], self.n_heads, self.n_kv_heads
        _check_mask(mask, (B, H, Lq, Lk))
        if H_kv < H:  # GQA: the queries of a group's heads side by side, against their one shared k, v (no copies)
            q = q.reshape(B, H_kv, H // H_kv * Lq, self.d_head)  # (B, H_kv, group * Lq, d_head)
            mask = None if mask is None else mask.expand(B, H, Lq, Lk).reshape(B, H_kv, H // H_kv * Lq, Lk)
        y, alpha = _attend(q, k, v, mask, 1.0 / math.sqrt(self.d_head))  # (B, H_kv, group * Lq, d_head | Lk)
        alpha = alpha.view(B, H, Lq, Lk)
        y = y.view(B, H, Lq, self.d_head).transpose(1, 2).reshape(B, Lq, self.d_model)  # concatenate the heads
        return self.out_proj(y), alpha

    def _check_inputs(self, x, context, cache, rotary) -> None:
        if cache is not None:
            check_instance("cache", cache, LayerCache, "LayerCache (one layer of a KVCache: cache[i])")
        check_tensor("x", x, ndim=3, floating=True)
        check_last_dim("x", x, self.d_model)
        check_dtype("x", x, self.q_proj.weight.dtype)
        check_finite("x", x)
        shape = (x.shape[0], 1, x.shape[1], self.d_head)  # (B, 1, Lq, d_head)
        if rotary is not None and (len(rotary) != 2 or any(tuple(t.shape) != shape for t in rotary)):
            raise ValueError(f"rotary must be (cos, sin) of shape (B, 1, Lq, d_head) = {shape}, as "
                             "rotary_angles(positions, d_head, theta) returns")
        if context is not None:
            if self.rope_theta is not None:
                raise ValueError("RoPE rotates the queries and keys of one sequence: cross-attention (context) "
                                 "is not supported with rope_theta")
            check_tensor("context", context, ndim=3, floating=True)
            if cache is None or cache.cross is None:  # a cached context is not read again
                check_finite("context", context)
            if context.shape[0] != x.shape[0] or context.shape[-1] != self.d_model:
                raise ValueError(
                    f"context must have shape (B={x.shape[0]}, Lk, d_model={self.d_model}), got {tuple(context.shape)}"
                )
