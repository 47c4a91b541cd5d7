"""Decoding equals transformers: the three warpers, and generate's tokens against model.generate (5.x).

generate runs on a tiny random GPT2LMHeadModel and on our Decoder holding the same weights.
"""

import itertools
from collections import Counter

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.generation.logits_process import (
    NoRepeatNGramLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
)

from course_utils.generation import apply_temperature, ban_repeated_ngrams, generate, top_k_filter, top_p_filter
from course_utils.hf import decoder_from_gpt2

V = 40  # vocabulary of the tiny random GPT-2
PAD = 7


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=V, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=None, eos_token_id=None,
        initializer_range=0.3, attn_implementation="eager",  # a large init: varied, not constant, continuations
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module")
def decoder(gpt2):
    return decoder_from_gpt2(gpt2)


@pytest.fixture(scope="module")
def batch():
    """Three prompts of 5, 3 and 4 tokens, left-padded to 5."""
    input_ids = torch.randint(0, V, (3, 5), generator=torch.Generator().manual_seed(1))
    attention_mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 1, 1, 1, 1]])
    return input_ids, attention_mask


@pytest.fixture(scope="module")
def eos(gpt2, batch):
    """The token greedy decoding emits most often: an eos that fires in the middle of some rows."""
    input_ids, attention_mask = batch
    new = generate(gpt2, input_ids, 10, attention_mask=attention_mask)[:, input_ids.shape[1]:]
    return Counter(new.flatten().tolist()).most_common(1)[0][0]


def theirs(model, input_ids, attention_mask=None, **kwargs):
    """transformers' generate with the options explicit (sampling tests pass top_k: its default is 50, not off)."""
    kwargs = {"do_sample": False, "num_beams": 1, "pad_token_id": None, "eos_token_id": None, **kwargs}
    with torch.no_grad():
        return model.generate(input_ids, attention_mask=attention_mask, **kwargs)


def assert_same(ours, reference):
    assert ours.shape == reference.shape and torch.equal(ours, reference), f"\nours\n{ours}\ntransformers\n{reference}"


@pytest.fixture
def logits():
    """Random logits (4, 30) with ties: integer values in [-3, 3), plus one row with -inf (as after top-k)."""
    x = torch.randint(-3, 3, (4, 30), generator=torch.Generator().manual_seed(2)).float()
    x[1] = torch.randn(30, generator=torch.Generator().manual_seed(3))
    x[2, :10] = float("-inf")
    return x


# ---- the warpers


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_temperature_equals_transformers(logits, temperature):
    ref = TemperatureLogitsWarper(temperature)(None, logits.clone())
    assert torch.equal(apply_temperature(logits, temperature), ref)


@pytest.mark.parametrize("k", [1, 2, 5, 29, 30, 100])
def test_top_k_equals_transformers(logits, k):
    ref = TopKLogitsWarper(k)(None, logits.clone())
    ours = top_k_filter(logits, k)
    assert torch.equal(ours, ref)
    kept = torch.isfinite(ours).sum(-1)
    assert (kept >= min(k, 20)).all()  # row 2 has only 20 finite logits
    if k == 2:
        assert (kept > 2).any()  # ties with the k-th value are kept


@pytest.mark.parametrize("p", [0.05, 0.3, 0.75, 0.9, 0.999, 1.0])
def test_top_p_equals_transformers(logits, p):
    assert torch.equal(top_p_filter(logits, p), TopPLogitsWarper(p)(None, logits.clone()))


def test_top_p_keeps_the_smallest_set_reaching_p():
    """probs [.5, .3, .15, .05]: p=.75 keeps {.5, .3}; p=.9 keeps 3 tokens; a tiny p keeps the arg max."""
    logits = torch.tensor([0.15, 0.5, 0.05, 0.3]).log()
    assert torch.isfinite(top_p_filter(logits, 0.75)).tolist() == [False, True, False, True]
    assert torch.isfinite(top_p_filter(logits, 0.9)).tolist() == [True, True, False, True]
    assert torch.isfinite(top_p_filter(logits, 1e-6)).tolist() == [False, True, False, False]


def test_warpers_reject_bad_arguments(logits):
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            apply_temperature(logits, bad)
    with pytest.raises(ValueError, match="k"):
        top_k_filter(logits, 0)
    with pytest.raises(TypeError, match="k"):
        top_k_filter(logits, 2.0)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="p"):
            top_p_filter(logits, bad)
    with pytest.raises(TypeError, match="logits"):
        top_k_filter(logits.long(), 2)


# ---- generate against model.generate


def prompts(batch):
    """A single prompt, two unpadded prompts, and the left-padded batch."""
    input_ids, attention_mask = batch
    return [(input_ids[:1], None), (input_ids[:, 2:], None), (input_ids, attention_mask)]


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_equals_transformers(gpt2, batch, eos, use_cache):
    for (input_ids, attention_mask), eos_token_id in itertools.product(prompts(batch), [None, eos]):
        ours = generate(
            gpt2, input_ids, 10, attention_mask=attention_mask, eos_token_id=eos_token_id, use_cache=use_cache
        )
        assert_same(ours, theirs(gpt2, input_ids, attention_mask, max_new_tokens=10, eos_token_id=eos_token_id))


def test_greedy_pads_after_eos_and_stops_when_all_rows_have(gpt2, batch, eos):
    input_ids, attention_mask = batch
    out = generate(gpt2, input_ids, 10, attention_mask=attention_mask, eos_token_id=eos, pad_token_id=PAD)
    assert_same(out, theirs(gpt2, input_ids, attention_mask, max_new_tokens=10, eos_token_id=eos, pad_token_id=PAD))
    new = out[:, input_ids.shape[1]:]
    for row in new.tolist():
        if eos in row:  # after the first eos, only pads
            assert set(row[row.index(eos) + 1:]) <= {PAD}
    assert (new == eos).any(dim=1).sum() >= 1
    first = generate(gpt2, input_ids[1:2], 10, attention_mask=attention_mask[1:2], eos_token_id=eos)
    assert first[0, -1] == eos and first.shape[1] < input_ids.shape[1] + 10  # a lone row stops at its eos


LENGTH_PENALTIES, EARLY_STOPPING = [0.0, 1.0, 2.0], [True, False, "never"]


@pytest.mark.parametrize(
    "num_beams, length_penalty, early_stopping",
    [  # a Latin square: every pair of values of two of the three options occurs once; (2, 2.0, "never")
        # is among them, where this model's result differs from early_stopping=False
        (2 + (i + j + 2) % 3, lp, es) for (i, lp), (j, es) in itertools.product(
            enumerate(LENGTH_PENALTIES), enumerate(EARLY_STOPPING)
        )
    ],
)
def test_beam_search_equals_transformers(gpt2, batch, eos, num_beams, length_penalty, early_stopping):
    input_ids, attention_mask = batch
    kwargs = dict(
        num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping, eos_token_id=eos,
        pad_token_id=PAD,
    )
    ours = generate(gpt2, input_ids, 8, attention_mask=attention_mask, **kwargs)
    assert_same(ours, theirs(gpt2, input_ids, attention_mask, max_new_tokens=8, **kwargs))


def test_beam_search_eos_fires_and_pads(gpt2, batch, eos):
    """Some hypotheses end early (eos then pad), so the finished pool and its length penalty are exercised."""
    input_ids, attention_mask = batch
    outs = [
        generate(gpt2, input_ids, 8, attention_mask=attention_mask, num_beams=n, eos_token_id=eos, pad_token_id=PAD)
        for n in (2, 3, 4)
    ]
    assert any((out == PAD).any() for out in outs)


@pytest.mark.parametrize("use_cache", [True, False])
def test_beam_search_without_eos_and_single_prompts(gpt2, batch, use_cache):
    for (input_ids, attention_mask), num_beams in itertools.product(prompts(batch), [2, 4]):
        ours = generate(gpt2, input_ids, 6, attention_mask=attention_mask, num_beams=num_beams, use_cache=use_cache)
        assert_same(ours, theirs(gpt2, input_ids, attention_mask, max_new_tokens=6, num_beams=num_beams))


@pytest.mark.parametrize(
    "temperature, top_k, top_p", [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.5, 5, 1.0), (1.0, 0, 0.8), (0.8, 10, 0.9)]
)
def test_sampling_equals_transformers_under_one_seed(gpt2, batch, eos, temperature, top_k, top_p):
    input_ids, attention_mask = batch
    kwargs = dict(do_sample=True, temperature=temperature, top_k=top_k, top_p=top_p, eos_token_id=eos)
    for seed in range(3):
        torch.manual_seed(seed)
        ours = generate(gpt2, input_ids, 10, attention_mask=attention_mask, **kwargs)
        torch.manual_seed(seed)
        assert_same(ours, theirs(gpt2, input_ids, attention_mask, max_new_tokens=10, **kwargs))


def test_cached_equals_uncached_sampling(gpt2, batch):
    input_ids, attention_mask = batch
    outs = []
    for use_cache in (True, False):
        torch.manual_seed(5)
        outs.append(generate(gpt2, input_ids, 12, attention_mask=attention_mask, do_sample=True, use_cache=use_cache))
    assert torch.equal(*outs)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_ban_repeated_ngrams_equals_transformers(n):
    ids = torch.randint(0, 3, (6, 16), generator=torch.Generator().manual_seed(4))  # 3 symbols: many repeats
    scores = torch.randn(6, 5, generator=torch.Generator().manual_seed(5))
    ours = ban_repeated_ngrams(ids, scores, n)
    assert torch.equal(ours, NoRepeatNGramLogitsProcessor(n)(ids, scores.clone()))
    assert torch.isinf(ours).any() and not torch.isinf(scores).any()  # some bans, the input untouched
    short = ids[:, :max(0, n - 2)]  # fewer than n - 1 tokens: no n-gram can be completed yet
    assert torch.equal(ban_repeated_ngrams(short, scores, n), NoRepeatNGramLogitsProcessor(n)(short, scores.clone()))


@pytest.mark.parametrize("kwargs", [dict(), dict(num_beams=3), dict(num_beams=2, length_penalty=2.0, early_stopping=True),
                                    dict(do_sample=True, top_k=10)])
def test_no_repeat_ngram_size_equals_transformers(gpt2, decoder, batch, eos, kwargs):
    """Greedy, beam search and sampling with no repeated bigram: the tokens of model.generate, with and without eos."""
    input_ids, attention_mask = batch
    outputs = {}
    for eos_token_id in (None, eos):
        options = dict(attention_mask=attention_mask, eos_token_id=eos_token_id, pad_token_id=PAD, **kwargs)
        torch.manual_seed(0)
        outputs[eos_token_id] = theirs(gpt2, input_ids, max_new_tokens=30, no_repeat_ngram_size=2, **options)
        for model in (gpt2, decoder):
            torch.manual_seed(0)
            assert_same(generate(model, input_ids, 30, no_repeat_ngram_size=2, **options), outputs[eos_token_id])
    torch.manual_seed(0)
    free = generate(gpt2, input_ids, 30, attention_mask=attention_mask, **kwargs)
    assert not torch.equal(outputs[None], free)  # without the ban some bigram repeats: the ban changed the output
    for row in outputs[eos].tolist():  # no new token completes a bigram seen earlier in its row (pads count, as there)
        for t in range(input_ids.shape[1], len(row)):
            if row[t - 1] == eos:
                break
            assert (row[t - 1], row[t]) not in set(zip(row[:t - 1], row[1:t])), row


@pytest.mark.parametrize("use_cache", [True, False])
def test_decoder_equals_transformers_on_the_same_weights(decoder, gpt2, batch, eos, use_cache):
    input_ids, attention_mask = batch
    for kwargs in [
        {},
        dict(num_beams=2, length_penalty=0.0, early_stopping=True),
        dict(num_beams=3, length_penalty=2.0, early_stopping="never"),
        dict(num_beams=4, length_penalty=1.0, early_stopping=False),
    ]:
        kwargs |= dict(eos_token_id=eos, pad_token_id=PAD)
        ours = generate(decoder, input_ids, 8, attention_mask=attention_mask, use_cache=use_cache, **kwargs)
        assert_same(ours, theirs(gpt2, input_ids, attention_mask, max_new_tokens=8, **kwargs))
    kwargs = dict(do_sample=True, temperature=0.8, top_k=10, top_p=0.9, eos_token_id=eos)
    torch.manual_seed(0)
    ours = generate(decoder, input_ids, 10, attention_mask=attention_mask, use_cache=use_cache, **kwargs)
    torch.manual_seed(0)
    assert_same(ours, theirs(gpt2, input_ids, attention_mask, max_new_tokens=10, **kwargs))


@pytest.mark.parametrize("num_beams", [1, 3])
def test_decoder_cache_feeds_one_token_per_step(decoder, batch, num_beams):
    """With the KV cache the prompt is read once, then one token per step; without it the whole sequence."""
    input_ids, attention_mask = batch
    lengths = []
    hook = decoder.register_forward_pre_hook(lambda module, args: lengths.append(args[0].shape[1]))
    try:
        for use_cache in (True, False):
            generate(decoder, input_ids, 4, attention_mask=attention_mask, num_beams=num_beams, use_cache=use_cache)
    finally:
        hook.remove()
    assert lengths == [5, 1, 1, 1, 5, 6, 7, 8]


def test_zero_new_tokens_returns_the_prompt(gpt2, batch):
    input_ids, attention_mask = batch
    assert torch.equal(generate(gpt2, input_ids, 0, attention_mask=attention_mask), input_ids)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(max_new_tokens=-1), ValueError, "max_new_tokens"),
        (dict(max_new_tokens=62), ValueError, "positions"),
        (dict(max_new_tokens=2.0), TypeError, "max_new_tokens"),
        (dict(do_sample=True, temperature=0.0), ValueError, "temperature"),
        (dict(do_sample=True, temperature=-1.0), ValueError, "temperature"),
        (dict(top_p=0.0), ValueError, "top_p"),
        (dict(top_p=1.2), ValueError, "top_p"),
        (dict(top_k=-1), ValueError, "top_k"),
        (dict(num_beams=0), ValueError, "num_beams"),
        (dict(no_repeat_ngram_size=-1), ValueError, "no_repeat_ngram_size"),
        (dict(no_repeat_ngram_size=2.0), TypeError, "no_repeat_ngram_size"),
        (dict(num_beams=2, do_sample=True), ValueError, "not supported"),
        (dict(early_stopping="always"), ValueError, "early_stopping"),
        (dict(eos_token_id=V), ValueError, "eos_token_id"),
        (dict(pad_token_id=-1), ValueError, "pad_token_id"),
        (dict(input_ids=torch.zeros(2, 3)), TypeError, "input_ids"),
        (dict(input_ids=torch.zeros(3, dtype=torch.long)), ValueError, "input_ids"),
        (dict(input_ids=torch.full((1, 3), V)), ValueError, "input_ids"),
        (dict(attention_mask=torch.ones(1, 2, dtype=torch.long)), ValueError, "attention_mask"),
        (dict(attention_mask=torch.tensor([[1, 1, 0]])), ValueError, "left"),
        (dict(model=torch.nn.Linear(2, 2)), TypeError, "model"),
    ],
)
def test_generate_rejects_bad_input(gpt2, kwargs, error, match):
    args = {"model": gpt2, "input_ids": torch.tensor([[1, 2, 3]]), "max_new_tokens": 4, **kwargs}
    model, input_ids, max_new_tokens = args.pop("model"), args.pop("input_ids"), args.pop("max_new_tokens")
    with pytest.raises(error, match=match):
        generate(model, input_ids, max_new_tokens, **args)
