"""GPT-2: our Decoder, both ways (Conv1D's transposed weights and c_attn's packed q|k|v undone)."""

from __future__ import annotations

import torch

from .._validate import check_instance
from ..models import Decoder, DecoderConfig
from ._common import (
    ACTIVATIONS_FROM, ACTIVATIONS_TO, EAGER, check_supported, layer_names, module_names, transfer, transformers_class,
)


def _gpt2_names(n_layers: int) -> dict[str, str]:
    """Our Decoder's parameter names -> GPT2LMHeadModel's, with c_attn split into c_attn.q / .k / .v."""
    names = module_names({"tok": "transformer.wte", "pos": "transformer.wpe"}, ("weight",))
    names |= module_names({"norm": "transformer.ln_f"})
    pairs = {"norm1": "ln_1", "attn.q_proj": "attn.c_attn.q", "attn.k_proj": "attn.c_attn.k",
             "attn.v_proj": "attn.c_attn.v", "attn.out_proj": "attn.c_proj", "norm2": "ln_2", "ffn.w1": "mlp.c_fc",
             "ffn.w2": "mlp.c_proj"}
    return names | layer_names("layers", "transformer.h", pairs, n_layers)


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
    check_supported("Decoder", "GPT-2", {
        "activation_function": (c.activation_function not in ACTIVATIONS_FROM, c.activation_function),
        "scale_attn_weights": (not c.scale_attn_weights, c.scale_attn_weights),  # ours always scales by 1/sqrt(d)
        "scale_attn_by_inverse_layer_idx": (c.scale_attn_by_inverse_layer_idx, True),
        "add_cross_attention": (c.add_cross_attention, True),
        "tie_word_embeddings": (not c.tie_word_embeddings, False),  # our LM head is the token embedding
    })
    return DecoderConfig(c.vocab_size, c.n_embd, c.n_head, c.n_layer, c.n_inner, c.n_positions,
                         ACTIVATIONS_FROM[c.activation_function], c.layer_norm_epsilon)


def _gpt2_config(c: DecoderConfig):
    """The transformers GPT2Config of our DecoderConfig (no dropout, eager attention, no special ids)."""
    if not c.causal:
        raise ValueError("GPT-2 is causal: a Decoder built with causal=False has no GPT-2 equivalent")
    return transformers_class("GPT2Config")(
        vocab_size=c.vocab_size, n_positions=c.max_len, n_embd=c.d_model, n_layer=c.n_layers, n_head=c.n_heads,
        n_inner=c.d_ff or 4 * c.d_model, activation_function=ACTIVATIONS_TO[c.activation],
        layer_norm_epsilon=c.eps, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None,
        eos_token_id=None, **EAGER,
    )  # no special ids: our Decoder has none, so pass eos_token_id to generate()


def decoder_from_gpt2(gpt2) -> Decoder:
    """Our Decoder with the weights of a transformers.GPT2LMHeadModel, in eval mode."""
    check_instance("gpt2", gpt2, transformers_class("GPT2LMHeadModel"), "transformers.GPT2LMHeadModel")
    ours = Decoder.from_config(_decoder_config(gpt2.config))
    return transfer(ours, _unpack_gpt2(gpt2.state_dict()), _gpt2_names(ours.config.n_layers))


def decoder_to_gpt2(ours: Decoder):
    """A transformers.GPT2LMHeadModel (eager attention, lm_head tied) with the weights of our Decoder, in eval mode."""
    check_instance("ours", ours, Decoder, "course_utils Decoder")
    gpt2 = transformers_class("GPT2LMHeadModel")(_gpt2_config(ours.config))
    mine = ours.state_dict()
    state = _pack_gpt2({t: mine[o] for o, t in _gpt2_names(ours.config.n_layers).items()})
    return transfer(gpt2, state, {name: name for name in state}, allowed_missing=("lm_head.weight",))
