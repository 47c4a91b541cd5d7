"""Weights to and from the libraries our modules explain: torch.nn and transformers (BERT / MiniLM, GPT-2, BART, Llama).

Each conversion maps config to config, then copies the weights through a table of parameter names, ours -> theirs,
so the same table serves both directions. TransformersLM puts a transformers causal LM behind generate()'s interface.
"""

from ..pretrained import hub_available, load_minilm  # noqa: F401  re-exported for one release: moved to pretrained
from .adapter import TransformersLM, is_transformers_model
from .bart import encoder_decoder_from_bart, encoder_decoder_to_bart
from .bert import (
    classifier_from_bert, classifier_to_bert, encoder_from_bert, encoder_to_bert, pretraining_from_bert,
    pretraining_to_bert,
)
from .gpt2 import decoder_from_gpt2, decoder_to_gpt2
from .llama import decoder_from_llama, decoder_to_llama
from .torch_nn import layer_from_torch, mha_from_torch

__all__ = [
    "TransformersLM", "classifier_from_bert", "classifier_to_bert", "decoder_from_gpt2", "decoder_from_llama",
    "decoder_to_gpt2", "decoder_to_llama", "encoder_decoder_from_bart", "encoder_decoder_to_bart", "encoder_from_bert",
    "encoder_to_bert", "is_transformers_model", "layer_from_torch", "mha_from_torch", "pretraining_from_bert",
    "pretraining_to_bert",
]
