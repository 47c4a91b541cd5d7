"""Checks for the exercises of chapter 02 (the transformer layer): LayerNorm with gain and bias (eq. 3 as real
models use it), the feed-forward of eq. (2) with BERT's and GPT-2's activations, and a GPT-2-like parameter count.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .._validate import check_int
from ..layers import FeedForward
from . import compare, gen, loaded, randn


def check_layer_norm(fn: Callable) -> bool:
    """fn(x, gain, bias, eps) = gain * (x - mu) / sqrt(sigma^2 + eps) + bias over the last dimension of x (..., d).

    sigma^2 is the biased variance (1/d, as eq. (3)); gain and bias are (d,). Reference: F.layer_norm.
    """

    def reference(x, gain, bias, eps):
        return F.layer_norm(x, (x.shape[-1],), gain, bias, eps)

    def case(shape: tuple, eps: float, seed: int, scale: float = 1.0, shift: float = 0.0, plain: bool = False):
        d = shape[-1]
        x = randn(*shape, seed=seed, scale=scale, shift=shift)
        if plain:  # gain 1, bias 0: the lecture's eq. (3) plus eps
            return x, torch.ones(d), torch.zeros(d), eps
        return x, 0.5 + torch.rand(d, generator=gen(seed + 1)), randn(d, seed=seed + 2, scale=0.5), eps

    constant = case((3, 8), 1e-5, seed=60)
    constant[0][1] = 2.5  # a constant vector: sigma = 0, eq. (3) without eps would divide 0 by 0
    cases = [
        case((4, 8), 1e-5, seed=10, plain=True),
        case((2, 5, 16), 1e-5, seed=20),  # a batch (B, L, d)
        case((3, 32), 1e-12, seed=30, scale=3.0, shift=2.0),  # BERT's eps; mean far from 0
        case((2, 6), 1e-5, seed=40),  # small d: the unbiased 1/(d-1) variance is visibly wrong
        case((4, 16), 1e-2, seed=50, scale=0.05),  # tiny activations: eps matters
        constant,
    ]
    return compare("layer norm (eq. 3, gain and bias)", fn, reference, cases, forbidden=("layer_norm", "LayerNorm"))


def check_feed_forward(fn: Callable) -> bool:
    """fn(y, W1, b1, W2, b2, activation) = W2 act(W1 y_i + b1) + b2 for every vector y_i of y (..., d_model).

    W1 is (d_ff, d_model) and W2 (d_model, d_ff) as in eq. (2) (and nn.Linear); activation is "relu" (eq. 2,
    the original Transformer), "gelu" (exact erf: BERT, BART) or "gelu_tanh" (GPT-2). Reference: FeedForward.
    """

    def reference(y, W1, b1, W2, b2, activation):
        state = {"w1.weight": W1, "w1.bias": b1, "w2.weight": W2, "w2.bias": b2}
        return loaded(lambda: FeedForward(W1.shape[1], W1.shape[0], activation=activation), state)(y)

    def case(shape: tuple, d_ff: int, activation: str, seed: int):
        d = shape[-1]
        return (randn(*shape, seed=seed, scale=2.0),  # large enough that the activations differ visibly
                randn(d_ff, d, seed=seed + 1, scale=d ** -0.5), randn(d_ff, seed=seed + 2, scale=0.5),
                randn(d, d_ff, seed=seed + 3, scale=d_ff ** -0.5), randn(d, seed=seed + 4, scale=0.1),
                activation)

    cases = [
        case((5, 8), 32, "relu", seed=10),  # eq. (2): d_ff = 4 d, ReLU
        case((2, 4, 16), 64, "relu", seed=20),  # a batch (B, L, d_model)
        case((2, 6, 16), 64, "gelu", seed=30),  # BERT
        case((2, 6, 16), 64, "gelu_tanh", seed=40),  # GPT-2
        case((3, 12), 20, "gelu", seed=50),  # d_ff need not be 4 d
    ]
    return compare("feed-forward (eq. 2)", fn, reference, cases, forbidden=("FeedForward",))


def gpt2_param_count(vocab_size: int, max_len: int, d_model: int, n_layers: int, d_ff: int) -> int:
    """The reference for check_param_count: parameters of transformers' GPT2Model, built on the meta device."""
    from transformers import GPT2Config, GPT2Model

    for name, value in (("vocab_size", vocab_size), ("max_len", max_len), ("d_model", d_model),
                        ("n_layers", n_layers), ("d_ff", d_ff)):
        check_int(name, value, 1)
    config = GPT2Config(vocab_size=vocab_size, n_positions=max_len, n_embd=d_model, n_layer=n_layers,
                        n_head=1, n_inner=d_ff, bos_token_id=None, eos_token_id=None)
    with torch.device("meta"):  # shapes only: no memory, no random initialisation
        model = GPT2Model(config)
    return sum(p.numel() for p in model.parameters())


def check_param_count(fn: Callable) -> bool:
    """fn(vocab_size, max_len, d_model, n_layers, d_ff) = number of parameters of a GPT-2-like decoder.

    Token and position embeddings (no token types, no embedding LayerNorm), n_layers pre-LN layers (attention with
    biases, the FFN of eq. (2), two LayerNorms with gain and bias), a final LayerNorm, and an output layer tied to
    the token embeddings (no new parameters). Reference: transformers' GPT2Model; the number of heads does not
    matter. The answer must be a whole number.
    """
    cases = [
        (100, 32, 16, 2, 64),
        (1000, 128, 64, 3, 256),
        (50, 8, 8, 1, 24),  # d_ff = 3 d: use d_ff, not 4 d
        (30522, 512, 384, 6, 1536),  # MiniLM's sizes, as a decoder
        (50257, 1024, 768, 12, 3072),  # gpt2: 124,439,808
    ]
    return compare("parameter count (GPT-2-like)", fn, gpt2_param_count, cases, atol=0)
