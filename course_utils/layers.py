"""The transformer layer of the lecture: feed-forward (eq. 2), LayerNorm (eq. 3), skip connection (eq. 4).

Three placements of the norm, selected by `norm`:
    "lecture"  x = x + LayerNorm(Sublayer(x))     eq. (4), LayerNorm without gain and bias
    "post"     x = LayerNorm(x + Sublayer(x))     the original Transformer, BERT, BART
    "pre"      x = x + Sublayer(LayerNorm(x))     GPT-2 (with a final LayerNorm after the stack)

Today's decoders (Llama, SmolLM2) keep "pre" and swap the parts, each beside its lecture counterpart here:
RMSNorm for LayerNorm, SwiGLU for eq. (2)'s feed-forward; LlamaLayer assembles them with grouped-query attention
and rotary positions (see attention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import (
    MAX_WIDTH, check_bool, check_choice, check_dtype, check_finite, check_int, check_last_dim, check_positive,
    check_probability,
)
from .attention import LayerCache, MultiHeadAttention

NORMS = ("lecture", "post", "pre")
ACTIVATIONS = {
    "relu": F.relu,  # eq. (2), the original Transformer
    "gelu": F.gelu,  # exact erf GELU: BERT, BART
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's "gelu_new"
}


class LayerNorm(nn.Module):
    """Eq. (3): y = (x - mu) / sigma over the last dimension, then an optional gain and bias."""

    def __init__(self, d: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        check_int("d", d, 1, MAX_WIDTH)
        check_positive("eps", eps)
        check_bool("affine", affine)
        self.d, self.eps = d, eps
        self.weight = nn.Parameter(torch.ones(d)) if affine else None  # gain
        self.bias = nn.Parameter(torch.zeros(d)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each vector x_i of x (..., d) to mean 0 and standard deviation 1."""
        check_last_dim("x", x, self.d, "d")
        check_finite("x", x)
        mu = x.mean(dim=-1, keepdim=True)
        sigma = torch.sqrt(((x - mu) ** 2).mean(dim=-1, keepdim=True) + self.eps)  # biased, as eq. (3)
        y = (x - mu) / sigma
        if self.weight is not None:
            y = y * self.weight + self.bias
        return y


class RMSNorm(nn.Module):
    """LayerNorm without the mean: y = x / sqrt(mean(x^2) + eps) * gain (Llama). No centring, no bias."""

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        check_int("d", d, 1, MAX_WIDTH)
        check_positive("eps", eps)
        self.d, self.eps = d, eps
        self.weight = nn.Parameter(torch.ones(d))  # gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each vector x_i of x (..., d) to root-mean-square 1, then apply the gain."""
        check_last_dim("x", x, self.d, "d")
        rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # 1 / sqrt(mean_j x_ij^2 + eps)
        return self.weight * (x * rms)


class FeedForward(nn.Module):
    """Eq. (2): z_i = act(W1 y_i + b1) in R^{d_ff}, then W2 z_i + b2 back in R^{d_model}."""

    def __init__(self, d_model: int, d_ff: int | None = None, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        check_int("d_model", d_model, 1, MAX_WIDTH)
        d_ff = 4 * d_model if d_ff is None else d_ff
        check_int("d_ff", d_ff, 1, 4 * MAX_WIDTH)
        check_choice("activation", activation, ACTIVATIONS)
        check_probability("dropout", dropout)
        self.activation = activation
        self.w1 = nn.Linear(d_model, d_ff)  # W1, b1
        self.w2 = nn.Linear(d_ff, d_model)  # W2, b2
        self.dropout = nn.Dropout(dropout)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y (B, L, d_model) -> (B, L, d_model), position by position."""
        check_last_dim("y", y, self.w1.in_features)
        check_dtype("y", y, self.w1.weight.dtype)
        z = ACTIVATIONS[self.activation](self.w1(y))  # (B, L, d_ff)
        return self.w2(self.dropout(z))  # (B, L, d_model)


class SwiGLU(nn.Module):
    """Llama's feed-forward: W2 (silu(W1 y) * W3 y), a gate instead of eq. (2)'s plain activation; no biases.

    d_ff defaults to 8/3 d_model: three matrices d_model x d_ff then hold as many weights as eq. (2)'s two at 4 d_model.
    """

    def __init__(self, d_model: int, d_ff: int | None = None):
        super().__init__()
        check_int("d_model", d_model, 1, MAX_WIDTH)
        d_ff = 8 * d_model // 3 if d_ff is None else d_ff
        check_int("d_ff", d_ff, 1, 4 * MAX_WIDTH)
        self.w1 = nn.Linear(d_model, d_ff, bias=False)  # the gate (transformers: gate_proj)
        self.w3 = nn.Linear(d_model, d_ff, bias=False)  # the value it lets through (up_proj)
        self.w2 = nn.Linear(d_ff, d_model, bias=False)  # back to d_model (down_proj)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y (B, L, d_model) -> (B, L, d_model), position by position."""
        check_last_dim("y", y, self.w1.in_features)
        check_dtype("y", y, self.w1.weight.dtype)
        return self.w2(F.silu(self.w1(y)) * self.w3(y))  # silu(a) = a * sigmoid(a)


class TransformerLayer(nn.Module):
    """Self-attention then feed-forward, each wrapped in a skip connection and a LayerNorm (see `norm`).

    forward(x, mask) returns (x, alpha): the new sequence (B, L, d_model) and the attention weights
    (B, H, L, L), kept for plots.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int | None = None,
        norm: str = "post",
        activation: str = "relu",
        dropout: float = 0.0,
        eps: float = 1e-5,
    ):
        super().__init__()
        check_choice("norm", norm, NORMS)
        self.norm = norm
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.ffn = FeedForward(d_model, d_ff, activation, dropout)
        affine = norm != "lecture"  # the lecture's eq. (3) has no gain and bias
        self.norm1 = LayerNorm(d_model, eps, affine)
        self.norm2 = LayerNorm(d_model, eps, affine)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, *, cache: LayerCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L, d_model) -> (x, alpha); the three norm placements side by side.

        cache (this layer's part of a decoder's KV cache) goes to the self-attention: alpha is then
        (B, H, L, T_past + L).
        """
        if self.norm == "pre":
            y, alpha = self.attn(self.norm1(x), mask=mask, cache=cache)
            x = x + self.dropout(y)
            x = x + self.dropout(self.ffn(self.norm2(x)))
        elif self.norm == "post":
            y, alpha = self.attn(x, mask=mask, cache=cache)
            x = self.norm1(x + self.dropout(y))
            x = self.norm2(x + self.dropout(self.ffn(x)))
        else:  # "lecture", eq. (4): the residual stream itself is never normalised
            y, alpha = self.attn(x, mask=mask, cache=cache)
            x = x + self.norm1(self.dropout(y))
            x = x + self.norm2(self.dropout(self.ffn(x)))
        return x, alpha  # (B, L, d_model), (B, H, L, L)


class LlamaLayer(nn.Module):
    """Today's decoder layer (Llama): the "pre" placement with RMSNorm, grouped-query attention with RoPE, SwiGLU."""

    def __init__(
        self, d_model: int, n_heads: int, n_kv_heads: int, d_ff: int | None = None, eps: float = 1e-5,
        rope_theta: float = 10_000.0,
    ):
        super().__init__()
        self.norm1 = RMSNorm(d_model, eps)
        self.attn = MultiHeadAttention(d_model, n_heads, bias=False, n_kv_heads=n_kv_heads, rope_theta=rope_theta)
        self.norm2 = RMSNorm(d_model, eps)
        self.ffn = SwiGLU(d_model, d_ff)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, *,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None, cache: LayerCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L, d_model) -> (x, alpha), as TransformerLayer's "pre" branch; rotary: RoPE's (cos, sin) of x."""
        y, alpha = self.attn(self.norm1(x), mask=mask, cache=cache, rotary=rotary)
        x = x + y  # the residual stream is never normalised
        x = x + self.ffn(self.norm2(x))
        return x, alpha  # (B, L, d_model), (B, H, L, T_past + L)
