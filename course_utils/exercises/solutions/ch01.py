"""Chapter 01's exercises, solved: softmax, eq. (1), the causal mask, the split into heads."""

import torch


def softmax(s):
    e = torch.exp(s - s.max(dim=-1, keepdim=True).values)  # the largest entry becomes e^0 = 1: no overflow
    return e / e.sum(dim=-1, keepdim=True)


def attention(x, Q, K, V):
    q, k, v = x @ Q.T, x @ K.T, x @ V.T  # (L, d), (L, d), (L, d_v): row i is Q x_i, etc.
    alpha = torch.softmax(q @ k.T, dim=-1)  # (L, L): row i is alpha_i
    return alpha @ v, alpha  # (L, d_v), (L, L)


def causal_mask_of(L):
    return torch.ones(L, L, dtype=torch.bool).tril()  # keep the diagonal: a token sees itself


def split_heads(x, n_heads):
    B, L, d = x.shape
    return x.view(B, L, n_heads, d // n_heads).transpose(1, 2)  # (B, L, H, d_head) -> (B, H, L, d_head)
