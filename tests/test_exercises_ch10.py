"""The checks of chapter 10's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import torch

from course_utils.exercises import ch10
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


def rms_norm(x, weight, eps):
    return weight * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def rms_norm_layer_norm(x, weight, eps):  # subtracts the mean: LayerNorm without bias, not RMSNorm
    return rms_norm(x - x.mean(-1, keepdim=True), weight, eps)


def rms_norm_eps_outside(x, weight, eps):  # sqrt(mean) + eps instead of sqrt(mean + eps)
    return weight * x / ((x * x).mean(-1, keepdim=True).sqrt() + eps)


def rope(x, positions, theta):
    d = x.shape[-1]
    angles = positions[..., None].float() * theta ** (-torch.arange(0, d, 2).float() / d)  # (B, L, d/2)
    cos, sin = angles.cos()[:, None], angles.sin()[:, None]  # (B, 1, L, d/2)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def rope_interleaved(x, positions, theta):  # pairs (x_2i, x_2i+1): llama.cpp's order, not transformers'
    y = x.unflatten(-1, (-1, 2)).transpose(-1, -2).flatten(-2)  # (x0, x2, ..., x1, x3, ...)
    return rope(y, positions, theta).unflatten(-1, (2, -1)).transpose(-1, -2).flatten(-2)


def rope_clockwise(x, positions, theta):  # the angle's sign flipped
    return rope(x, -positions, theta)


def llama_parameters(c):
    d, d_head, d_ff = c.d_model, c.d_model // c.n_heads, c.d_ff or 8 * c.d_model // 3
    layer = 2 * d * d + 2 * d * c.n_kv_heads * d_head + 3 * d * d_ff + 2 * d  # Q, O; K, V; SwiGLU; two RMSNorms
    return c.vocab_size * d * (1 if c.tie_embeddings else 2) + c.n_layers * layer + d


def llama_parameters_full_heads(c):  # K and V with n_heads heads: multi-head attention, not grouped
    return llama_parameters(c) + c.n_layers * 2 * c.d_model * (c.n_heads - c.n_kv_heads) * (c.d_model // c.n_heads)


def llama_parameters_untied(c):  # always counts a separate LM head
    return llama_parameters(c) + (c.vocab_size * c.d_model if c.tie_embeddings else 0)


CHECKS = [(ch10.check_rms_norm, rms_norm), (ch10.check_rope, rope),
          (ch10.check_llama_parameters, llama_parameters)]
WRONG = [(ch10.check_rms_norm, rms_norm_layer_norm), (ch10.check_rms_norm, rms_norm_eps_outside),
         (ch10.check_rope, rope_interleaved), (ch10.check_rope, rope_clockwise),
         (ch10.check_llama_parameters, llama_parameters_full_heads),
         (ch10.check_llama_parameters, llama_parameters_untied)]
globals().update(contract_tests(CHECKS, WRONG))


def test_the_count_of_smollm2_is_its_published_size():
    config = ch10.LlamaConfig(49152, d_model=576, n_heads=9, n_kv_heads=3, n_layers=30, d_ff=1536)
    assert ch10.llama_parameters(config) == llama_parameters(config) == 134_515_008
