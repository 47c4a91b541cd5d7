"""Bad input to the model side (attention, layers, models, warpers, generation, training, hf): a clear error up front.

Each row: a call that a careful user could make by mistake -> the error class and a fragment of its message, which
names the argument, the value (or its shape/dtype) and what was expected. The data-side modules have theirs in
their own test files (test_metrics, test_noising, test_datasets, ...).
"""

import pytest
import torch
from torch import nn

from course_utils.attention import (
    KVCache, LayerCache, MultiHeadAttention, build_mask, causal_mask, position_ids_from_mask,
    scaled_dot_product_attention,
)
from course_utils.generation import DecodingConfig, generate, next_token_logits
from course_utils.hf import TransformersLM, mha_from_torch
from course_utils.layers import FeedForward, LayerNorm, TransformerLayer
from course_utils.models import (
    Decoder, DecoderConfig, Embeddings, Encoder, EncoderConfig, EncoderDecoder, EncoderForClassification, MLMHead,
    Pooler,
)
from course_utils.plots import attention_heatmap, mask_grid
from course_utils.training import train, warmup_linear
from course_utils.warpers import apply_temperature, ban_repeated_ngrams, top_k_filter, top_p_filter, warp_logits

TINY = dict(d_model=8, n_heads=2, n_layers=1, max_len=6)
IDS = torch.tensor([[1, 2, 3]])
NAN = torch.tensor([[0.0, float("nan")]])


def _decoder():
    return Decoder(20, **TINY).eval()


def _seq2seq():
    return EncoderDecoder(20, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, max_len=6).eval()


def _train(**kwargs):
    model = nn.Linear(2, 1)
    batches = iter(lambda: torch.ones(4, 2), None)
    loss_fn = kwargs.pop("loss_fn", lambda m, b: m(b).pow(2).mean())
    return train(model, batches, loss_fn, steps=kwargs.pop("steps", 3), **kwargs)


CASES = [
    # constructors: booleans that are booleans, sizes that are sizes, names of the argument as written
    (lambda: MultiHeadAttention(8, 2, bias="no"), TypeError, "bias must be a bool"),
    (lambda: LayerNorm(8, affine="no"), TypeError, "affine must be a bool"),
    (lambda: FeedForward(8, dropout=1.5), ValueError, r"dropout must lie in \[0, 1\], got 1.5"),
    (lambda: Encoder(100, d_model=0), ValueError, "d_model must be >= 1, got 0"),
    (lambda: Encoder(100, n_layer=2), TypeError, "n_layer"),
    (lambda: Decoder(20, activation="swish"), ValueError, "activation must be one of"),
    (lambda: Decoder(20, causal="yes"), TypeError, "causal must be a bool"),
    (lambda: DecoderConfig(20, d_model=10, n_heads=3), ValueError, "divisible"),
    (lambda: Encoder.from_config(DecoderConfig(20)), TypeError, "config must be a EncoderConfig"),
    (lambda: EncoderForClassification(Encoder(20, **TINY), 0), ValueError, "n_labels must be >= 1"),
    # forward passes: the wrong width, ids outside the vocabulary or the positions, no token at all
    (lambda: FeedForward(8)(torch.zeros(1, 3, 5)), ValueError, r"y must have last dimension d_model=8, got shape"),
    (lambda: LayerNorm(8)(torch.zeros(2, 5)), ValueError, "x must have last dimension d=8"),
    (lambda: Pooler(8)(torch.zeros(2, 3, 5)), ValueError, "h must have last dimension d_model=8"),
    (lambda: Pooler(8)(torch.zeros(2, 0, 8)), ValueError, "at least the \\[CLS\\] position"),
    (lambda: MLMHead(nn.Embedding(20, 8), "gelu", 1e-12)(torch.zeros(2, 5)), ValueError, "h must have last dim"),
    (lambda: Embeddings(EncoderConfig(20, **TINY))(torch.tensor([[1, 25]])), ValueError,
     r"input_ids must lie in \[0, 20\)"),
    (lambda: Embeddings(EncoderConfig(20, **TINY))(torch.ones(1, 7, dtype=torch.long)), ValueError,
     "7 positions, more than max_len=6"),
    (lambda: Encoder(20, **TINY)(torch.ones(1, 0, dtype=torch.long)), ValueError, "at least one token"),
    (lambda: Encoder(20, **TINY)(IDS, torch.tensor([[0, 1, 2]])), ValueError, r"token_type_ids must lie in \[0, 2\)"),
    (lambda: Encoder(20, **TINY)(IDS.float()), TypeError, "input_ids must be an integer tensor"),
    (lambda: _decoder()(IDS, cache=_filled_cache(batch=2)), ValueError, "cache holds a batch of 2 rows"),
    (lambda: TransformerLayer(8, 2)(torch.zeros(1, 3, 8), cache={}), TypeError, "cache must be a LayerCache"),
    (lambda: KVCache()[1], ValueError, "layer must be <= 0"),
    (lambda: causal_mask(3, 2), ValueError, "n_keys must be >= 3"),
    (lambda: build_mask("diagonal", 3), ValueError, "kind must be one of"),
    # the warpers: NaN or all -inf logits would sample garbage
    (lambda: apply_temperature(torch.tensor([0.0, float("nan")]), 1.0), ValueError, "NaN"),
    (lambda: top_k_filter(torch.full((3,), float("-inf")), 2), ValueError, "at least one finite score"),
    (lambda: top_p_filter(torch.tensor([1.0, float("inf")]), 0.9), ValueError, r"\+inf"),
    (lambda: top_p_filter(torch.zeros(3), 1.5), ValueError, r"p must lie in \(0, 1\]"),
    (lambda: warp_logits(torch.zeros(3), top_k=True), TypeError, "top_k must be an int"),
    (lambda: ban_repeated_ngrams(IDS, torch.zeros(2, 20), 2), ValueError, "one row per row of ids"),
    (lambda: ban_repeated_ngrams(IDS.float(), torch.zeros(1, 20), 2), TypeError, "ids must be an integer tensor"),
    # generate: settings checked once (DecodingConfig), then the prompt against the model
    (lambda: DecodingConfig(5, temperature=0), ValueError, "temperature must be a finite number > 0"),
    (lambda: DecodingConfig(5, early_stopping="sometimes"), ValueError, "early_stopping"),
    (lambda: DecodingConfig(5, length_penalty=float("nan")), ValueError, "length_penalty"),
    (lambda: generate(_decoder(), IDS[:0], 3), ValueError, "at least one row"),
    (lambda: generate(_decoder(), IDS, 4), ValueError, "exceeds the model's 6 positions"),
    (lambda: generate(_decoder(), IDS, 2, eos_token_id=20), ValueError, "eos_token_id must be <= 19"),
    (lambda: generate(nn.Linear(2, 2), IDS, 2), TypeError, "model must be a course_utils Decoder"),
    # training: a schedule, a clip and a decay that make sense; a loss that is a number
    (lambda: warmup_linear(-5, 10, 100), ValueError, "step must be >= 0, got -5"),
    (lambda: warmup_linear(0, 0, 100), ValueError, "warmup must be >= 1"),
    (lambda: _train(clip=-1.0), ValueError, "clip must be a finite number > 0"),
    (lambda: _train(weight_decay=-1.0), ValueError, "weight_decay must be a finite number in"),
    (lambda: _train(loss_fn=lambda m, b: m(b).sum() * float("nan")), ValueError, "the loss is nan at step 0"),
    (lambda: _train(loss_fn=lambda m, b: m(b)), TypeError, "loss_fn must return a scalar tensor"),
    (lambda: train(nn.Linear(2, 1), [torch.ones(2)], lambda m, b: m(b).sum(), steps=1), TypeError,
     "batches must be an iterator"),
    # conversions: what eq. (1) cannot express is refused, not converted wrongly
    (lambda: mha_from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True)), ValueError, "add_bias_kv"),
    (lambda: mha_from_torch(nn.MultiheadAttention(8, 2, add_zero_attn=True)), ValueError, "add_zero_attn"),
    # NaN and wrong dtypes would flow through every layer: refused where they enter
    (lambda: scaled_dot_product_attention(NAN[None], torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)), ValueError,
     "q must hold finite values"),
    (lambda: scaled_dot_product_attention(torch.zeros(1, 3, 2), torch.zeros(1, 0, 2), torch.zeros(1, 0, 2)), ValueError,
     "Lk >= 1"),
    (lambda: MultiHeadAttention(8, 2)(torch.zeros(1, 3, 8, dtype=torch.float64)), TypeError, "x must have the dtype"),
    (lambda: MultiHeadAttention(8, 2)(torch.full((1, 3, 8), float("nan"))), ValueError, "x must hold finite"),
    (lambda: FeedForward(8)(torch.zeros(1, 3, 8, dtype=torch.float64)), TypeError, "y must have the dtype"),
    (lambda: LayerNorm(2)(NAN), ValueError, "x must hold finite values"),
    (lambda: _seq2seq().decode(IDS, torch.full((1, 2, 8), float("nan"))), ValueError, "encoder_hidden must hold finite"),
    # sizes that would exhaust the memory before the first result
    (lambda: causal_mask(10**9), ValueError, "length must be <= 32768"),
    (lambda: build_mask("causal", 10**9), ValueError, "n_queries must be <= 32768"),
    (lambda: MultiHeadAttention(10**9, 1), ValueError, "d_model must be <= 16384"),
    (lambda: Encoder(100, max_len=10**9), ValueError, "max_len must be <= 131072"),
    (lambda: generate(_decoder(), IDS, 2, num_beams=10**9), ValueError, "num_beams must be <= the vocabulary size 20"),
    # heads, caches and helpers called directly
    (lambda: Pooler(0), ValueError, "d_model must be >= 1"),
    (lambda: Pooler("8"), TypeError, "d_model must be an int"),
    (lambda: MLMHead(nn.Embedding(20, 8), "swish", 1e-12), ValueError, "activation must be one of"),
    (lambda: MLMHead("emb", "gelu", 1e-12), TypeError, "embedding must be a torch.nn.Embedding"),
    (lambda: Embeddings("x"), TypeError, "c must be a EncoderConfig"),
    (lambda: _layer_cache().reorder(torch.tensor([5])), ValueError, r"index must lie in \[0, 1\)"),
    (lambda: _layer_cache().reorder([0]), TypeError, "index must be a torch.Tensor"),
    (lambda: position_ids_from_mask(torch.ones(2, 3, dtype=torch.long), 5, 3), ValueError, "attention_mask must have"),
    (lambda: position_ids_from_mask("x", 1, 3), TypeError, "attention_mask must be a torch.Tensor"),
    (lambda: next_token_logits(Encoder(20, **TINY), IDS), TypeError, "model must be a course_utils Decoder"),
    (lambda: ban_repeated_ngrams(torch.tensor([[1, 30, 1]]), torch.zeros(1, 20), 2), ValueError, "width of scores"),
    (lambda: warp_logits([0.0, 1.0]), TypeError, "logits must be a torch.Tensor"),
    (lambda: warp_logits(NAN[0]), ValueError, "NaN"),
    (lambda: generate(_seq2seq(), IDS, 2, attention_mask=torch.zeros(1, 3, dtype=torch.long)), ValueError,
     "at least one real token in every row"),
    (lambda: TransformersLM("x", True), TypeError, "model must be a transformers causal LM"),
    (lambda: _train(loss_fn=lambda m, b: torch.tensor(1.0)), TypeError, "computed from the model's parameters"),
    (lambda: train(nn.Linear(2, 1), iter([torch.ones(2)]), lambda m, b: m(b).sum(), steps=3), ValueError,
     "batches ran out after 1 of steps=3"),
    (lambda: train(nn.Identity(), iter(lambda: 1, None), lambda m, b: b, steps=1), ValueError,
     "model must have trainable parameters"),
    # plots: the figure's inputs
    (lambda: attention_heatmap(NAN, ["a"], ["b", "c"]), ValueError, "alpha must hold finite values"),
    (lambda: attention_heatmap(torch.zeros(1, 2), ["a"], ["b", "c"], annotate="no"), TypeError, "annotate must be a bool"),
    (lambda: attention_heatmap(torch.zeros(1, 2), ["a"], ["b", "c"], cmap="nope"), ValueError, "cmap must be one of"),
    (lambda: attention_heatmap(torch.zeros(1, 1), None), TypeError, "queries must be a list of str"),
    (lambda: attention_heatmap("abc", ["a"]), TypeError, "alpha must be a tensor"),
    (lambda: mask_grid(None, ["a"]), TypeError, "mask must be a torch.Tensor"),
    (lambda: mask_grid(torch.ones(2, 3, dtype=torch.bool), ["a", "b"]), ValueError, "mask must have shape"),
]


def _layer_cache() -> LayerCache:
    cache = LayerCache()
    cache.update(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 2, 4))
    return cache


def _filled_cache(batch: int) -> KVCache:
    cache = KVCache()
    cache[0].update(torch.zeros(batch, 2, 2, 4), torch.zeros(batch, 2, 2, 4))
    return cache


@pytest.mark.parametrize("call, error, match", CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_input_gets_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_valid_edge_cases_work():
    seq2seq = _seq2seq()
    out = generate(seq2seq, IDS, 0)  # no new token: the target is decoder_start alone, as the docstring says
    assert out.tolist() == [[seq2seq.config.decoder_start_token_id]]
    assert generate(_decoder(), IDS, 0).tolist() == IDS.tolist()
    assert warmup_linear(0, 1, 1) == 1.0
