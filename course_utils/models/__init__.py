"""Whole models assembled from the layers: Encoder (BERT-like), Decoder (GPT-like), EncoderDecoder (BART-like),
LlamaDecoder (today's decoders: SmolLM2, Llama).

Each family has a frozen Config dataclass, validated once and stored as `model.config` (as nanoGPT's GPTConfig);
a model is built from keyword arguments (`Decoder(8000, d_model=128)`) or from a config (`Decoder.from_config(c)`).
Decoder and EncoderDecoder accept a KVCache, so generation feeds one new token at a time.
"""

from ..noising import shift_tokens_right  # noqa: F401  re-exported for one release: moved to course_utils.noising
from ._common import init_bert_weights
from .decoder import Decoder, DecoderConfig, DecoderOutput
from .encoder import (
    Embeddings, Encoder, EncoderConfig, EncoderForClassification, EncoderForPreTraining, EncoderOutput, MLMHead, Pooler,
    PreTrainingOutput,
)
from .encoder_decoder import BART_POSITION_OFFSET, DecoderLayer, EncoderDecoder, EncoderDecoderConfig, Seq2SeqOutput
from .llama import LlamaConfig, LlamaDecoder

__all__ = [
    "BART_POSITION_OFFSET", "Decoder", "DecoderConfig", "DecoderLayer", "DecoderOutput", "Embeddings", "Encoder",
    "EncoderConfig", "EncoderDecoder", "EncoderDecoderConfig", "EncoderForClassification", "EncoderForPreTraining",
    "EncoderOutput", "LlamaConfig", "LlamaDecoder", "MLMHead", "Pooler", "PreTrainingOutput", "Seq2SeqOutput", "init_bert_weights",
]
