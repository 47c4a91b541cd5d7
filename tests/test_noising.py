"""BART's noising functions: the rules of fairseq's DenoisingDataset (SPECS.md section 4), checked by statistics."""

import math

import pytest
import torch

from course_utils import noising
from course_utils.models import Decoder, EncoderDecoder
from course_utils.noising import (
    cut_to_budget, denoising_loss, document_rotation, draw_span_lengths, poisson_pmf, poisson_span_lengths,
    rotation_offset, sentence_bounds, sentence_permutation, shift_tokens_right, subword_positions, text_infilling,
    token_deletion, token_masking,
)

BOS, EOS, MASK, STOP = 0, 2, 4, 5  # BART's <s>, </s>, <mask>; a full stop


def _document(n: int) -> torch.Tensor:
    """<s> 10 11 ... </s>: n distinct tokens, so every surviving token tells where it came from."""
    return torch.cat([torch.tensor([BOS]), torch.arange(10, 10 + n), torch.tensor([EOS])])


def _n_masked(document: torch.Tensor, out: torch.Tensor) -> int:
    """Tokens of the document missing from the output (masked or deleted)."""
    return len(document) - int(torch.isin(document, out).sum())


def test_poisson_span_lengths_sum_to_the_budget_with_mean_lambda():
    g = torch.Generator().manual_seed(0)
    draws = [poisson_span_lengths(150, 3.0, generator=g) for _ in range(1000)]
    assert all(int(d.sum()) == 150 for d in draws)  # the last span is cut so the budget is met exactly
    assert all(int(d[:-1].sum()) < 150 for d in draws)  # and no span is kept after it
    untouched = torch.cat([d[:-1] for d in draws]).double()  # ~50,000 spans, the cut last one left out
    # Poisson(3): mean 3 (sd of the estimate ~0.008), a little less as the span that crosses the budget tends
    # to be a long one (size-biased: ~(E[X^2]/E[X] - E[X]) / 50 spans = 0.02 lower)
    assert abs(untouched.mean() - 2.98) < 0.03
    assert abs((untouched == 0).double().mean() - math.exp(-3.0)) < 0.005  # zero-length spans (they insert a <mask>)
    assert untouched.max() <= 17  # the pmf stops at the first k with P(k) < 1e-7: k = 17 for lambda = 3


def test_text_infilling_masks_about_the_ratio_in_spans_of_mean_lambda():
    g = torch.Generator().manual_seed(1)
    document = _document(2000)
    masked = masks = 0
    for _ in range(200):
        out = text_infilling(document, MASK, mask_ratio=0.05, generator=g)
        masked += _n_masked(document, out)
        masks += int((out == MASK).sum())
    assert 0.045 < masked / (200 * 2000) <= 0.05  # budget 100 words; overlapping spans mask a little less
    assert abs(masked / masks - 3.0) < 0.15  # one <mask> per span (0-length ones too): tokens per <mask> ~ lambda


def test_text_infilling_at_30_percent_never_exceeds_the_budget():
    g = torch.Generator().manual_seed(2)
    document = _document(200)
    fractions = []
    for _ in range(300):
        n = _n_masked(document, text_infilling(document, MASK, generator=g))
        assert n <= 61  # ceil(200 * 0.3) = 61 in float32, as fairseq computes it
        fractions.append(n / 200)
    assert 0.26 < sum(fractions) / len(fractions) < 0.3  # overlaps and the cut at </s> lose ~10%


def test_text_infilling_masks_whole_words_only():
    g = torch.Generator().manual_seed(3)
    document = _document(300)
    word_starts = torch.rand(len(document), generator=g) < 0.4  # words of 2.5 tokens on average
    word_starts[1] = True
    word_id = word_starts.cumsum(0)  # (L,) the word each token belongs to
    masked_words = 0
    for _ in range(100):
        out = text_infilling(document, MASK, mask_ratio=0.2, word_starts=word_starts, generator=g)
        kept = torch.isin(document, out)
        for w in word_id[1:-1].unique():
            in_word = kept[1:-1][word_id[1:-1] == w]
            assert in_word.all() or not in_word.any()  # a word survives whole or goes whole
        masked_words += len(word_id[1:-1][~kept[1:-1]].unique())
        assert out[0] == BOS and out[-1] == EOS
    n_words = int(word_starts[1:-1].sum())
    assert 0.17 < masked_words / (100 * n_words) <= math.ceil(n_words * 0.2) / n_words


def test_token_masking_and_deletion_take_exactly_the_ratio_uniformly():
    g = torch.Generator().manual_seed(4)
    document = _document(20)
    masked_at, deleted_at = torch.zeros(len(document)), torch.zeros(len(document))
    for _ in range(4000):
        masked = token_masking(document, MASK, ratio=0.15, generator=g)
        assert int((masked == MASK).sum()) == 3  # ceil(0.15 * 20)
        assert torch.equal(masked[masked != MASK], document[masked != MASK])  # nothing else changes
        masked_at += (masked == MASK).float()
        deleted = token_deletion(document, ratio=0.15, generator=g)
        kept = torch.isin(document, deleted)
        assert len(deleted) == 20 - 3 + 2 and torch.equal(deleted, document[kept])  # order kept
        deleted_at += (~kept).float()
    for counts in (masked_at, deleted_at):
        assert counts[0] == 0 and counts[-1] == 0  # <s> and </s> never chosen
        assert ((counts[1:-1] / 4000 - 0.15).abs() < 0.025).all()  # every other position equally often


def test_sentence_permutation_shuffles_whole_sentences():
    g = torch.Generator().manual_seed(5)
    # sentences: [10 11 .] [12 .] [13 14 15 . .] [16 17] (the last one ends before </s>)
    document = torch.tensor([BOS, 10, 11, STOP, 12, STOP, 13, 14, 15, STOP, STOP, 16, 17, EOS])
    sentences = [(10, 11, STOP), (12, STOP), (13, 14, 15, STOP), (STOP, 16, 17)]
    seen = set()
    for _ in range(300):
        out = sentence_permutation(document, STOP, generator=g)
        assert out[0] == BOS and out[-1] == EOS and sorted(out.tolist()) == sorted(document.tolist())
        body, order = out[1:-1].tolist(), []
        while body:  # cut the output back into input sentences: each must be one of them
            sentence = next(s for s in sentences if tuple(body[: len(s)]) == s)
            order.append(sentences.index(sentence))
            body = body[len(sentence):]
        seen.add(tuple(order))
    assert len(seen) == 24  # all 4! orders occur


def test_document_rotation_is_a_uniform_rotation():
    g = torch.Generator().manual_seed(6)
    document = _document(10)
    firsts = torch.zeros(10)
    for _ in range(2000):
        out = document_rotation(document, generator=g)
        i = int(out[1]) - 10  # the rotation is fixed by the first token
        assert out[0] == BOS and out[-1] == EOS
        assert torch.equal(out[1:-1], document[1:-1].roll(-i))
        firsts[i] += 1
    # offsets 1..L-1 uniform; offsets 1 and L-1 both leave the document as it is
    expected = torch.full((10,), 1 / 11)
    expected[0] = 2 / 11
    assert ((firsts / 2000 - expected).abs() < 0.025).all()


@pytest.mark.parametrize("noise", [
    lambda t, g: text_infilling(t, MASK, generator=g),
    lambda t, g: text_infilling(t, MASK, poisson_lambda=0.5, mask_ratio=1.0, generator=g),
    lambda t, g: token_masking(t, MASK, ratio=0.5, generator=g),
    lambda t, g: token_deletion(t, ratio=0.5, generator=g),
    lambda t, g: sentence_permutation(t, STOP, generator=g),
    lambda t, g: document_rotation(t, generator=g),
])
def test_bos_eos_kept_input_untouched_seeded_and_global_rng_unused(noise):
    document = _document(30)
    document[8::7] = STOP
    copy = document.clone()
    state = torch.get_rng_state()
    for length in (2, 3, 4, 32):
        t = torch.cat([document[: length - 1], document[-1:]])
        outs = [noise(t, torch.Generator().manual_seed(seed)) for seed in (7, 7, 8)]
        assert torch.equal(outs[0], outs[1])  # the generator fixes the result
        for out in outs:
            assert out[0] == BOS and out[-1] == EOS and not (out[1:-1] == EOS).any()
    assert torch.equal(document, copy)  # the input is never modified
    assert torch.equal(torch.get_rng_state(), state)  # no global randomness
    different = [noise(document, torch.Generator().manual_seed(seed)) for seed in range(5)]
    assert any(not torch.equal(different[0], d) for d in different[1:])


def test_ratio_zero_is_the_identity():
    document = _document(50)
    assert torch.equal(text_infilling(document, MASK, mask_ratio=0.0), document)
    assert torch.equal(token_masking(document, MASK, ratio=0.0), document)
    assert torch.equal(token_deletion(document, ratio=0.0), document)


_S2S = EncoderDecoder(20, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, max_len=8)
_S2S_BATCH = {"input_ids": torch.tensor([[0, 5, 2], [0, 6, 2]]), "attention_mask": torch.ones(2, 3, dtype=torch.long),
              "labels": torch.tensor([[0, 5, 7, 2], [0, 6, 8, 2]])}


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("call, error, match", [
    (lambda: token_deletion([0, 5, 2]), TypeError, "tokens must be a torch.Tensor"),
    (lambda: document_rotation(_document(5).float()), TypeError, "tokens must be a LongTensor"),
    (lambda: token_masking(_document(5)[None], MASK), ValueError, "tokens must have 1 dimensions"),
    (lambda: document_rotation(_document(5)[:1]), ValueError, "length >= 2"),
    (lambda: token_masking(_document(5), MASK, ratio=1.5), ValueError,
     r"ratio must lie in \[0, 1\], got 1.5"),
    (lambda: token_deletion(_document(5), ratio="half"), TypeError, "ratio must be a number"),
    (lambda: text_infilling(_document(5), MASK, mask_ratio=-0.1), ValueError, "mask_ratio must lie in"),
    (lambda: text_infilling(_document(5), MASK, poisson_lambda=0), ValueError,
     r"poisson_lambda must be in \[0.01, -ln\(1e-7\) = 16.1\], got 0"),
    (lambda: text_infilling(_document(5), MASK, poisson_lambda=20.0), ValueError, "poisson_lambda must be in"),
    (lambda: text_infilling(_document(5), MASK, poisson_lambda=float("nan")), ValueError,
     "poisson_lambda must be a finite"),
    (lambda: text_infilling(_document(5), 4.0), TypeError, "mask_token_id must be an int, got 4.0"),
    (lambda: text_infilling(_document(5), MASK, generator=0), TypeError, "generator must be a torch.Generator or None"),
    (lambda: sentence_permutation(_document(5), None), TypeError, "full_stop_id must be an int"),
    (lambda: text_infilling(_document(5), MASK, word_starts=torch.ones(6, dtype=torch.bool)), ValueError,
     r"word_starts must have the shape of tokens \(7,\), got \(6,\)"),
    (lambda: text_infilling(_document(5), MASK, word_starts=torch.ones(7)), TypeError,
     "word_starts must be a bool tensor"),
    (lambda: poisson_span_lengths(0, 3.0), ValueError, "num_to_mask must be >= 1"),
    (lambda: poisson_pmf(1e-6), ValueError, "poisson_lambda must be in"),
    (lambda: draw_span_lengths(5, 3.0, generator="seed"), TypeError, "generator must be a torch.Generator"),
    (lambda: cut_to_budget(torch.tensor([1, 2]), 5), ValueError, "lengths must sum to num_to_mask=5 or more, got 3"),
    (lambda: cut_to_budget(torch.tensor([3, -1, 4]), 2), ValueError, r"lengths must lie in \[0, None\)"),
    (lambda: cut_to_budget(torch.tensor([3.0]), 2), TypeError, "lengths must be an integer tensor"),
    (lambda: subword_positions(1, 0.5), ValueError, "length must be >= 2"),
    (lambda: rotation_offset(1), ValueError, "length must be >= 2"),
    (lambda: sentence_bounds(_document(5), -1), ValueError, "full_stop_id must be >= 0"),
    (lambda: shift_tokens_right(torch.ones(2, 3), 1, 2), TypeError, "labels must be an integer tensor"),
    (lambda: denoising_loss(None, {"input_ids": torch.ones(1, 2, dtype=torch.long)}), ValueError,
     r"batch must hold input_ids, attention_mask and labels .*missing \['attention_mask', 'labels'\]"),
    (lambda: denoising_loss(None, [1, 2]), TypeError, "batch must be a dict"),
    # issue 17, second audit
    (lambda: draw_span_lengths(10**9, 3.0), ValueError, "num_to_mask must be <= 1048576"),
    (lambda: subword_positions(10**9, 0.1), ValueError, "length must be <= 1048576"),
    (lambda: shift_tokens_right(torch.tensor([[5, -5, 2]]), 1, 2), ValueError,
     r"labels must hold ids >= 0 or -100 \(ignored\), got \[-5\]"),
    (lambda: denoising_loss("x", _S2S_BATCH), TypeError, "model must be an EncoderDecoder"),
    (lambda: denoising_loss(Decoder(20, d_model=8, n_heads=2, n_layers=1, max_len=8), _S2S_BATCH), TypeError,
     "model must be an EncoderDecoder"),
    (lambda: denoising_loss(_S2S, dict(_S2S_BATCH, labels=torch.tensor([[0, 5, 2]]))), ValueError,
     r"batch\['labels'\] must hold one row per source row \(2\)"),
    (lambda: denoising_loss(_S2S, dict(_S2S_BATCH, labels=torch.tensor([[0, 50, 7, 2], [0, 6, 8, 2]]))), ValueError,
     r"batch\['labels'\] must lie in \[-100, 20\)"),
    (lambda: denoising_loss(_S2S, dict(_S2S_BATCH, labels=torch.full((2, 4), -100))), ValueError,
     r"batch\['labels'\] must hold .*at least one not ignored"),
    (lambda: denoising_loss(_S2S, dict(_S2S_BATCH, input_ids=torch.tensor([[0, 25, 2], [0, 6, 2]]))), ValueError,
     r"batch\['input_ids'\] must lie in \[0, 20\)"),
])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_tiny_poisson_lambda_is_refused_at_once_instead_of_hanging():
    """Issue 17: poisson_lambda=1e-6 never returned (each round of draws adds ~num_to_mask * 1e-6 words)."""
    for call in (lambda: poisson_span_lengths(10, 1e-6, _g()),
                 lambda: text_infilling(_document(40), MASK, poisson_lambda=1e-6)):
        with pytest.raises(ValueError, match=r"poisson_lambda must be in \[0.01"):
            call()
    assert int(poisson_span_lengths(1, 0.01, _g(3)).sum()) == 1  # the smallest lambda accepted ends (~100 rounds)


def test_the_rounds_of_draws_are_bounded(monkeypatch):
    """Past MAX_ROUNDS rounds the draw stops with a ValueError instead of looping on."""
    monkeypatch.setattr(noising, "MAX_ROUNDS", 1)
    seed = next(s for s in range(100) if int(torch.multinomial(poisson_pmf(0.5), 1, generator=_g(s))) == 0)
    with pytest.raises(ValueError, match="1 rounds of Poisson"):
        draw_span_lengths(1, 0.5, _g(seed))  # the first round draws a 0-length span: a second round is needed


def test_each_noising_function_is_its_public_draw_then_a_transform():
    """With one seed, the public draws give exactly what the noising functions use (chapter 8's exercises)."""
    tokens = torch.tensor([0, *range(10, 30), 2])  # 20 distinct tokens between <s> and </s>
    positions = subword_positions(len(tokens), 0.25, _g(9))  # ceil(0.25 * 20) = 5 positions in 1..20
    assert len(positions) == 5 and 1 <= positions.min() and positions.max() <= 20
    assert torch.equal(positions, 1 + torch.randperm(20, generator=_g(9))[:5])
    deleted = token_deletion(tokens, ratio=0.25, generator=_g(9))
    assert set(tokens.tolist()) - set(deleted.tolist()) == set(tokens[positions].tolist())
    masked = token_masking(tokens, MASK, ratio=0.25, generator=_g(9))
    assert (masked == MASK).nonzero().squeeze(1).tolist() == sorted(positions.tolist())

    offset = rotation_offset(len(tokens), _g(9))
    assert 1 <= offset <= len(tokens) - 1 and document_rotation(tokens, generator=_g(9))[1] == tokens[offset]

    raw = draw_span_lengths(30, 3.0, _g(9))
    kept = poisson_span_lengths(30, 3.0, generator=_g(9))
    assert torch.equal(kept, cut_to_budget(raw, 30)) and int(kept.sum()) == 30 and int(raw.sum()) >= 30
    assert torch.equal(kept[:-1], raw[: len(kept) - 1]) and kept[-1] <= raw[len(kept) - 1]
    assert poisson_pmf(3.0).shape == (18,) and abs(float(poisson_pmf(3.0).sum()) - 1) < 1e-6  # k = 0..17

    document = torch.tensor([0, 10, STOP, 11, STOP, 12, 13, STOP, 14, 15, 2])  # 4 sentences, the last with no stop
    starts, ends = sentence_bounds(document, STOP)
    assert starts.tolist() == [1, 3, 5, 8] and ends.tolist() == [3, 5, 8, 10]
    sentences = [document[s:e].tolist() for s, e in zip(starts, ends)]
    order = torch.randperm(len(ends), generator=_g(9)).tolist()
    expected = [0, *(t for i in order for t in sentences[i]), 2]
    assert sentence_permutation(document, STOP, generator=_g(9)).tolist() == expected


def test_cut_to_budget_cuts_the_span_that_reaches_it_and_leaves_its_input_alone():
    lengths = torch.tensor([2, 0, 4, 3, 1])
    assert cut_to_budget(lengths, 5).tolist() == [2, 0, 3]  # 2 + 0 + 4 crosses 5: the third span is cut to 3
    assert cut_to_budget(lengths, 6).tolist() == [2, 0, 4]  # reached exactly: nothing to shorten
    assert cut_to_budget(lengths, 1).tolist() == [1]
    assert lengths.tolist() == [2, 0, 4, 3, 1]


def test_denoising_loss_is_the_cross_entropy_of_the_original_under_teacher_forcing():
    from course_utils.models import EncoderDecoder

    torch.manual_seed(0)
    model = EncoderDecoder(50, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, max_len=16).eval()
    labels = torch.tensor([[0, 7, 8, 9, 2], [0, 11, 2, -100, -100]])
    batch = {"input_ids": torch.tensor([[0, 4, 9, 2], [0, 11, 2, 1]]), "attention_mask": torch.tensor([[1, 1, 1, 1],
             [1, 1, 1, 0]]), "labels": labels}
    decoder_input_ids = torch.tensor([[2, 0, 7, 8, 9], [2, 0, 11, 2, 1]])  # decoder_start, then the labels; -100 -> pad
    assert torch.equal(shift_tokens_right(labels, 1, 2), decoder_input_ids)
    logits = model(batch["input_ids"], decoder_input_ids, batch["attention_mask"]).logits  # (2, 5, 50)
    real = labels != -100
    expected = torch.nn.functional.cross_entropy(logits[real], labels[real])
    assert torch.allclose(denoising_loss(model, batch), expected)


def test_the_old_import_path_still_works():
    from course_utils import models, objectives

    assert objectives.text_infilling is text_infilling and objectives.document_rotation is document_rotation
    assert models.shift_tokens_right is shift_tokens_right


def test_text_infilling_on_bpe_keeps_or_masks_whole_words():
    """With bpe_word_starts, the tokens that survive decode to whole words of the line, in order.

    (A 0-length span inserts its <mask> anywhere, inside a word too, as fairseq's add_insertion_noise does.)
    """
    from course_utils.data import BPE_SPECIAL_TOKENS, bpe_word_starts, load_bpe

    tok = load_bpe()
    text = "Whether 'tis nobler in the mind to suffer the slings and arrows of outrageous fortune"
    ids = torch.tensor(tok.encode(text).ids)
    assert ids[0] == BPE_SPECIAL_TOKENS.index("<s>") and ids[-1] == BPE_SPECIAL_TOKENS.index("</s>")
    mask = BPE_SPECIAL_TOKENS.index("<mask>")
    g = torch.Generator().manual_seed(9)
    for _ in range(50):
        out = text_infilling(ids, mask, mask_ratio=0.4, word_starts=bpe_word_starts(ids), generator=g)
        remaining = iter(text.split())
        kept = tok.decode(out[out != mask].tolist()).split()
        assert all(word in remaining for word in kept), kept  # a subsequence of the line's words
        assert len(kept) < len(text.split())
