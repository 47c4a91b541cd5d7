"""BERT (and the real MiniLM): our Encoder and its pre-training and classification heads, both ways."""

from __future__ import annotations

from torch import nn

from .._validate import check_instance
from ..models import Encoder, EncoderConfig, EncoderForClassification, EncoderForPreTraining
from ._common import (
    ACTIVATIONS_FROM, ACTIVATIONS_TO, EAGER, check_supported, invert, layer_names, module_names, transfer,
    transformers_class,
)


def _bert_names(n_layers: int) -> dict[str, str]:
    """Our Encoder's parameter names -> those of transformers.BertModel."""
    names = module_names({"embeddings.tok": "embeddings.word_embeddings", "embeddings.pos": "embeddings.position_embeddings",
                      "embeddings.typ": "embeddings.token_type_embeddings"}, ("weight",))
    names |= module_names({"embeddings.norm": "embeddings.LayerNorm"})
    pairs = {"attn.q_proj": "attention.self.query", "attn.k_proj": "attention.self.key",
             "attn.v_proj": "attention.self.value", "attn.out_proj": "attention.output.dense",
             "norm1": "attention.output.LayerNorm", "ffn.w1": "intermediate.dense", "ffn.w2": "output.dense",
             "norm2": "output.LayerNorm"}
    return names | layer_names("layers", "encoder.layer", pairs, n_layers)


def _encoder_config(c) -> EncoderConfig:
    """Our EncoderConfig of a transformers BertConfig."""
    check_supported("Encoder", "BERT", {"hidden_act": (c.hidden_act not in ACTIVATIONS_FROM, c.hidden_act),
                           "position_embedding_type": (getattr(c, "position_embedding_type", "absolute") != "absolute",
                                                       getattr(c, "position_embedding_type", None))})
    return EncoderConfig(c.vocab_size, c.hidden_size, c.num_attention_heads, c.num_hidden_layers, c.intermediate_size,
                         c.max_position_embeddings, c.type_vocab_size, ACTIVATIONS_FROM[c.hidden_act], c.layer_norm_eps)


def _bert_config(c: EncoderConfig, **extra):
    """The transformers BertConfig of our EncoderConfig (no dropout, eager attention)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=c.vocab_size, hidden_size=c.d_model, num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads,
        intermediate_size=c.d_ff or 4 * c.d_model, hidden_act=ACTIVATIONS_TO[c.activation],
        max_position_embeddings=c.max_len, type_vocab_size=c.type_vocab_size, layer_norm_eps=c.eps,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **EAGER, **extra,
    )


def _names(kind: str, n_layers: int) -> dict[str, str]:
    """Parameter names ours -> transformers' for kind "encoder" (BertModel), "pretraining", "classification"."""
    if kind == "encoder":
        return _bert_names(n_layers)
    names = {f"encoder.{o}": f"bert.{t}" for o, t in _bert_names(n_layers).items()}
    names |= module_names({"pooler.dense": "bert.pooler.dense"})
    if kind == "pretraining":  # mlm.embedding is the tied encoder.embeddings.tok
        names |= module_names({"mlm.dense": "cls.predictions.transform.dense", "nsp": "cls.seq_relationship",
                           "mlm.norm": "cls.predictions.transform.LayerNorm"}) | {"mlm.bias": "cls.predictions.bias"}
    else:
        names |= module_names({"classifier": "classifier"})
    return names


def _from_bert(ours: nn.Module, bert, kind: str) -> nn.Module:
    """Copy a transformers BERT model's weights into ours (the MLM head's tied embedding comes with the encoder)."""
    names = _names(kind, bert.config.num_hidden_layers)
    return transfer(ours, bert.state_dict(), names, allowed_missing=("mlm.embedding.weight",))


def _to_bert(ours: nn.Module, bert, kind: str, n_layers: int) -> nn.Module:
    """Copy our weights into a fresh transformers BERT model (position_ids and the tied MLM decoder come along)."""
    names = invert(_names(kind, n_layers))
    return transfer(bert, ours.state_dict(), names, allowed_missing=("position_ids", "decoder.weight", "decoder.bias"))


def encoder_from_bert(bert) -> Encoder:
    """Our Encoder with the weights of a transformers.BertModel (e.g. the real MiniLM), in eval mode."""
    check_instance("bert", bert, transformers_class("BertModel"), "transformers.BertModel")
    return _from_bert(Encoder.from_config(_encoder_config(bert.config)), bert, "encoder")


def encoder_to_bert(ours: Encoder):
    """A transformers.BertModel (no pooler, eager attention) with the weights of our Encoder, in eval mode."""
    check_instance("ours", ours, Encoder, "course_utils Encoder")
    bert = transformers_class("BertModel")(_bert_config(ours.config), add_pooling_layer=False)
    return _to_bert(ours, bert, "encoder", ours.config.n_layers)


def pretraining_from_bert(bert) -> EncoderForPreTraining:
    """Our EncoderForPreTraining with the weights of a transformers.BertForPreTraining."""
    check_instance("bert", bert, transformers_class("BertForPreTraining"), "transformers.BertForPreTraining")
    ours = EncoderForPreTraining(Encoder.from_config(_encoder_config(bert.config)))
    return _from_bert(ours, bert, "pretraining")


def pretraining_to_bert(ours: EncoderForPreTraining):
    """A transformers.BertForPreTraining with the weights of our EncoderForPreTraining (MLM decoder tied)."""
    check_instance("ours", ours, EncoderForPreTraining, "course_utils EncoderForPreTraining")
    bert = transformers_class("BertForPreTraining")(_bert_config(ours.encoder.config))
    return _to_bert(ours, bert, "pretraining", ours.encoder.config.n_layers)


def classifier_from_bert(bert) -> EncoderForClassification:
    """Our EncoderForClassification with the weights of a transformers.BertForSequenceClassification."""
    cls = transformers_class("BertForSequenceClassification")
    check_instance("bert", bert, cls, "transformers.BertForSequenceClassification")
    ours = EncoderForClassification(Encoder.from_config(_encoder_config(bert.config)), bert.config.num_labels)
    return _from_bert(ours, bert, "classification")


def classifier_to_bert(ours: EncoderForClassification):
    """A transformers.BertForSequenceClassification with the weights of our EncoderForClassification."""
    check_instance("ours", ours, EncoderForClassification, "course_utils EncoderForClassification")
    config = _bert_config(ours.encoder.config, num_labels=ours.classifier.out_features)
    return _to_bert(ours, transformers_class("BertForSequenceClassification")(config), "classification",
                    ours.encoder.config.n_layers)
