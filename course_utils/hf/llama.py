"""Llama (SmolLM2, Llama 2 and 3): our LlamaDecoder, both ways with transformers' LlamaForCausalLM."""

from __future__ import annotations

from .._validate import check_instance
from ..models import LlamaConfig, LlamaDecoder
from ._common import EAGER, check_supported, invert, layer_names, module_names, transfer, transformers_class


def _llama_names(n_layers: int, tied: bool) -> dict[str, str]:
    """Our LlamaDecoder's parameter names -> LlamaForCausalLM's."""
    names = module_names({"tok": "model.embed_tokens", "norm": "model.norm"}, ("weight",))
    if not tied:
        names |= module_names({"lm_head": "lm_head"}, ("weight",))
    pairs = {"norm1": "input_layernorm", "attn.q_proj": "self_attn.q_proj", "attn.k_proj": "self_attn.k_proj",
             "attn.v_proj": "self_attn.v_proj", "attn.out_proj": "self_attn.o_proj",
             "norm2": "post_attention_layernorm", "ffn.w1": "mlp.gate_proj", "ffn.w3": "mlp.up_proj",
             "ffn.w2": "mlp.down_proj"}
    layers = layer_names("layers", "model.layers", pairs, n_layers)
    return names | {o: t for o, t in layers.items() if o.endswith("weight")}  # no biases in Llama


def _rope_theta(c) -> float:
    """RoPE's base: config.rope_parameters["rope_theta"] in transformers 5.x, config.rope_theta in 4.x."""
    parameters = getattr(c, "rope_parameters", None) or {}
    return float(parameters.get("rope_theta", getattr(c, "rope_theta", 10_000.0)))


def _our_config(c) -> LlamaConfig:
    """Our LlamaConfig of a transformers LlamaConfig."""
    parameters = getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None) or {}
    rope_type = parameters.get("rope_type", parameters.get("type", "default"))
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    check_supported("LlamaDecoder", "Llama", {
        "hidden_act": (c.hidden_act != "silu", c.hidden_act),
        "attention_bias": (c.attention_bias, True),
        "mlp_bias": (getattr(c, "mlp_bias", False), True),
        "rope_type": (rope_type != "default", rope_type),  # ours: plain RoPE, no long-context rescaling
        "head_dim": (head_dim * c.num_attention_heads != c.hidden_size, head_dim),
    })
    return LlamaConfig(c.vocab_size, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
                       c.num_hidden_layers, c.intermediate_size, c.max_position_embeddings, c.rms_norm_eps,
                       _rope_theta(c), c.tie_word_embeddings)


def _their_config(c: LlamaConfig):
    """The transformers LlamaConfig of ours (eager attention, no special ids: pass eos_token_id to generate())."""
    return transformers_class("LlamaConfig")(
        vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.d_ff or 8 * c.d_model // 3,
        num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, num_key_value_heads=c.n_kv_heads,
        max_position_embeddings=c.max_len, rms_norm_eps=c.eps, rope_theta=c.rope_theta,
        tie_word_embeddings=c.tie_embeddings, bos_token_id=None, eos_token_id=None, pad_token_id=None, **EAGER,
    )


def decoder_from_llama(llama) -> LlamaDecoder:
    """Our LlamaDecoder with the weights of a transformers.LlamaForCausalLM (e.g. SmolLM2), in eval mode."""
    check_instance("llama", llama, transformers_class("LlamaForCausalLM"), "transformers.LlamaForCausalLM")
    ours = LlamaDecoder.from_config(_our_config(llama.config))
    c = ours.config
    return transfer(ours, llama.state_dict(), _llama_names(c.n_layers, c.tie_embeddings))


def decoder_to_llama(ours: LlamaDecoder):
    """A transformers.LlamaForCausalLM (eager attention) with the weights of our LlamaDecoder, in eval mode."""
    check_instance("ours", ours, LlamaDecoder, "course_utils LlamaDecoder")
    c = ours.config
    llama = transformers_class("LlamaForCausalLM")(_their_config(c))
    names = invert(_llama_names(c.n_layers, c.tie_embeddings))
    return transfer(llama, ours.state_dict(), names, allowed_missing=("lm_head.weight",) if c.tie_embeddings else ())
