"""Reference implementations for the course book "LLMs: from attention to generation".

One module per idea (models and hf are packages, one file per model family); a module imports only from its own row
(without cycles) or the rows below it:
    face      widgets, exercises     the widgets of chapters 01 and 09; checks of the exercises, their solutions
              browser_gpt            the tiny GPT in the book's pages: browser_gpt.js and the checkpoint's numbers
              pretrain, finetune,    the recipes behind the shipped checkpoints and results (`python -m`);
              nsp_topic              NSP with MiniLM, and ALBERT's swapped pairs (chapter 04)
    use       generation, hf         decoding (greedy, beam, sampling) with a KV cache; weights to and from torch
                                     and transformers (BERT, GPT-2, BART, Llama), transformers LMs behind generate()
              evaluation, training   held-out figures of the tiny models; the train loop
              checkpoints,           safetensors with their Config, the tiny models' loaders and cards;
              pretrained             real pre-trained models shipped offline: MiniLM, SmolLM2 (its GGUF file read
                                     by transformers and by our own reader); hub_available
    assemble  models                 Encoder (BERT-like) + heads, Decoder (GPT-like), EncoderDecoder (BART-like),
                                     LlamaDecoder (today's decoders), each with a Config stored as model.config
    parts     layers, warpers        eq. (2)-(4), and RMSNorm, SwiGLU, LlamaLayer; temperature, top-k, top-p
              objectives, noising    Word2Vec, MLM, NSP and their losses; BART's noising and its loss
              datasets, metrics      corpus -> training batches; perplexity, edit distance, entropy, confusion
    ground    attention, data,       eq. (1), masks, KV cache, GQA, RoPE; corpus, splits, tokenizers;
              dates, plots,          the date task; matplotlib helpers;
              diagrams               the lecture's architecture figures, drawn by code;
              _validate              argument checks, seeding, padding, mini-batches (one copy of each)
"""

import sys

if sys.version_info < (3, 10):  # checked before any import, which could fail less clearly
    raise RuntimeError(f"course_utils needs Python 3.10 or newer, got Python {sys.version.split()[0]}: create the "
                       "book's environment with a newer Python (README, 'On your own machine')")

from ._validate import seeded, set_seed  # noqa: E402

__all__ = ["seeded", "set_seed"]
__version__ = "0.1.0"
