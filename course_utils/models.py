"""Whole models assembled from the layers: the bidirectional Encoder (BERT-like) and its heads.

EncoderForPreTraining adds BERT's two pre-training heads (MLM, tied to the input embeddings, and NSP);
EncoderForClassification swaps them for a classifier on [CLS] (figure 8 of the lecture: fine-tuning).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ._validate import check_ids, check_positive_int, check_tensor
from .attention import padding_mask
from .layers import ACTIVATIONS, LayerNorm, TransformerLayer


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
