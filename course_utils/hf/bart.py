"""BART: our EncoderDecoder, both ways."""

from __future__ import annotations

from .._validate import check_instance
from ..models import EncoderDecoder, EncoderDecoderConfig
from ._common import (
    ACTIVATIONS_FROM, ACTIVATIONS_TO, EAGER, check_supported, invert, layer_names, module_names, transfer,
    transformers_class,
)


def _bart_names(n_encoder_layers: int, n_decoder_layers: int) -> dict[str, str]:
    """Our EncoderDecoder's parameter and buffer names -> BartForConditionalGeneration's."""
    names = {"tok.weight": "model.shared.weight", "final_logits_bias": "final_logits_bias"}
    for ours, theirs in (("enc", "model.encoder"), ("dec", "model.decoder")):
        names |= module_names({f"{ours}_pos": f"{theirs}.embed_positions"}, ("weight",))
        names |= module_names({f"{ours}_norm": f"{theirs}.layernorm_embedding"})
    projections = ("q_proj", "k_proj", "v_proj", "out_proj")
    encoder = {f"attn.{w}": f"self_attn.{w}" for w in projections}
    encoder |= {"norm1": "self_attn_layer_norm", "ffn.w1": "fc1", "ffn.w2": "fc2", "norm2": "final_layer_norm"}
    decoder = {f"self_attn.{w}": f"self_attn.{w}" for w in projections} | {"norm1": "self_attn_layer_norm"}
    decoder |= {f"cross_attn.{w}": f"encoder_attn.{w}" for w in projections} | {"norm2": "encoder_attn_layer_norm"}
    decoder |= {"ffn.w1": "fc1", "ffn.w2": "fc2", "norm3": "final_layer_norm"}
    names |= layer_names("encoder_layers", "model.encoder.layers", encoder, n_encoder_layers)
    return names | layer_names("decoder_layers", "model.decoder.layers", decoder, n_decoder_layers)


def _encoder_decoder_config(c) -> EncoderDecoderConfig:
    """Our EncoderDecoderConfig of a transformers BartConfig."""
    check_supported("EncoderDecoder", "BART", {
        "activation_function": (c.activation_function not in ACTIVATIONS_FROM, c.activation_function),
        "scale_embedding": (c.scale_embedding, True),  # ours adds the token embedding unscaled
        "decoder_attention_heads": (c.decoder_attention_heads != c.encoder_attention_heads,
                                    c.decoder_attention_heads),  # ours: one n_heads
        "decoder_ffn_dim": (c.decoder_ffn_dim != c.encoder_ffn_dim, c.decoder_ffn_dim),  # and one d_ff
        "tie_word_embeddings": (not c.tie_word_embeddings, False),  # our LM head is the shared embedding
    })
    return EncoderDecoderConfig(
        c.vocab_size, c.d_model, c.encoder_attention_heads, c.encoder_layers, c.decoder_layers, c.encoder_ffn_dim,
        c.max_position_embeddings, ACTIVATIONS_FROM[c.activation_function], pad_token_id=c.pad_token_id,
        bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id, decoder_start_token_id=c.decoder_start_token_id,
    )


def _bart_config(c: EncoderDecoderConfig):
    """The transformers BartConfig of our EncoderDecoderConfig (no dropout, eager attention)."""
    if c.eps != 1e-5:
        raise ValueError(f"BART's LayerNorms have eps=1e-5, ours has eps={c.eps}")
    d_ff = c.d_ff or 4 * c.d_model
    return transformers_class("BartConfig")(
        vocab_size=c.vocab_size, max_position_embeddings=c.max_len, d_model=c.d_model,
        encoder_layers=c.n_encoder_layers, decoder_layers=c.n_decoder_layers, encoder_attention_heads=c.n_heads,
        decoder_attention_heads=c.n_heads, encoder_ffn_dim=d_ff, decoder_ffn_dim=d_ff,
        activation_function=ACTIVATIONS_TO[c.activation], dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, pad_token_id=c.pad_token_id, bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id, forced_eos_token_id=c.eos_token_id,
        decoder_start_token_id=c.decoder_start_token_id, **EAGER,
    )


def encoder_decoder_from_bart(bart) -> EncoderDecoder:
    """Our EncoderDecoder with the weights of a transformers.BartForConditionalGeneration, in eval mode."""
    cls = transformers_class("BartForConditionalGeneration")
    check_instance("bart", bart, cls, "transformers.BartForConditionalGeneration")
    ours = EncoderDecoder.from_config(_encoder_decoder_config(bart.config))
    c = ours.config
    return transfer(ours, bart.state_dict(), _bart_names(c.n_encoder_layers, c.n_decoder_layers))


def encoder_decoder_to_bart(ours: EncoderDecoder):
    """A transformers.BartForConditionalGeneration (eager attention, embeddings tied) with our weights, in eval mode."""
    check_instance("ours", ours, EncoderDecoder, "course_utils EncoderDecoder")
    c = ours.config
    bart = transformers_class("BartForConditionalGeneration")(_bart_config(c))
    names = invert(_bart_names(c.n_encoder_layers, c.n_decoder_layers))
    tied = ("model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight")
    return transfer(bart, ours.state_dict(), names, allowed_missing=tied)  # loaded with model.shared
