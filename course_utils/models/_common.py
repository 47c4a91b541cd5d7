"""What the three model families share: building from a Config dataclass, BERT's initialisation, key masks, caches."""

from __future__ import annotations

from dataclasses import asdict, fields

import torch
from torch import nn

from .._validate import (
    MAX_WIDTH, check_bool, check_choice, check_ids, check_instance, check_int, check_positive, check_probability,
    check_tensor,
)
from ..attention import KVCache, causal_mask, padding_mask
from ..layers import ACTIVATIONS

TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id")
# The largest sizes a config may ask for: beyond them a laptop runs out of memory before the first forward pass.
LIMITS = dict(vocab_size=2**20, d_model=MAX_WIDTH, d_ff=4 * MAX_WIDTH, max_len=2**17, type_vocab_size=2**10)


def check_config(c) -> None:
    """Every field of a model config within its range, the width divisible into heads, the token ids in the vocabulary."""
    for f in fields(c):
        value = getattr(c, f.name)
        if f.name == "activation":
            check_choice("activation", value, ACTIVATIONS)
        elif f.name in ("eps", "rope_theta"):
            check_positive(f.name, value)
        elif f.name == "dropout":
            check_probability("dropout", value)
        elif f.name in ("causal", "tie_embeddings"):
            check_bool(f.name, value)
        elif f.name in TOKEN_IDS:
            check_int(f.name, value)
            if not 0 <= value < c.vocab_size:
                raise ValueError(f"{f.name} must lie in [0, vocab_size={c.vocab_size}), got {value}")
        elif not (f.name == "d_ff" and value is None):
            check_int(f.name, value, 1, LIMITS.get(f.name, 1024))  # n_heads and the layer counts: at most 1024
    if c.d_model % c.n_heads:
        raise ValueError(f"d_model ({c.d_model}) must be divisible by n_heads ({c.n_heads})")
    if c.n_heads % getattr(c, "n_kv_heads", 1):
        raise ValueError(f"n_heads ({c.n_heads}) must be a multiple of n_kv_heads ({c.n_kv_heads}): each key/value "
                         "head serves a whole group of query heads")


class Configured(nn.Module):
    """A model whose constructor takes its Config's fields: `from_config` builds one from a config."""

    config_class: type

    @classmethod
    def from_config(cls, config):
        """The model that `config` describes, freshly initialised."""
        check_instance("config", config, cls.config_class)
        return cls(**asdict(config))


def init_bert_weights(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation: N(0, 0.02) weights, zero biases; the LayerNorms keep gain 1 and bias 0."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def key_mask(name: str, attention_mask: torch.Tensor | None, shape: tuple[int, int]) -> torch.Tensor | None:
    """The boolean key mask (B, 1, 1, T) of a 0/1 attention_mask that must have `shape` (B, T); None stays None."""
    if attention_mask is None:
        return None
    check_tensor(name, attention_mask, ndim=2)
    if tuple(attention_mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(attention_mask.shape)}")
    return padding_mask(attention_mask)  # (B, 1, 1, T)


def check_cache(cache, batch_size: int) -> int:
    """T_past, the number of tokens a KVCache (or None) already holds for this batch."""
    if cache is None:
        return 0
    check_instance("cache", cache, KVCache, "course_utils KVCache")
    if cache.batch_size not in (None, batch_size):
        raise ValueError(f"cache holds a batch of {cache.batch_size} rows, but the input has {batch_size}: "
                         "start a new KVCache for each batch")
    return cache.length




def decoder_inputs(
    c, input_ids, attention_mask, position_ids, cache, logits_to_keep: int = 0
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The attention mask (None: every key visible) and the position ids (B, L) of a decoder of config c.

    Checks that ids, positions, cache and logits_to_keep (>= 0) fit the model. The mask hides the padded keys and,
    when c is causal and L > 1, the future ones; position_ids default to T_past .. T_past + L - 1.
    """
    check_ids("input_ids", input_ids, c.vocab_size)
    B, L = input_ids.shape
    if L == 0:
        raise ValueError(f"input_ids must hold at least one token, got shape {(B, L)}")
    past = check_cache(cache, B)
    check_int("logits_to_keep", logits_to_keep, 0)
    if cache is not None and not getattr(c, "causal", True):
        raise ValueError("cache needs causal=True: a bidirectional model must re-read the whole sequence")
    if past + L > c.max_len:
        raise ValueError(f"prompt of {L} tokens + {past} cached exceeds max_len={c.max_len}, the model's context")
    if position_ids is not None:
        check_ids("position_ids", position_ids, c.max_len, shape=(B, L))
    else:
        position_ids = torch.arange(past, past + L, device=input_ids.device).expand(B, L)
    mask = key_mask("attention_mask", attention_mask, (B, past + L))  # (B, 1, 1, T) or None
    if getattr(c, "causal", True) and L > 1:  # one new token may see every key: a decoding step needs no mask
        causal = causal_mask(L, past + L).to(input_ids.device)  # (L, T), aligned to the last L keys
        mask = causal if mask is None else mask & causal  # (B, 1, L, T)
    return mask, position_ids
