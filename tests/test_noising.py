"""BART's noising functions: the rules of fairseq's DenoisingDataset (SPECS.md section 4), checked by statistics."""

import math

import pytest
import torch

from course_utils.objectives import (
    document_rotation, poisson_span_lengths, sentence_permutation, text_infilling, token_deletion, token_masking,
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


def test_bad_input_raises():
    document = _document(5)
    with pytest.raises(TypeError, match="tokens must be a torch.Tensor"):
        token_deletion([0, 5, 2])
    with pytest.raises(TypeError, match="tokens must be a LongTensor"):
        document_rotation(document.float())
    with pytest.raises(ValueError, match="tokens must have 1 dimensions"):
        token_masking(document[None], MASK)
    with pytest.raises(ValueError, match="length >= 2"):
        document_rotation(document[:1])
    with pytest.raises(ValueError, match=r"ratio must be a number in \[0, 1\], got 1.5"):
        token_masking(document, MASK, ratio=1.5)
    with pytest.raises(ValueError, match="mask_ratio must be a number"):
        text_infilling(document, MASK, mask_ratio=-0.1)
    with pytest.raises(ValueError, match="poisson_lambda must be a finite number > 0, got 0"):
        text_infilling(document, MASK, poisson_lambda=0)
    with pytest.raises(ValueError, match="poisson_lambda must be at most"):
        text_infilling(document, MASK, poisson_lambda=20.0)
    with pytest.raises(TypeError, match="mask_token_id must be an int, got 4.0"):
        text_infilling(document, 4.0)
    with pytest.raises(TypeError, match="full_stop_id must be an int"):
        sentence_permutation(document, None)
    with pytest.raises(ValueError, match=r"word_starts must have the shape of tokens \(7,\), got \(6,\)"):
        text_infilling(document, MASK, word_starts=torch.ones(6, dtype=torch.bool))
    with pytest.raises(TypeError, match="word_starts must be a bool tensor"):
        text_infilling(document, MASK, word_starts=torch.ones(7))
    with pytest.raises(ValueError, match="num_to_mask must be >= 1"):
        poisson_span_lengths(0, 3.0)


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
