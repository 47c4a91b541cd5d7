"""Weights to and from the libraries our modules explain: torch.nn and transformers (BERT / MiniLM, GPT-2, BART).

Each conversion maps config to config, then copies the weights through a table of parameter names, ours -> theirs,
so the same table serves both directions. TransformersLM puts a transformers causal LM behind generate()'s interface.
"""

from __future__ import annotations

import inspect
import sys

import torch
from torch import nn

from ._validate import check_instance
from .attention import MultiHeadAttention, position_ids_from_mask
from .layers import TransformerLayer
from .models import (
    Decoder, DecoderConfig, Encoder, EncoderConfig, EncoderDecoder, EncoderDecoderConfig, EncoderForClassification,
    EncoderForPreTraining,
)
from .pretrained import hub_available, load_minilm  # noqa: F401  re-exported for one release: moved to pretrained

_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
_THEIR_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}  # ours -> transformers'
_EAGER = dict(attn_implementation="eager")  # attention weights as in eq. (1), returned for the tests


def _transfer(target: nn.Module, source: dict, names: dict[str, str], allowed_missing: tuple[str, ...] = ()):
    """Load target's weights from the state dict `source` (names: target name -> source name); return it in eval mode.

    Only the tied copies named in allowed_missing (loaded with the weight they share) may stay unloaded.
    """
    shapes = {k: v.shape for k, v in target.state_dict().items()}
    state = {t: source[s].detach().reshape(shapes.get(t, source[s].shape)).clone() for t, s in names.items()}
    missing, unexpected = target.load_state_dict(state, strict=False)
    if unexpected or any(not m.endswith(allowed_missing) for m in missing):
        raise RuntimeError(f"conversion is incomplete: missing {missing}, unexpected {unexpected}")
    return target.eval()


def _invert(names: dict[str, str]) -> dict[str, str]:
    return {theirs: ours for ours, theirs in names.items()}


def _supported(model: str, theirs: str, unsupported: dict[str, tuple[bool, object]]) -> None:
    """Raise ValueError listing the settings of a transformers config that our model cannot express."""
    bad = {name: value for name, (flag, value) in unsupported.items() if flag}
    if bad:
        raise ValueError(f"our {model} cannot express this {theirs} config: {bad}")


def _modules(pairs: dict[str, str], params: tuple[str, ...] = ("weight", "bias")) -> dict[str, str]:
    """Parameter names of modules, ours -> theirs: {"norm": "ln_f"} -> {"norm.weight": "ln_f.weight", ...}."""
    return {f"{o}.{p}": f"{t}.{p}" for o, t in pairs.items() for p in params}


def _layers(ours: str, theirs: str, pairs: dict[str, str], n_layers: int) -> dict[str, str]:
    """The parameter names of n_layers layers, ours.i.module -> theirs.i.module, for each module pair."""
    return {o: t for i in range(n_layers) for o, t in _modules(
        {f"{ours}.{i}.{a}": f"{theirs}.{i}.{b}" for a, b in pairs.items()}).items()}


# ---------------------------------------------------------------- torch.nn

def mha_from_torch(theirs: nn.MultiheadAttention) -> MultiHeadAttention:
    """Our MultiHeadAttention with the weights of a torch.nn.MultiheadAttention (rows of in_proj packed q|k|v)."""
    check_instance("theirs", theirs, nn.MultiheadAttention, "torch.nn.MultiheadAttention")
    if theirs.in_proj_weight is None or theirs.in_proj_bias is None:
        raise ValueError("theirs must have packed projections with bias (kdim == vdim == embed_dim, bias=True)")
    if theirs.bias_k is not None or theirs.add_zero_attn:
        raise ValueError("theirs must not add extra keys (add_bias_kv=True or add_zero_attn=True): "
                         "eq. (1) attends to the sequence's own keys only")
    ours = MultiHeadAttention(theirs.embed_dim, theirs.num_heads)
    wq, wk, wv = theirs.in_proj_weight.detach().chunk(3)  # (3E, E) -> three (E, E)
    bq, bk, bv = theirs.in_proj_bias.detach().chunk(3)
    state = {"q_proj.weight": wq, "q_proj.bias": bq, "k_proj.weight": wk, "k_proj.bias": bk, "v_proj.weight": wv,
             "v_proj.bias": bv, **{f"out_proj.{k}": v for k, v in theirs.out_proj.state_dict().items()}}
    ours.load_state_dict(state)
    return ours


def layer_from_torch(theirs: nn.TransformerEncoderLayer) -> TransformerLayer:
    """Our TransformerLayer equal to a torch.nn.TransformerEncoderLayer (norm_first=False -> "post", True -> "pre")."""
    check_instance("theirs", theirs, nn.TransformerEncoderLayer, "torch.nn.TransformerEncoderLayer")
    activation = {"relu": "relu", "gelu": "gelu"}.get(getattr(theirs.activation, "__name__", ""))
    if activation is None:
        raise ValueError(f"unsupported activation {theirs.activation!r}; expected relu or gelu")
    d_model = theirs.self_attn.embed_dim
    ours = TransformerLayer(
        d_model, theirs.self_attn.num_heads, theirs.linear1.out_features,
        norm="pre" if theirs.norm_first else "post", activation=activation, eps=theirs.norm1.eps,
    )
    state = {f"attn.{k}": v for k, v in mha_from_torch(theirs.self_attn).state_dict().items()}
    state |= theirs.state_dict()
    names = {n: n for n in state if n.startswith("attn.")}
    names |= _modules({"ffn.w1": "linear1", "ffn.w2": "linear2", "norm1": "norm1", "norm2": "norm2"})
    return _transfer(ours, state, names).train(theirs.training)


# ---------------------------------------------------------------- BERT (and MiniLM)


def _bert_names(n_layers: int) -> dict[str, str]:
    """Our Encoder's parameter names -> those of transformers.BertModel."""
    names = _modules({"embeddings.tok": "embeddings.word_embeddings", "embeddings.pos": "embeddings.position_embeddings",
                      "embeddings.typ": "embeddings.token_type_embeddings"}, ("weight",))
    names |= _modules({"embeddings.norm": "embeddings.LayerNorm"})
    pairs = {"attn.q_proj": "attention.self.query", "attn.k_proj": "attention.self.key",
             "attn.v_proj": "attention.self.value", "attn.out_proj": "attention.output.dense",
             "norm1": "attention.output.LayerNorm", "ffn.w1": "intermediate.dense", "ffn.w2": "output.dense",
             "norm2": "output.LayerNorm"}
    return names | _layers("layers", "encoder.layer", pairs, n_layers)


def _encoder_config(c) -> EncoderConfig:
    """Our EncoderConfig of a transformers BertConfig."""
    _supported("Encoder", "BERT", {"hidden_act": (c.hidden_act not in _ACTIVATIONS, c.hidden_act),
                           "position_embedding_type": (getattr(c, "position_embedding_type", "absolute") != "absolute",
                                                       getattr(c, "position_embedding_type", None))})
    return EncoderConfig(c.vocab_size, c.hidden_size, c.num_attention_heads, c.num_hidden_layers, c.intermediate_size,
                         c.max_position_embeddings, c.type_vocab_size, _ACTIVATIONS[c.hidden_act], c.layer_norm_eps)


def _bert_config(c: EncoderConfig, **extra):
    """The transformers BertConfig of our EncoderConfig (no dropout, eager attention)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=c.vocab_size, hidden_size=c.d_model, num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads,
        intermediate_size=c.d_ff or 4 * c.d_model, hidden_act=_THEIR_ACTIVATIONS[c.activation],
        max_position_embeddings=c.max_len, type_vocab_size=c.type_vocab_size, layer_norm_eps=c.eps,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **_EAGER, **extra,
    )


def _names(kind: str, n_layers: int) -> dict[str, str]:
    """Parameter names ours -> transformers' for kind "encoder" (BertModel), "pretraining", "classification"."""
    if kind == "encoder":
        return _bert_names(n_layers)
    names = {f"encoder.{o}": f"bert.{t}" for o, t in _bert_names(n_layers).items()}
    names |= _modules({"pooler.dense": "bert.pooler.dense"})
    if kind == "pretraining":  # mlm.embedding is the tied encoder.embeddings.tok
        names |= _modules({"mlm.dense": "cls.predictions.transform.dense", "nsp": "cls.seq_relationship",
                           "mlm.norm": "cls.predictions.transform.LayerNorm"}) | {"mlm.bias": "cls.predictions.bias"}
    else:
        names |= _modules({"classifier": "classifier"})
    return names


def _from_bert(ours: nn.Module, bert, kind: str) -> nn.Module:
    """Copy a transformers BERT model's weights into ours (the MLM head's tied embedding comes with the encoder)."""
    names = _names(kind, bert.config.num_hidden_layers)
    return _transfer(ours, bert.state_dict(), names, allowed_missing=("mlm.embedding.weight",))


def _to_bert(ours: nn.Module, bert, kind: str, n_layers: int) -> nn.Module:
    """Copy our weights into a fresh transformers BERT model (position_ids and the tied MLM decoder come along)."""
    names = _invert(_names(kind, n_layers))
    return _transfer(bert, ours.state_dict(), names, allowed_missing=("position_ids", "decoder.weight", "decoder.bias"))


def _transformers(name: str):
    """A class of transformers, imported only when a conversion needs it."""
    import transformers

    return getattr(transformers, name)


def encoder_from_bert(bert) -> Encoder:
    """Our Encoder with the weights of a transformers.BertModel (e.g. the real MiniLM), in eval mode."""
    check_instance("bert", bert, _transformers("BertModel"), "transformers.BertModel")
    return _from_bert(Encoder.from_config(_encoder_config(bert.config)), bert, "encoder")


def encoder_to_bert(ours: Encoder):
    """A transformers.BertModel (no pooler, eager attention) with the weights of our Encoder, in eval mode."""
    check_instance("ours", ours, Encoder, "course_utils Encoder")
    bert = _transformers("BertModel")(_bert_config(ours.config), add_pooling_layer=False)
    return _to_bert(ours, bert, "encoder", ours.config.n_layers)


def pretraining_from_bert(bert) -> EncoderForPreTraining:
    """Our EncoderForPreTraining with the weights of a transformers.BertForPreTraining."""
    check_instance("bert", bert, _transformers("BertForPreTraining"), "transformers.BertForPreTraining")
    ours = EncoderForPreTraining(Encoder.from_config(_encoder_config(bert.config)))
    return _from_bert(ours, bert, "pretraining")


def pretraining_to_bert(ours: EncoderForPreTraining):
    """A transformers.BertForPreTraining with the weights of our EncoderForPreTraining (MLM decoder tied)."""
    check_instance("ours", ours, EncoderForPreTraining, "course_utils EncoderForPreTraining")
    bert = _transformers("BertForPreTraining")(_bert_config(ours.encoder.config))
    return _to_bert(ours, bert, "pretraining", ours.encoder.config.n_layers)


def classifier_from_bert(bert) -> EncoderForClassification:
    """Our EncoderForClassification with the weights of a transformers.BertForSequenceClassification."""
    cls = _transformers("BertForSequenceClassification")
    check_instance("bert", bert, cls, "transformers.BertForSequenceClassification")
    ours = EncoderForClassification(Encoder.from_config(_encoder_config(bert.config)), bert.config.num_labels)
    return _from_bert(ours, bert, "classification")


def classifier_to_bert(ours: EncoderForClassification):
    """A transformers.BertForSequenceClassification with the weights of our EncoderForClassification."""
    check_instance("ours", ours, EncoderForClassification, "course_utils EncoderForClassification")
    config = _bert_config(ours.encoder.config, num_labels=ours.classifier.out_features)
    return _to_bert(ours, _transformers("BertForSequenceClassification")(config), "classification",
                    ours.encoder.config.n_layers)


# ---------------------------------------------------------------- GPT-2


def _gpt2_names(n_layers: int) -> dict[str, str]:
    """Our Decoder's parameter names -> GPT2LMHeadModel's, with c_attn split into c_attn.q / .k / .v."""
    names = _modules({"tok": "transformer.wte", "pos": "transformer.wpe"}, ("weight",))
    names |= _modules({"norm": "transformer.ln_f"})
    pairs = {"norm1": "ln_1", "attn.q_proj": "attn.c_attn.q", "attn.k_proj": "attn.c_attn.k",
             "attn.v_proj": "attn.c_attn.v", "attn.out_proj": "attn.c_proj", "norm2": "ln_2", "ffn.w1": "mlp.c_fc",
             "ffn.w2": "mlp.c_proj"}
    return names | _layers("layers", "transformer.h", pairs, n_layers)


def _unpack_gpt2(state: dict) -> dict:
    """GPT-2's weights as nn.Linear holds them: Conv1D's (in, out) transposed, c_attn's packed q|k|v split."""
    out = {}
    for name, t in state.items():
        if name.startswith("transformer.h.") and t.dim() == 2:
            t = t.T  # Conv1D computes x @ W + b with W (in, out); nn.Linear keeps W (out, in)
        if ".c_attn." in name:  # the 3 d_model columns of c_attn, now rows, are q | k | v
            for part, chunk in zip("qkv", t.chunk(3)):
                out[name.replace("c_attn", f"c_attn.{part}")] = chunk
        else:
            out[name] = t
    return out


def _pack_gpt2(state: dict) -> dict:
    """The inverse of _unpack_gpt2: concatenate q|k|v into c_attn and transpose back to Conv1D's (in, out)."""
    out = {}
    for name, t in state.items():
        if ".c_attn.k." in name or ".c_attn.v." in name:
            continue  # packed together with q
        if ".c_attn.q." in name:
            t = torch.cat([t, state[name.replace(".q.", ".k.")], state[name.replace(".q.", ".v.")]])  # rows q | k | v
            name = name.replace("c_attn.q", "c_attn")
        out[name] = t.T.contiguous() if name.startswith("transformer.h.") and t.dim() == 2 else t
    return out


def _decoder_config(c) -> DecoderConfig:
    """Our DecoderConfig of a transformers GPT2Config."""
    _supported("Decoder", "GPT-2", {
        "activation_function": (c.activation_function not in _ACTIVATIONS, c.activation_function),
        "scale_attn_weights": (not c.scale_attn_weights, c.scale_attn_weights),  # ours always scales by 1/sqrt(d)
        "scale_attn_by_inverse_layer_idx": (c.scale_attn_by_inverse_layer_idx, True),
        "add_cross_attention": (c.add_cross_attention, True),
        "tie_word_embeddings": (not c.tie_word_embeddings, False),  # our LM head is the token embedding
    })
    return DecoderConfig(c.vocab_size, c.n_embd, c.n_head, c.n_layer, c.n_inner, c.n_positions,
                         _ACTIVATIONS[c.activation_function], c.layer_norm_epsilon)


def _gpt2_config(c: DecoderConfig):
    """The transformers GPT2Config of our DecoderConfig (no dropout, eager attention, no special ids)."""
    if not c.causal:
        raise ValueError("GPT-2 is causal: a Decoder built with causal=False has no GPT-2 equivalent")
    return _transformers("GPT2Config")(
        vocab_size=c.vocab_size, n_positions=c.max_len, n_embd=c.d_model, n_layer=c.n_layers, n_head=c.n_heads,
        n_inner=c.d_ff or 4 * c.d_model, activation_function=_THEIR_ACTIVATIONS[c.activation],
        layer_norm_epsilon=c.eps, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None,
        eos_token_id=None, **_EAGER,
    )  # no special ids: our Decoder has none, so pass eos_token_id to generate()


def decoder_from_gpt2(gpt2) -> Decoder:
    """Our Decoder with the weights of a transformers.GPT2LMHeadModel, in eval mode."""
    check_instance("gpt2", gpt2, _transformers("GPT2LMHeadModel"), "transformers.GPT2LMHeadModel")
    ours = Decoder.from_config(_decoder_config(gpt2.config))
    return _transfer(ours, _unpack_gpt2(gpt2.state_dict()), _gpt2_names(ours.config.n_layers))


def decoder_to_gpt2(ours: Decoder):
    """A transformers.GPT2LMHeadModel (eager attention, lm_head tied) with the weights of our Decoder, in eval mode."""
    check_instance("ours", ours, Decoder, "course_utils Decoder")
    gpt2 = _transformers("GPT2LMHeadModel")(_gpt2_config(ours.config))
    mine = ours.state_dict()
    state = _pack_gpt2({t: mine[o] for o, t in _gpt2_names(ours.config.n_layers).items()})
    return _transfer(gpt2, state, {name: name for name in state}, allowed_missing=("lm_head.weight",))


# ---------------------------------------------------------------- BART


def _bart_names(n_encoder_layers: int, n_decoder_layers: int) -> dict[str, str]:
    """Our EncoderDecoder's parameter and buffer names -> BartForConditionalGeneration's."""
    names = {"tok.weight": "model.shared.weight", "final_logits_bias": "final_logits_bias"}
    for ours, theirs in (("enc", "model.encoder"), ("dec", "model.decoder")):
        names |= _modules({f"{ours}_pos": f"{theirs}.embed_positions"}, ("weight",))
        names |= _modules({f"{ours}_norm": f"{theirs}.layernorm_embedding"})
    projections = ("q_proj", "k_proj", "v_proj", "out_proj")
    encoder = {f"attn.{w}": f"self_attn.{w}" for w in projections}
    encoder |= {"norm1": "self_attn_layer_norm", "ffn.w1": "fc1", "ffn.w2": "fc2", "norm2": "final_layer_norm"}
    decoder = {f"self_attn.{w}": f"self_attn.{w}" for w in projections} | {"norm1": "self_attn_layer_norm"}
    decoder |= {f"cross_attn.{w}": f"encoder_attn.{w}" for w in projections} | {"norm2": "encoder_attn_layer_norm"}
    decoder |= {"ffn.w1": "fc1", "ffn.w2": "fc2", "norm3": "final_layer_norm"}
    names |= _layers("encoder_layers", "model.encoder.layers", encoder, n_encoder_layers)
    return names | _layers("decoder_layers", "model.decoder.layers", decoder, n_decoder_layers)


def _encoder_decoder_config(c) -> EncoderDecoderConfig:
    """Our EncoderDecoderConfig of a transformers BartConfig."""
    _supported("EncoderDecoder", "BART", {
        "activation_function": (c.activation_function not in _ACTIVATIONS, c.activation_function),
        "scale_embedding": (c.scale_embedding, True),  # ours adds the token embedding unscaled
        "decoder_attention_heads": (c.decoder_attention_heads != c.encoder_attention_heads,
                                    c.decoder_attention_heads),  # ours: one n_heads
        "decoder_ffn_dim": (c.decoder_ffn_dim != c.encoder_ffn_dim, c.decoder_ffn_dim),  # and one d_ff
        "tie_word_embeddings": (not c.tie_word_embeddings, False),  # our LM head is the shared embedding
    })
    return EncoderDecoderConfig(
        c.vocab_size, c.d_model, c.encoder_attention_heads, c.encoder_layers, c.decoder_layers, c.encoder_ffn_dim,
        c.max_position_embeddings, _ACTIVATIONS[c.activation_function], pad_token_id=c.pad_token_id,
        bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id, decoder_start_token_id=c.decoder_start_token_id,
    )


def _bart_config(c: EncoderDecoderConfig):
    """The transformers BartConfig of our EncoderDecoderConfig (no dropout, eager attention)."""
    if c.eps != 1e-5:
        raise ValueError(f"BART's LayerNorms have eps=1e-5, ours has eps={c.eps}")
    d_ff = c.d_ff or 4 * c.d_model
    return _transformers("BartConfig")(
        vocab_size=c.vocab_size, max_position_embeddings=c.max_len, d_model=c.d_model,
        encoder_layers=c.n_encoder_layers, decoder_layers=c.n_decoder_layers, encoder_attention_heads=c.n_heads,
        decoder_attention_heads=c.n_heads, encoder_ffn_dim=d_ff, decoder_ffn_dim=d_ff,
        activation_function=_THEIR_ACTIVATIONS[c.activation], dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, pad_token_id=c.pad_token_id, bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id, forced_eos_token_id=c.eos_token_id,
        decoder_start_token_id=c.decoder_start_token_id, **_EAGER,
    )


def encoder_decoder_from_bart(bart) -> EncoderDecoder:
    """Our EncoderDecoder with the weights of a transformers.BartForConditionalGeneration, in eval mode."""
    cls = _transformers("BartForConditionalGeneration")
    check_instance("bart", bart, cls, "transformers.BartForConditionalGeneration")
    ours = EncoderDecoder.from_config(_encoder_decoder_config(bart.config))
    c = ours.config
    return _transfer(ours, bart.state_dict(), _bart_names(c.n_encoder_layers, c.n_decoder_layers))


def encoder_decoder_to_bart(ours: EncoderDecoder):
    """A transformers.BartForConditionalGeneration (eager attention, embeddings tied) with our weights, in eval mode."""
    check_instance("ours", ours, EncoderDecoder, "course_utils EncoderDecoder")
    c = ours.config
    bart = _transformers("BartForConditionalGeneration")(_bart_config(c))
    names = _invert(_bart_names(c.n_encoder_layers, c.n_decoder_layers))
    tied = ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight")
    return _transfer(bart, ours.state_dict(), names, allowed_missing=tied)  # loaded with model.shared


# ---------------------------------------------------------------- generate() with a transformers model


def is_transformers_model(model) -> bool:
    """True for a transformers model (checked without importing transformers: such a model means it is loaded)."""
    transformers = sys.modules.get("transformers")
    return transformers is not None and isinstance(model, transformers.PreTrainedModel)


class TransformersLM:
    """A transformers causal LM behind generate()'s interface: next-token logits, and a KV cache to reorder."""

    def __init__(self, model: nn.Module, use_cache: bool):
        if not is_transformers_model(model):
            raise TypeError(f"model must be a transformers causal LM, got {type(model).__name__}")
        self.model, self.cache = model, None  # transformers creates a DynamicCache at the first call
        parameters = inspect.signature(model.forward).parameters
        self.extra = {"use_cache": use_cache}
        if "logits_to_keep" in parameters:  # only the last position's logits are needed
            self.extra["logits_to_keep"] = 1
        self.cache_name = "cache" if "cache" in parameters else "past_key_values"  # transformers 5.x / 4.x

    def next_logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Float32 logits (B, V) of the token after ids (B, T); only the tokens not yet cached are fed."""
        past = 0 if self.cache is None else self.cache.get_seq_length()
        positions = position_ids_from_mask(attention_mask, *ids.shape)[:, past:]  # (B, L)
        out = self.model(input_ids=ids[:, past:], attention_mask=attention_mask, position_ids=positions,
                         **{self.cache_name: self.cache}, **self.extra)
        self.cache = getattr(out, self.cache_name)
        return out.logits[:, -1].float()  # (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        """Row i of the cache becomes row index[i]: the cache follows the beams that survive."""
        if self.cache is not None:
            self.cache.reorder_cache(index)
