"""Chapter 07's exercises, solved: a cross-attention head, the shifted decoder input, the decoder's self mask."""

import math

import torch


def cross_attention_head(q, k, v, source_mask):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, L_dec, L_enc)
    s = s.masked_fill(source_mask[:, None, :] == 0, float("-inf"))  # no causal mask: the whole source
    alpha = torch.softmax(s, dim=-1)  # over the encoder positions
    return alpha @ v, alpha


def shift(labels, pad_token_id, decoder_start_token_id):
    shifted = torch.full_like(labels, decoder_start_token_id)  # (B, L), column 0 = start
    shifted[:, 1:] = labels[:, :-1]  # one step right, last label dropped
    return shifted.masked_fill(shifted == -100, pad_token_id)


def decoder_mask(decoder_attention_mask):
    L = decoder_attention_mask.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool).tril()  # (L, L): j <= i
    keys = decoder_attention_mask.bool()[:, None, None, :]  # (B, 1, 1, L): real keys
    return keys & causal  # (B, 1, L, L)
