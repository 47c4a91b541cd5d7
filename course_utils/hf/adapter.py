"""generate() with a transformers causal LM: TransformersLM puts it behind the interface of our decoders."""

from __future__ import annotations

import inspect
import sys

import torch
from torch import nn

from ..attention import position_ids_from_mask


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
