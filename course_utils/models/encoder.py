"""The encoder of the lecture (BERT's layout): input embeddings, a stack of post-LN layers, and BERT's heads.

EncoderForPreTraining adds the two pre-training heads (MLM, tied to the input embeddings, and NSP);
EncoderForClassification swaps them for a classifier on [CLS] (figure 8 of the lecture: fine-tuning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .._validate import (
    MAX_WIDTH, check_choice, check_ids, check_instance, check_int, check_last_dim, check_positive, check_probability,
    check_tensor,
)
from ..layers import ACTIVATIONS, LayerNorm, TransformerLayer
from ._common import Configured, check_config, init_bert_weights, key_mask


@dataclass(frozen=True)
class EncoderConfig:
    """BERT's hyper-parameters (post-LN, exact GELU); d_ff None means 4 d_model."""

    vocab_size: int
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None
    max_len: int = 512
    type_vocab_size: int = 2
    activation: str = "gelu"
    eps: float = 1e-12
    dropout: float = 0.0

    def __post_init__(self):
        check_config(self)


class Embeddings(nn.Module):
    """BERT's input embeddings: token + position + token type, then LayerNorm (figures 6 and 7 of the lecture)."""

    def __init__(self, c: EncoderConfig):
        super().__init__()
        check_instance("c", c, EncoderConfig)
        self.config = c
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        self.pos = nn.Embedding(c.max_len, c.d_model)
        self.typ = nn.Embedding(c.type_vocab_size, c.d_model)
        self.norm = LayerNorm(c.d_model, c.eps)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids (B, L), token_type_ids (B, L) in {0, 1} (all 0 when None) -> x (B, L, d_model)."""
        self._check_inputs(input_ids, token_type_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (L,)
        x = self.tok(input_ids) + self.pos(positions) + self.typ(token_type_ids)  # (B, L, d_model)
        return self.dropout(self.norm(x))

    def _check_inputs(self, input_ids, token_type_ids) -> None:
        """Ids within the vocabulary, at least one token and no more than the positions, token types in range."""
        c = self.config
        check_ids("input_ids", input_ids, c.vocab_size)
        B, L = input_ids.shape
        if L == 0:
            raise ValueError(f"input_ids must hold at least one token, got shape {(B, L)}")
        if L > c.max_len:
            raise ValueError(f"input_ids has {L} positions, more than max_len={c.max_len}")
        if token_type_ids is not None:
            check_ids("token_type_ids", token_type_ids, c.type_vocab_size, shape=(B, L))


class EncoderOutput(NamedTuple):
    last_hidden_state: torch.Tensor  # (B, L, d_model)
    hidden_states: tuple[torch.Tensor, ...]  # n_layers + 1 tensors: the embeddings, then each layer's output
    attentions: tuple[torch.Tensor, ...]  # n_layers tensors (B, H, L, L)


class Encoder(Configured):
    """A bidirectional transformer (BERT's layout: post-LN, GELU): every token attends to every real token."""

    config_class = EncoderConfig

    def __init__(self, vocab_size: int, **options):
        """options: the other fields of EncoderConfig (d_model, n_heads, n_layers, d_ff, max_len, ...)."""
        super().__init__()
        self.config = c = EncoderConfig(vocab_size, **options)
        self.embeddings = Embeddings(c)
        self.layers = nn.ModuleList(
            TransformerLayer(c.d_model, c.n_heads, c.d_ff, "post", c.activation, c.dropout, c.eps)
            for _ in range(c.n_layers)
        )
        self.apply(init_bert_weights)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """input_ids (B, L); token_type_ids (B, L) in {0, 1}; attention_mask (B, L), 0 = padding."""
        x = self.embeddings(input_ids, token_type_ids)  # (B, L, d_model); checks the ids
        mask = key_mask("attention_mask", attention_mask, tuple(input_ids.shape))  # (B, 1, 1, L) or None
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
        check_int("d_model", d_model, 1, MAX_WIDTH)
        self.dense = nn.Linear(d_model, d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, L, d_model) -> (B, d_model), from [CLS] at position 0."""
        check_tensor("h", h, ndim=3)
        check_last_dim("h", h, self.dense.in_features)
        if h.shape[1] == 0:
            raise ValueError(f"h must hold at least the [CLS] position, got shape {tuple(h.shape)}")
        return torch.tanh(self.dense(h[:, 0]))


class MLMHead(nn.Module):
    """Predicts the token at every position: dense + activation + LayerNorm, then the tied embedding matrix."""

    def __init__(self, embedding: nn.Embedding, activation: str, eps: float):
        super().__init__()
        check_instance("embedding", embedding, nn.Embedding, "torch.nn.Embedding (the input token embedding)")
        check_choice("activation", activation, ACTIVATIONS)
        check_positive("eps", eps)
        d_model = embedding.embedding_dim
        self.dense = nn.Linear(d_model, d_model)
        self.activation = activation
        self.norm = LayerNorm(d_model, eps)
        self.embedding = embedding  # shared with the input: logits_w = e_w . h + b_w
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (..., d_model) -> logits (..., V)."""
        check_last_dim("h", h, self.dense.in_features)
        h = self.norm(ACTIVATIONS[self.activation](self.dense(h)))  # (..., d_model)
        return h @ self.embedding.weight.T + self.bias  # (..., V)


class PreTrainingOutput(NamedTuple):
    mlm_logits: torch.Tensor  # (B, L, V)
    nsp_logits: torch.Tensor  # (B, 2): index 0 = IsNext, 1 = random (BERT's convention)
    encoder: EncoderOutput


class EncoderForPreTraining(nn.Module):
    """Encoder + BERT's pre-training heads: masked language modelling and next sentence prediction."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        check_instance("encoder", encoder, Encoder, "course_utils Encoder")
        c = encoder.config
        self.encoder = encoder
        self.pooler = Pooler(c.d_model)
        self.mlm = MLMHead(encoder.embeddings.tok, c.activation, c.eps)
        self.nsp = nn.Linear(c.d_model, 2)
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
        check_instance("encoder", encoder, Encoder, "course_utils Encoder")
        check_int("n_labels", n_labels, 1)
        check_probability("dropout", dropout)
        d_model = encoder.config.d_model
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


