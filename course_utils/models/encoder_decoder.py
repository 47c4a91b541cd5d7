"""The encoder-decoder of the lecture (BART's layout): cross-attention from each decoder layer to h^enc."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .._validate import check_finite, check_ids, check_tensor
from ..attention import KVCache, LayerCache, MultiHeadAttention, causal_mask
from ..layers import FeedForward, LayerNorm, TransformerLayer
from ._common import Configured, check_cache, check_config, init_bert_weights, key_mask

BART_POSITION_OFFSET = 2  # BART's learned positions: position i reads row i + 2 of the table (a fairseq legacy)


@dataclass(frozen=True)
class EncoderDecoderConfig:
    """BART's hyper-parameters (post-LN, GELU, learned positions, one shared embedding) and its special token ids."""

    vocab_size: int
    d_model: int = 128
    n_heads: int = 4
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    d_ff: int | None = None
    max_len: int = 128
    activation: str = "gelu"
    eps: float = 1e-5
    dropout: float = 0.0
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    decoder_start_token_id: int = 2

    def __post_init__(self):
        check_config(self)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder output, feed-forward: each post-LN, as in BART."""

    def __init__(
        self, d_model: int, n_heads: int, d_ff: int | None = None, activation: str = "gelu", dropout: float = 0.0,
        eps: float = 1e-5,
    ):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)  # queries from the decoder, keys/values from h^enc
        self.ffn = FeedForward(d_model, d_ff, activation, dropout)
        self.norm1, self.norm2, self.norm3 = (LayerNorm(d_model, eps) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        encoder_hidden: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        cross_mask: torch.Tensor | None = None,
        *,
        cache: LayerCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, L, d_model), h^enc (B, L_enc, d_model) -> (x, self-attention alpha, cross-attention alpha)."""
        y, alpha = self.self_attn(x, mask=self_mask, cache=cache)  # alpha (B, H, L, T_past + L)
        x = self.norm1(x + self.dropout(y))
        y, alpha_cross = self.cross_attn(x, encoder_hidden, mask=cross_mask, cache=cache)  # the same call, h^enc
        x = self.norm2(x + self.dropout(y))  # alpha_cross (B, H, L, L_enc): which source tokens each target reads
        x = self.norm3(x + self.dropout(self.ffn(x)))
        return x, alpha, alpha_cross


class Seq2SeqOutput(NamedTuple):
    logits: torch.Tensor  # (B, L_dec, V)
    encoder_last_hidden_state: torch.Tensor  # (B, L_enc, d_model): h^enc
    decoder_attentions: tuple[torch.Tensor, ...]  # n_decoder_layers tensors (B, H, L_dec, T_past + L_dec)
    cross_attentions: tuple[torch.Tensor, ...]  # n_decoder_layers tensors (B, H, L_dec, L_enc)


class EncoderDecoder(Configured):
    """An encoder-decoder transformer (BART's layout: post-LN, GELU, learned positions, one shared embedding).

    The encoder reads the source bidirectionally into h^enc; each decoder layer attends causally to the target
    so far, then to h^enc (cross-attention). The LM head is the shared embedding plus BART's final_logits_bias.
    """

    config_class = EncoderDecoderConfig

    def __init__(self, vocab_size: int, **options):
        """options: the other fields of EncoderDecoderConfig (d_model, n_heads, n_encoder_layers, ...)."""
        super().__init__()
        self.config = c = EncoderDecoderConfig(vocab_size, **options)
        self.tok = nn.Embedding(c.vocab_size, c.d_model)  # shared by encoder, decoder and LM head
        self.enc_pos = nn.Embedding(c.max_len + BART_POSITION_OFFSET, c.d_model)
        self.enc_norm = LayerNorm(c.d_model, c.eps)  # BART's layernorm_embedding
        self.encoder_layers = nn.ModuleList(
            TransformerLayer(c.d_model, c.n_heads, c.d_ff, "post", c.activation, c.dropout, c.eps)
            for _ in range(c.n_encoder_layers)
        )
        self.dec_pos = nn.Embedding(c.max_len + BART_POSITION_OFFSET, c.d_model)
        self.dec_norm = LayerNorm(c.d_model, c.eps)
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(c.d_model, c.n_heads, c.d_ff, c.activation, c.dropout, c.eps)
            for _ in range(c.n_decoder_layers)
        )
        self.dropout = nn.Dropout(c.dropout)
        self.register_buffer("final_logits_bias", torch.zeros(c.vocab_size))  # (V,), BART's output bias, not trained
        self.apply(init_bert_weights)  # N(0, 0.02) and zero biases, BART's init_std too

    def _embed(self, ids: torch.Tensor, pos: nn.Embedding, norm: LayerNorm, start: int = 0) -> torch.Tensor:
        """Token + learned position embedding (position i reads row i + 2), then BART's layernorm_embedding."""
        positions = torch.arange(start, start + ids.shape[1], device=ids.device) + BART_POSITION_OFFSET  # (L,)
        return self.dropout(norm(self.tok(ids) + pos(positions)))  # (B, L, d_model)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """h^enc (B, L_enc, d_model) of a source input_ids (B, L_enc); attention_mask (B, L_enc), 0 = padding."""
        return self._encode(input_ids, self._source_mask(input_ids, attention_mask))

    def _encode(self, input_ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The encoder stack on checked ids; mask (B, 1, 1, L_enc) hides the source's padding."""
        x = self._embed(input_ids, self.enc_pos, self.enc_norm)  # (B, L_enc, d_model)
        for layer in self.encoder_layers:
            x, _ = layer(x, mask=mask)
        return x

    def decode(
        self,
        decoder_input_ids: torch.Tensor,
        encoder_hidden: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
        *,
        decoder_attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> Seq2SeqOutput:
        """Next-token logits (B, L, V) for decoder_input_ids (B, L), the L target tokens after the cached ones.

        encoder_hidden is h^enc (B, L_enc, d_model) from `encode`; decoder_attention_mask (B, T_past + L) covers
        the cached keys too. With a cache the cross-attention keys and values of h^enc are computed once.
        """
        self._check_encoder_hidden(encoder_hidden, cache)
        masks = self._target_masks(decoder_input_ids, tuple(encoder_hidden.shape[:2]), encoder_attention_mask,
                                   decoder_attention_mask, cache)
        return self._decode(decoder_input_ids, encoder_hidden, *masks, cache)

    def _decode(self, decoder_input_ids, encoder_hidden, self_mask, cross_mask, past: int, cache) -> Seq2SeqOutput:
        """The decoder stack on checked inputs: masks and T_past from _target_masks."""
        x = self._embed(decoder_input_ids, self.dec_pos, self.dec_norm, start=past)  # (B, L, d_model)
        attentions, cross_attentions = [], []
        for i, layer in enumerate(self.decoder_layers):
            layer_cache = None if cache is None else cache[i]
            x, alpha, alpha_cross = layer(x, encoder_hidden, self_mask, cross_mask, cache=layer_cache)
            attentions.append(alpha)
            cross_attentions.append(alpha_cross)
        logits = x @ self.tok.weight.T + self.final_logits_bias  # (B, L, V): the tied LM head
        return Seq2SeqOutput(logits, encoder_hidden, tuple(attentions), tuple(cross_attentions))

    def forward(
        self,
        input_ids: torch.Tensor,
        decoder_input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
    ) -> Seq2SeqOutput:
        """encode the source (B, L_enc), then decode the whole target (B, L_dec) at once (teacher forcing)."""
        source_mask = self._source_mask(input_ids, attention_mask)  # every input checked once, before any work
        masks = self._target_masks(decoder_input_ids, tuple(input_ids.shape), attention_mask, decoder_attention_mask,
                                   None)
        h = self._encode(input_ids, source_mask)  # (B, L_enc, d_model)
        return self._decode(decoder_input_ids, h, *masks, None)

    def _source_mask(self, input_ids, attention_mask) -> torch.Tensor | None:
        """Check the source (B, L_enc) and return its key mask (B, 1, 1, L_enc) or None."""
        check_ids("input_ids", input_ids, self.config.vocab_size)
        B, L = input_ids.shape
        if L == 0:
            raise ValueError(f"input_ids (the source) must hold at least one token, got shape {(B, L)}")
        if L > self.config.max_len:
            raise ValueError(f"input_ids has {L} positions, more than max_len={self.config.max_len}")
        return key_mask("attention_mask", attention_mask, (B, L))

    def _check_encoder_hidden(self, encoder_hidden, cache) -> None:
        """h^enc (B, L_enc >= 1, d_model), finite where it is read: at the first step (then its keys are cached)."""
        check_tensor("encoder_hidden", encoder_hidden, ndim=3, floating=True)
        if encoder_hidden.shape[1] == 0 or encoder_hidden.shape[2] != self.config.d_model:
            raise ValueError(f"encoder_hidden must have shape (B, L_enc >= 1, d_model={self.config.d_model}), "
                             f"got {tuple(encoder_hidden.shape)}")
        if not isinstance(cache, KVCache) or not cache.layers or cache.layers[0].cross is None:
            check_finite("encoder_hidden", encoder_hidden)

    def _target_masks(self, decoder_input_ids, source_shape: tuple[int, int], encoder_attention_mask,
                      decoder_attention_mask, cache) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """Check the target (B, L) against the source (B, L_enc); return the causal self mask, cross mask, T_past."""
        c = self.config
        check_ids("decoder_input_ids", decoder_input_ids, c.vocab_size)
        B, L = decoder_input_ids.shape
        if B != source_shape[0]:
            raise ValueError(f"decoder_input_ids must have the source's batch size {source_shape[0]}, got {B}")
        if L == 0:
            raise ValueError(f"decoder_input_ids must hold at least one token, got shape {(B, L)}")
        past = check_cache(cache, B)
        if past + L > c.max_len:
            raise ValueError(f"decoder_input_ids of {L} tokens + {past} cached exceeds max_len={c.max_len}")
        cross_mask = key_mask("encoder_attention_mask", encoder_attention_mask, source_shape)  # (B, 1, 1, L_enc)
        self_mask = causal_mask(L, past + L).to(decoder_input_ids.device)  # (L, T_past + L)
        pad = key_mask("decoder_attention_mask", decoder_attention_mask, (B, past + L))
        return (self_mask if pad is None else pad & self_mask), cross_mask, past
