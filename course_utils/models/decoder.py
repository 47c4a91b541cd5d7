"""The causal decoder of the lecture (GPT-2's layout): token i attends to tokens j <= i only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..attention import KVCache
from ..layers import LayerNorm, TransformerLayer
from ._common import Configured, check_config, decoder_inputs, init_bert_weights


@dataclass(frozen=True)
class DecoderConfig:
    """GPT-2's hyper-parameters (pre-LN, tanh GELU); causal=False builds the same model with a bidirectional mask."""

    vocab_size: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None
    max_len: int = 128
    activation: str = "gelu_tanh"
    eps: float = 1e-5
    dropout: float = 0.0
    causal: bool = True

    def __post_init__(self):
        check_config(self)


class DecoderOutput(NamedTuple):
    logits: torch.Tensor  # (B, L, V): scores of the next token after each position
    hidden_states: tuple[torch.Tensor, ...]  # n_layers + 1: embeddings, each layer's output (last: before ln_f)
    attentions: tuple[torch.Tensor, ...]  # n_layers tensors (B, H, L, T_past + L)


class Decoder(Configured):
    """A causal transformer language model (GPT-2's layout: pre-LN, tanh GELU, final LayerNorm, tied LM head).

    Token i attends to tokens j <= i only, so one pass scores every next token p(w_{i+1} | w_1 .. w_i).
    causal=False builds the same model with a bidirectional mask: it can peek at the token it must predict.
    """

    config_class = DecoderConfig

    def __init__(self, vocab_size: int, **options):
        """options: the other fields of DecoderConfig (d_model, n_heads, n_layers, d_ff, max_len, causal, ...)."""
        super().__init__()
        self.config = c = DecoderConfig(vocab_size, **options)
        self.tok = nn.Embedding(c.vocab_size, c.d_model)  # GPT-2's wte, also the LM head
        self.pos = nn.Embedding(c.max_len, c.d_model)  # wpe: position i reads row i
        self.dropout = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(c.d_model, c.n_heads, c.d_ff, "pre", c.activation, c.dropout, c.eps)
            for _ in range(c.n_layers)
        )
        self.norm = LayerNorm(c.d_model, c.eps)  # ln_f: pre-LN never normalises the residual stream itself
        self.apply(init_bert_weights)  # N(0, 0.02) and zero biases, GPT-2's initialisation too
        for layer in self.layers:  # GPT-2: the 2 n_layers projections into the residual stream get 0.02 / sqrt(2 n)
            for w in (layer.attn.out_proj.weight, layer.ffn.w2.weight):
                nn.init.normal_(w, std=0.02 / math.sqrt(2 * c.n_layers))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
        logits_to_keep: int = 0,
    ) -> DecoderOutput:
        """Next-token logits (B, L, V) for input_ids (B, L): the L tokens after the T_past ones in the cache.

        attention_mask (B, T_past + L) covers every key, cached ones included (0 = padding); position_ids (B, L)
        default to T_past .. T_past + L - 1 (a left-padded batch passes cumsum(attention_mask) - 1, as transformers).
        logits_to_keep > 0: the logits of the last logits_to_keep positions only (transformers' name); hidden
        states and attentions stay whole.
        """
        mask, position_ids = decoder_inputs(self.config, input_ids, attention_mask, position_ids, cache, logits_to_keep)
        x = self.dropout(self.tok(input_ids) + self.pos(position_ids))  # (B, L, d_model)
        hidden_states, attentions = [x], []
        for i, layer in enumerate(self.layers):
            x, alpha = layer(x, mask=mask, cache=None if cache is None else cache[i])
            hidden_states.append(x)
            attentions.append(alpha)
        x = x[:, -logits_to_keep:] if logits_to_keep else x  # a prompt's prefill needs the last position's only
        logits = self.norm(x) @ self.tok.weight.T  # (B, L, V): the LM head is the token embedding matrix (tied)
        return DecoderOutput(logits, tuple(hidden_states), tuple(attentions))
