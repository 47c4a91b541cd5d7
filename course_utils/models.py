"""Whole models assembled from the layers: Encoder (BERT-like), Decoder (GPT-like), EncoderDecoder (BART-like).

EncoderForPreTraining adds BERT's two pre-training heads (MLM, tied to the input embeddings, and NSP);
EncoderForClassification swaps them for a classifier on [CLS] (figure 8 of the lecture: fine-tuning).
Decoder is a causal language model; EncoderDecoder adds cross-attention from the decoder to the encoder output.
Both accept a KVCache, so generation feeds one new token at a time.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ._validate import check_ids, check_positive_int, check_tensor
from .attention import KVCache, MultiHeadAttention, causal_mask, padding_mask
from .layers import ACTIVATIONS, FeedForward, LayerNorm, TransformerLayer

BART_POSITION_OFFSET = 2  # BART's learned positions: position i reads row i + 2 of the table (a fairseq legacy)


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: N(0, 0.02) weights, zero biases; the LayerNorms keep gain 1 and bias 0."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class Embeddings(nn.Module):
    """BERT's input embeddings: token + position + token type, then LayerNorm (figures 6 and 7 of the lecture)."""

    def __init__(self, vocab_size: int, d_model: int, max_len: int, type_vocab_size: int, eps: float, dropout: float):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.typ = nn.Embedding(type_vocab_size, d_model)
        self.norm = LayerNorm(d_model, eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (L,)
        x = self.tok(input_ids) + self.pos(positions) + self.typ(token_type_ids)  # (B, L, d_model)
        return self.dropout(self.norm(x))


class EncoderOutput(NamedTuple):
    last_hidden_state: torch.Tensor  # (B, L, d_model)
    hidden_states: tuple[torch.Tensor, ...]  # n_layers + 1 tensors: the embeddings, then each layer's output
    attentions: tuple[torch.Tensor, ...]  # n_layers tensors (B, H, L, L)


class Encoder(nn.Module):
    """A bidirectional transformer (BERT's layout: post-LN, GELU): every token attends to every real token."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        n_heads: int = 4,
        n_layers: int = 4,
        d_ff: int | None = None,
        max_len: int = 512,
        type_vocab_size: int = 2,
        activation: str = "gelu",
        eps: float = 1e-12,
        dropout: float = 0.0,
    ):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("n_layers", n_layers), ("max_len", max_len),
                            ("type_vocab_size", type_vocab_size)):
            check_positive_int(name, value)
        self.vocab_size, self.max_len, self.type_vocab_size = vocab_size, max_len, type_vocab_size
        self.embeddings = Embeddings(vocab_size, d_model, max_len, type_vocab_size, eps, dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(d_model, n_heads, d_ff, norm="post", activation=activation, dropout=dropout, eps=eps)
            for _ in range(n_layers)
        )
        self.apply(init_bert_weights)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """input_ids (B, L); token_type_ids (B, L) in {0, 1}; attention_mask (B, L), 0 = padding."""
        check_ids("input_ids", input_ids, self.vocab_size)
        B, L = input_ids.shape
        if L > self.max_len:
            raise ValueError(f"input_ids has {L} positions, more than max_len={self.max_len}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        check_ids("token_type_ids", token_type_ids, self.type_vocab_size, shape=(B, L))
        mask = None
        if attention_mask is not None:
            check_tensor("attention_mask", attention_mask, ndim=2)
            if tuple(attention_mask.shape) != (B, L):
                raise ValueError(f"attention_mask must have shape {(B, L)}, got {tuple(attention_mask.shape)}")
            mask = padding_mask(attention_mask)  # (B, 1, 1, L)

        x = self.embeddings(input_ids, token_type_ids)  # (B, L, d_model)
        hidden_states, attentions = [x], []
        for layer in self.layers:
            x, alpha = layer(x, mask=mask)
            hidden_states.append(x)
            attentions.append(alpha)
        return EncoderOutput(x, tuple(hidden_states), tuple(attentions))


class Pooler(nn.Module):
    """BERT's pooler: the [CLS] vector through a dense layer and tanh, the input of the sentence-level heads."""

    def __init__(self, d_model: int):
        super().__init__()
        self.dense = nn.Linear(d_model, d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(h[:, 0]))  # (B, d_model), from [CLS] at position 0


class MLMHead(nn.Module):
    """Predicts the token at every position: dense + activation + LayerNorm, then the tied embedding matrix."""

    def __init__(self, embedding: nn.Embedding, activation: str, eps: float):
        super().__init__()
        d_model = embedding.embedding_dim
        self.dense = nn.Linear(d_model, d_model)
        self.activation = activation
        self.norm = LayerNorm(d_model, eps)
        self.embedding = embedding  # shared with the input: logits_w = e_w . h + b_w
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.norm(ACTIVATIONS[self.activation](self.dense(h)))  # (B, L, d_model)
        return h @ self.embedding.weight.T + self.bias  # (B, L, V)


class PreTrainingOutput(NamedTuple):
    mlm_logits: torch.Tensor  # (B, L, V)
    nsp_logits: torch.Tensor  # (B, 2): index 0 = IsNext, 1 = random (BERT's convention)
    encoder: EncoderOutput


class EncoderForPreTraining(nn.Module):
    """Encoder + BERT's pre-training heads: masked language modelling and next sentence prediction."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        if not isinstance(encoder, Encoder):
            raise TypeError(f"encoder must be a course_utils Encoder, got {type(encoder).__name__}")
        layer = encoder.layers[0]
        self.encoder = encoder
        self.pooler = Pooler(layer.attn.d_model)
        self.mlm = MLMHead(encoder.embeddings.tok, layer.ffn.activation, layer.norm1.eps)
        self.nsp = nn.Linear(layer.attn.d_model, 2)
        for head in (self.pooler, self.mlm.dense, self.nsp):
            head.apply(init_bert_weights)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> PreTrainingOutput:
        out = self.encoder(input_ids, token_type_ids, attention_mask)
        return PreTrainingOutput(self.mlm(out.last_hidden_state), self.nsp(self.pooler(out.last_hidden_state)), out)


class EncoderForClassification(nn.Module):
    """Encoder + a classifier on the pooled [CLS] vector: the fine-tuning model of figure 8."""

    def __init__(self, encoder: Encoder, n_labels: int, dropout: float = 0.1):
        super().__init__()
        if not isinstance(encoder, Encoder):
            raise TypeError(f"encoder must be a course_utils Encoder, got {type(encoder).__name__}")
        check_positive_int("n_labels", n_labels)
        d_model = encoder.layers[0].attn.d_model
        self.encoder = encoder
        self.pooler = Pooler(d_model)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(d_model, n_labels)
        for head in (self.pooler, self.classifier):
            head.apply(init_bert_weights)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class logits (B, n_labels)."""
        h = self.encoder(input_ids, token_type_ids, attention_mask).last_hidden_state
        return self.classifier(self.dropout(self.pooler(h)))


def _key_mask(name: str, attention_mask: torch.Tensor | None, shape: tuple[int, int]) -> torch.Tensor | None:
    """The boolean key mask (B, 1, 1, T) of a 0/1 attention_mask that must have `shape` (B, T); None stays None."""
    if attention_mask is None:
        return None
    check_tensor(name, attention_mask, ndim=2)
    if tuple(attention_mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(attention_mask.shape)}")
    return padding_mask(attention_mask)  # (B, 1, 1, T)


def _check_cache(cache) -> int:
    """T_past, the number of tokens a KVCache (or None) already holds."""
    if cache is not None and not isinstance(cache, KVCache):
        raise TypeError(f"cache must be a course_utils KVCache, got {type(cache).__name__}")
    return 0 if cache is None else cache.length


class DecoderOutput(NamedTuple):
    logits: torch.Tensor  # (B, L, V): scores of the next token after each position
    hidden_states: tuple[torch.Tensor, ...]  # n_layers + 1: embeddings, each layer's output (last: before ln_f)
    attentions: tuple[torch.Tensor, ...]  # n_layers tensors (B, H, L, T_past + L)


class Decoder(nn.Module):
    """A causal transformer language model (GPT-2's layout: pre-LN, tanh GELU, final LayerNorm, tied LM head).

    Token i attends to tokens j <= i only, so one pass scores every next token p(w_{i+1} | w_1 .. w_i).
    causal=False builds the same model with a bidirectional mask: it can peek at the token it must predict.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        n_heads: int = 4,
        n_layers: int = 4,
        d_ff: int | None = None,
        max_len: int = 128,
        activation: str = "gelu_tanh",
        eps: float = 1e-5,
        dropout: float = 0.0,
        causal: bool = True,
    ):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("d_model", d_model), ("n_layers", n_layers),
                            ("max_len", max_len)):
            check_positive_int(name, value)
        if not isinstance(causal, bool):
            raise TypeError(f"causal must be a bool, got {causal!r}")
        self.vocab_size, self.max_len, self.n_layers, self.causal = vocab_size, max_len, n_layers, causal
        self.tok = nn.Embedding(vocab_size, d_model)  # GPT-2's wte, also the LM head
        self.pos = nn.Embedding(max_len, d_model)  # wpe: position i reads row i
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(d_model, n_heads, d_ff, norm="pre", activation=activation, dropout=dropout, eps=eps)
            for _ in range(n_layers)
        )
        self.norm = LayerNorm(d_model, eps)  # ln_f: pre-LN never normalises the residual stream itself
        self.apply(init_bert_weights)  # N(0, 0.02) and zero biases, GPT-2's initialisation too
        for layer in self.layers:  # GPT-2: the 2 n_layers projections into the residual stream get 0.02 / sqrt(2 n)
            for w in (layer.attn.out_proj.weight, layer.ffn.w2.weight):
                nn.init.normal_(w, std=0.02 / math.sqrt(2 * n_layers))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> DecoderOutput:
        """Next-token logits (B, L, V) for input_ids (B, L): the L tokens after the T_past ones in the cache.

        attention_mask (B, T_past + L) covers every key, cached ones included (0 = padding); position_ids (B, L)
        default to T_past .. T_past + L - 1 (a left-padded batch passes cumsum(attention_mask) - 1, as transformers).
        """
        check_ids("input_ids", input_ids, self.vocab_size)
        B, L = input_ids.shape
        if L == 0:
            raise ValueError(f"input_ids must hold at least one token, got shape {tuple(input_ids.shape)}")
        past = _check_cache(cache)
        if cache is not None and not self.causal:
            raise ValueError("cache needs causal=True: a bidirectional model must re-read the whole sequence")
        T = past + L
        if T > self.max_len:
            raise ValueError(f"prompt of {L} tokens + {past} cached exceeds max_len={self.max_len}")
        if position_ids is None:
            position_ids = torch.arange(past, T, device=input_ids.device).expand(B, L)
        check_ids("position_ids", position_ids, self.max_len, shape=(B, L))
        mask = _key_mask("attention_mask", attention_mask, (B, T))  # (B, 1, 1, T) or None
        if self.causal:
            causal = causal_mask(L, T).to(input_ids.device)  # (L, T), aligned to the last L keys
            mask = causal if mask is None else mask & causal  # (B, 1, L, T)

        x = self.dropout(self.tok(input_ids) + self.pos(position_ids))  # (B, L, d_model)
        hidden_states, attentions = [x], []
        for i, layer in enumerate(self.layers):
            x, alpha = layer(x, mask=mask, cache=cache, layer=i)
            hidden_states.append(x)
            attentions.append(alpha)
        logits = self.norm(x) @ self.tok.weight.T  # (B, L, V): the LM head is the token embedding matrix (tied)
        return DecoderOutput(logits, tuple(hidden_states), tuple(attentions))


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
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, L, d_model), h^enc (B, L_enc, d_model) -> (x, self-attention alpha, cross-attention alpha)."""
        y, alpha = self.self_attn(x, mask=self_mask, cache=cache, layer=layer)  # alpha (B, H, L, T_past + L)
        x = self.norm1(x + self.dropout(y))
        y, alpha_cross = self.cross_attn(x, encoder_hidden, mask=cross_mask, cache=cache, layer=layer)
        # alpha_cross (B, H, L, L_enc): which source tokens each target token reads
        x = self.norm2(x + self.dropout(y))
        x = self.norm3(x + self.dropout(self.ffn(x)))
        return x, alpha, alpha_cross


class Seq2SeqOutput(NamedTuple):
    logits: torch.Tensor  # (B, L_dec, V)
    encoder_last_hidden_state: torch.Tensor  # (B, L_enc, d_model): h^enc
    decoder_attentions: tuple[torch.Tensor, ...]  # n_decoder_layers tensors (B, H, L_dec, T_past + L_dec)
    cross_attentions: tuple[torch.Tensor, ...]  # n_decoder_layers tensors (B, H, L_dec, L_enc)


class EncoderDecoder(nn.Module):
    """An encoder-decoder transformer (BART's layout: post-LN, GELU, learned positions, one shared embedding).

    The encoder reads the source bidirectionally into h^enc; each decoder layer attends causally to the target
    so far, then to h^enc (cross-attention). The LM head is the shared embedding plus BART's final_logits_bias.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        n_heads: int = 4,
        n_encoder_layers: int = 2,
        n_decoder_layers: int = 2,
        d_ff: int | None = None,
        max_len: int = 128,
        activation: str = "gelu",
        eps: float = 1e-5,
        dropout: float = 0.0,
        pad_token_id: int = 1,
        bos_token_id: int = 0,
        eos_token_id: int = 2,
        decoder_start_token_id: int = 2,
    ):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("d_model", d_model), ("n_encoder_layers", n_encoder_layers),
                            ("n_decoder_layers", n_decoder_layers), ("max_len", max_len)):
            check_positive_int(name, value)
        for name, value in (("pad_token_id", pad_token_id), ("bos_token_id", bos_token_id),
                            ("eos_token_id", eos_token_id), ("decoder_start_token_id", decoder_start_token_id)):
            check_positive_int(name, value, minimum=0)
            if value >= vocab_size:
                raise ValueError(f"{name} must lie in [0, vocab_size={vocab_size}), got {value}")
        self.vocab_size, self.max_len = vocab_size, max_len
        self.n_encoder_layers, self.n_decoder_layers = n_encoder_layers, n_decoder_layers
        self.pad_token_id, self.bos_token_id, self.eos_token_id = pad_token_id, bos_token_id, eos_token_id
        self.decoder_start_token_id = decoder_start_token_id
        self.tok = nn.Embedding(vocab_size, d_model)  # shared by encoder, decoder and LM head
        self.enc_pos = nn.Embedding(max_len + BART_POSITION_OFFSET, d_model)
        self.enc_norm = LayerNorm(d_model, eps)  # BART's layernorm_embedding
        self.encoder_layers = nn.ModuleList(
            TransformerLayer(d_model, n_heads, d_ff, norm="post", activation=activation, dropout=dropout, eps=eps)
            for _ in range(n_encoder_layers)
        )
        self.dec_pos = nn.Embedding(max_len + BART_POSITION_OFFSET, d_model)
        self.dec_norm = LayerNorm(d_model, eps)
        self.decoder_layers = nn.ModuleList(
            DecoderLayer(d_model, n_heads, d_ff, activation, dropout, eps) for _ in range(n_decoder_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("final_logits_bias", torch.zeros(vocab_size))  # (V,), BART's output bias, not trained
        self.apply(init_bert_weights)  # N(0, 0.02) and zero biases, BART's init_std too

    def _embed(self, ids: torch.Tensor, pos: nn.Embedding, norm: LayerNorm, start: int = 0) -> torch.Tensor:
        """Token + learned position embedding (position i reads row i + 2), then BART's layernorm_embedding."""
        positions = torch.arange(start, start + ids.shape[1], device=ids.device) + BART_POSITION_OFFSET  # (L,)
        return self.dropout(norm(self.tok(ids) + pos(positions)))  # (B, L, d_model)

    def _source_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        """Check the source (B, L_enc) and return its key mask (B, 1, 1, L_enc) or None."""
        check_ids("input_ids", input_ids, self.vocab_size)
        B, L = input_ids.shape
        if L == 0:
            raise ValueError(f"input_ids (the source) must hold at least one token, got shape {(B, L)}")
        if L > self.max_len:
            raise ValueError(f"input_ids has {L} positions, more than max_len={self.max_len}")
        return _key_mask("attention_mask", attention_mask, (B, L))

    def _target_masks(
        self,
        decoder_input_ids: torch.Tensor,
        source_shape: tuple[int, int],
        encoder_attention_mask: torch.Tensor | None,
        decoder_attention_mask: torch.Tensor | None,
        past: int,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Check the target (B, L) after `past` cached tokens; return its causal self mask and the cross mask."""
        check_ids("decoder_input_ids", decoder_input_ids, self.vocab_size)
        B, L = decoder_input_ids.shape
        if B != source_shape[0]:
            raise ValueError(f"decoder_input_ids must have the source's batch size {source_shape[0]}, got {B}")
        if L == 0:
            raise ValueError(f"decoder_input_ids must hold at least one token, got shape {(B, L)}")
        if past + L > self.max_len:
            raise ValueError(f"decoder_input_ids of {L} tokens + {past} cached exceeds max_len={self.max_len}")
        cross_mask = _key_mask("encoder_attention_mask", encoder_attention_mask, source_shape)  # (B, 1, 1, L_enc)
        self_mask = causal_mask(L, past + L).to(decoder_input_ids.device)  # (L, T_past + L)
        pad = _key_mask("decoder_attention_mask", decoder_attention_mask, (B, past + L))
        return (self_mask if pad is None else pad & self_mask), cross_mask

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """h^enc (B, L_enc, d_model) of a source input_ids (B, L_enc); attention_mask (B, L_enc), 0 = padding."""
        mask = self._source_mask(input_ids, attention_mask)
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
        check_tensor("encoder_hidden", encoder_hidden, ndim=3, floating=True)
        d_model = self.tok.embedding_dim
        if encoder_hidden.shape[1] == 0 or encoder_hidden.shape[2] != d_model:
            raise ValueError(
                f"encoder_hidden must have shape (B, L_enc >= 1, d_model={d_model}), got {tuple(encoder_hidden.shape)}"
            )
        past = _check_cache(cache)
        source_shape = tuple(encoder_hidden.shape[:2])
        self_mask, cross_mask = self._target_masks(
            decoder_input_ids, source_shape, encoder_attention_mask, decoder_attention_mask, past
        )
        x = self._embed(decoder_input_ids, self.dec_pos, self.dec_norm, start=past)  # (B, L, d_model)
        attentions, cross_attentions = [], []
        for i, layer in enumerate(self.decoder_layers):
            x, alpha, alpha_cross = layer(x, encoder_hidden, self_mask, cross_mask, cache=cache, layer=i)
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
        self._source_mask(input_ids, attention_mask)  # check every input before any work
        self._target_masks(decoder_input_ids, tuple(input_ids.shape), attention_mask, decoder_attention_mask, 0)
        h = self.encode(input_ids, attention_mask)  # (B, L_enc, d_model)
        return self.decode(decoder_input_ids, h, attention_mask, decoder_attention_mask=decoder_attention_mask)


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """The decoder input for teacher forcing: labels (B, L) one step right behind decoder_start, -100 -> pad."""
    check_tensor("labels", labels, ndim=2)
    if labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"labels must be an integer tensor (torch.long), got dtype {labels.dtype}")
    check_positive_int("pad_token_id", pad_token_id, minimum=0)
    check_positive_int("decoder_start_token_id", decoder_start_token_id, minimum=0)
    shifted = torch.full_like(labels, decoder_start_token_id)  # (B, L)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, pad_token_id)  # -100 marks positions the loss ignores
