"""Checks for the exercises of chapter 10 (from the lecture's decoder to today's LLMs): RMSNorm, rotary position
embeddings, and the parameter count of a Llama-layout decoder from its config alone.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..attention import rotary_angles, rotate
from ..models import LlamaConfig, LlamaDecoder
from . import compare, randint, randn

# ---------------------------------------------------------------- exercise 1: RMSNorm


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """The reference: x / sqrt(mean(x^2) + eps) * weight over the last dimension (layers.RMSNorm)."""
    return weight * (x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps))


def check_rms_norm(fn: Callable) -> bool:
    """fn(x, weight, eps) = RMSNorm of x (..., d) with gain weight (d,): no mean subtracted, no bias."""
    cases = [
        (randn(2, 3, 8, seed=1), randn(8, seed=2), 1e-5),
        (randn(4, 16, seed=3, shift=5.0), torch.ones(16), 1e-6),  # a mean far from 0 stays: it is not removed
        (randn(1, 1, 5, seed=4, scale=1e-3), randn(5, seed=5), 1e-2),  # small x: eps matters
        (randn(3, 2, 2, 576, seed=6), randn(576, seed=7, shift=1.0), 1e-5),  # SmolLM2's width
    ]
    return compare("RMSNorm", fn, rms_norm, cases, atol=1e-5)


# ---------------------------------------------------------------- exercise 2: rotary position embeddings


def rope(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """The reference: attention.rotate with the angles of attention.rotary_angles."""
    return rotate(x, *rotary_angles(positions, x.shape[-1], theta))


def check_rope(fn: Callable) -> bool:
    """fn(x, positions, theta) rotates x (B, H, L, d) by RoPE: pair i = (x_i, x_{i + d/2}) of the token at position m
    turns by the angle m * theta^(-2i / d); positions (B, L) are integers."""
    cases = [
        (randn(1, 1, 4, 2, seed=1), torch.arange(4)[None], 10_000.0),  # one pair: a plain 2-D rotation
        (randn(2, 3, 5, 8, seed=2), randint(100, 2, 5, seed=3), 10_000.0),
        (randn(1, 9, 6, 64, seed=4), torch.arange(6)[None] + 1000, 100_000.0),  # SmolLM2's d_head and theta
        (randn(2, 1, 3, 4, seed=5), torch.tensor([[0, 0, 0], [1, 2, 3]]), 500.0),  # position 0 is not rotated
    ]
    return compare("rotary position embeddings", fn, rope, cases, atol=1e-4)


# ---------------------------------------------------------------- exercise 3: parameters from the config


def llama_parameters(config: LlamaConfig) -> int:
    """The reference: count the parameters of the model itself, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        return sum(p.numel() for p in LlamaDecoder.from_config(config).parameters())


def check_llama_parameters(fn: Callable) -> bool:
    """fn(config) = the number of parameters of LlamaDecoder.from_config(config), from the fields of the LlamaConfig
    alone: embeddings, per layer (attention with n_kv_heads key/value heads, SwiGLU, two RMSNorms), the final norm,
    and a separate LM head only when tie_embeddings is False. d_ff None means 8 * d_model // 3."""
    cases = [
        (LlamaConfig(100, d_model=16, n_heads=4, n_kv_heads=4, n_layers=1, d_ff=32),),  # plain multi-head
        (LlamaConfig(1000, d_model=64, n_heads=8, n_kv_heads=2, n_layers=3),),  # GQA, default d_ff
        (LlamaConfig(500, d_model=48, n_heads=6, n_kv_heads=1, n_layers=2, d_ff=100, tie_embeddings=False),),
        (LlamaConfig(49152, d_model=576, n_heads=9, n_kv_heads=3, n_layers=30, d_ff=1536),),  # SmolLM2-135M
    ]
    return compare("Llama parameter count", fn, llama_parameters, cases, atol=0)
