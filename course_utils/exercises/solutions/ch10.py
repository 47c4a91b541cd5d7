"""Chapter 10's exercises, solved: RMSNorm, RoPE, Llama's parameter count."""

import torch


def rms_norm(x, weight, eps):
    return weight * x / torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)  # eps inside the root


def rope(x, positions, theta):
    d = x.shape[-1]
    freq = theta ** (-torch.arange(0, d, 2).float() / d)  # (d/2,): theta^(-2j/d)
    angle = positions[..., None].float() * freq  # (B, L, d/2)
    cos, sin = angle.cos()[:, None], angle.sin()[:, None]  # (B, 1, L, d/2): same for every head
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]  # the pairs (x_j, x_{j + d/2})
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def llama_parameters(config):
    d, d_head = config.d_model, config.d_model // config.n_heads
    d_ff = config.d_ff or 8 * d // 3
    layer = 2 * d * d + 2 * d * config.n_kv_heads * d_head + 3 * d * d_ff + 2 * d  # Q, O; K, V; SwiGLU; 2 norms
    head = 0 if config.tie_embeddings else config.vocab_size * d
    return config.vocab_size * d + config.n_layers * layer + d + head
