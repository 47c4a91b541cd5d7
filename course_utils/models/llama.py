"""Today's decoder (Llama, SmolLM2): the causal decoder of the lecture with RMSNorm, RoPE, SwiGLU and grouped-query
attention. Side by side with decoder.py, the GPT-2 layout: the same loop, other parts, no position embedding."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..attention import KVCache, rotary_angles
from ..layers import LlamaLayer, RMSNorm
from ._common import Configured, check_config, decoder_inputs, init_bert_weights
from .decoder import DecoderOutput


@dataclass(frozen=True)
class LlamaConfig:
    """Llama's hyper-parameters; SmolLM2-135M is LlamaConfig(49152, 576, 9, 3, 30, 1536, 8192, 1e-5, 100000.0)."""

    vocab_size: int
    d_model: int = 128
    n_heads: int = 4
    n_kv_heads: int = 2  # grouped-query attention: n_heads / n_kv_heads query heads share one key/value head
    n_layers: int = 4
    d_ff: int | None = None  # SwiGLU's width, 8/3 d_model by default
    max_len: int = 2048  # the context: RoPE has no table of positions, this only bounds the prompt
    eps: float = 1e-5
    rope_theta: float = 10_000.0
    tie_embeddings: bool = True  # the LM head is the token embedding (SmolLM2); False: a separate lm_head (Llama 2, 3)

    def __post_init__(self):
        check_config(self)


class LlamaDecoder(Configured):
    """A causal transformer language model in Llama's layout: pre-norm RMSNorm layers, GQA with RoPE, SwiGLU.

    forward(input_ids, attention_mask) returns a DecoderOutput with .logits, as Decoder does, so generate() and
    the widgets take either.
    """

    config_class = LlamaConfig

    def __init__(self, vocab_size: int, **options):
        """options: the other fields of LlamaConfig (d_model, n_heads, n_kv_heads, n_layers, d_ff, rope_theta, ...)."""
        super().__init__()
        self.config = c = LlamaConfig(vocab_size, **options)
        self.tok = nn.Embedding(c.vocab_size, c.d_model)  # no position table: positions enter q and k as rotations
        self.layers = nn.ModuleList(
            LlamaLayer(c.d_model, c.n_heads, c.n_kv_heads, c.d_ff, c.eps, c.rope_theta) for _ in range(c.n_layers)
        )
        self.norm = RMSNorm(c.d_model, c.eps)  # the final norm, as GPT-2's ln_f
        self.lm_head = None if c.tie_embeddings else nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.apply(init_bert_weights)  # N(0, 0.02): Llama's initializer_range too

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
        logits_to_keep: int = 0,
    ) -> DecoderOutput:
        """Next-token logits (B, L, V) for input_ids (B, L), the L tokens after the T_past ones in the cache.

        attention_mask (B, T_past + L) covers every key (0 = padding); position_ids (B, L) default to
        T_past .. T_past + L - 1 (a left-padded batch passes cumsum(attention_mask) - 1, as transformers).
        logits_to_keep > 0: the logits of the last logits_to_keep positions only (transformers' name); hidden
        states and attentions stay whole.
        """
        c = self.config
        mask, position_ids = decoder_inputs(c, input_ids, attention_mask, position_ids, cache, logits_to_keep)
        rotary = rotary_angles(position_ids, c.d_model // c.n_heads, c.rope_theta)  # (cos, sin), for every layer

        x = self.tok(input_ids)  # (B, L, d_model): nothing added, the positions act inside attention
        hidden_states, attentions = [x], []
        for i, layer in enumerate(self.layers):
            x, alpha = layer(x, mask, rotary=rotary, cache=None if cache is None else cache[i])
            hidden_states.append(x)
            attentions.append(alpha)
        x = self.norm(x[:, -logits_to_keep:] if logits_to_keep else x)  # a prefill needs the last position's only
        logits = x @ self.tok.weight.T if self.lm_head is None else self.lm_head(x)  # (B, L, V)
        return DecoderOutput(logits, tuple(hidden_states), tuple(attentions))
