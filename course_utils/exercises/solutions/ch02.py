"""Chapter 02's exercises, solved: LayerNorm, the feed-forward of eq. (2), GPT-2's parameter count."""

import torch
import torch.nn.functional as F


def layer_norm(x, gain, bias, eps):
    mu = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)  # (..., 1), divides by d
    return gain * (x - mu) / torch.sqrt(var + eps) + bias  # (..., d)


def feed_forward(y, W1, b1, W2, b2, activation):
    act = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}[activation]
    z = act(y @ W1.T + b1)  # (..., d_ff)
    return z @ W2.T + b2  # (..., d_model)


def gpt2_params(vocab_size, max_len, d_model, n_layers, d_ff):
    attention = 4 * d_model * d_model + 4 * d_model  # Q, K, V, output projection, with biases
    ffn = 2 * d_model * d_ff + d_ff + d_model  # W1, b1, W2, b2: eq. (2)
    norms = 2 * 2 * d_model  # two LayerNorms: gain and bias
    embeddings = (vocab_size + max_len) * d_model  # token and position; the output layer is tied
    return embeddings + n_layers * (attention + ffn + norms) + 2 * d_model  # + the final LayerNorm
