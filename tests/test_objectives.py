"""Word2Vec SGNS, BERT masking and NSP pairs: the rules of SPECS.md sections 1-3."""

import random

import pytest
import torch
import torch.nn.functional as F

from course_utils.datasets import collate
from course_utils.models import Decoder, Encoder, EncoderForPreTraining
from course_utils.objectives import (
    IGNORE_INDEX, IS_NEXT, IS_RANDOM, NSPInstance, SkipGram, bert_masking, build_vocab, keep_probability, lm_loss,
    mask_tokens, mlm_nsp_loss, nsp_instances, sample_negatives, sgns_loss, skipgram_pairs, truncate_seq_pair,
)

SPECIALS = [0, 1, 2, 3, 4]  # [PAD] [UNK] [CLS] [SEP] [MASK]


def _batch(generator, B=64, L=128):
    ids = torch.randint(5, 1000, (B, L), generator=generator)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    ids[: B // 2, -20:] = 0  # padding
    return ids


def test_mask_tokens_rates():
    g = torch.Generator().manual_seed(0)
    ids = _batch(g)
    inputs, labels = mask_tokens(ids, mask_token_id=4, vocab_size=1000, special_token_ids=SPECIALS, generator=g)
    candidates = ~torch.isin(ids, torch.tensor(SPECIALS))
    selected = labels != IGNORE_INDEX
    n = selected.sum().item()
    assert abs(n / candidates.sum().item() - 0.15) < 0.01  # 15% of ~7,500 candidates
    assert not (selected & ~candidates).any()  # specials and padding never selected
    assert torch.equal(labels[selected], ids[selected])  # the label is the original token
    masked = (inputs == 4) & selected
    kept = (inputs == ids) & selected & ~masked
    assert abs(masked.sum().item() / n - 0.8) < 0.04
    assert abs(kept.sum().item() / n - 0.1) < 0.04  # randomised = the rest (~10%, a few random == original)
    assert torch.equal(inputs[~selected], ids[~selected])  # nothing else changes


def test_mask_tokens_equals_transformers_collator():
    from transformers import DataCollatorForLanguageModeling

    from course_utils.pretrained import load_minilm

    tokenizer, _ = load_minilm()
    batch = tokenizer(["To be, or not to be, that is the question.", "Now is the winter of our discontent."],
                      padding=True, return_tensors="pt")
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.4)
    torch.manual_seed(5)
    theirs = collator.torch_mask_tokens(batch["input_ids"].clone())
    torch.manual_seed(5)
    ours = mask_tokens(batch["input_ids"], mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                       special_token_ids=tokenizer.all_special_ids, mlm_probability=0.4)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    assert (ours[1] != IGNORE_INDEX).sum() > 0


def test_mask_tokens_probability_zero_is_identity():
    ids = _batch(torch.Generator().manual_seed(1), B=4, L=16)
    inputs, labels = mask_tokens(ids, mask_token_id=4, vocab_size=1000, special_token_ids=SPECIALS, mlm_probability=0)
    assert torch.equal(inputs, ids) and (labels == IGNORE_INDEX).all()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mlm_probability": 1.5}, ValueError, "mlm_probability"),
    ({"mlm_probability": -0.1}, ValueError, "mlm_probability"),
    ({"mask_token_id": 1000}, ValueError, "mask_token_id"),
    ({"special_token_ids": [0, 2, 3]}, ValueError, "include mask_token_id"),
    ({"input_ids": torch.zeros(2, 3)}, TypeError, "integer"),
    ({"input_ids": [[1, 2]]}, TypeError, "torch.Tensor"),
])
def test_mask_tokens_bad_input(kwargs, error, match):
    args = {"input_ids": torch.ones(2, 3, dtype=torch.long), "mask_token_id": 4, "vocab_size": 1000,
            "special_token_ids": SPECIALS, **kwargs}
    with pytest.raises(error, match=match):
        mask_tokens(args.pop("input_ids"), **args)


def _documents(n_docs=3, n_segments=12, seed=0):
    rng = random.Random(seed)
    return [[[1000 + 100 * d + s] * rng.randint(3, 12) for s in range(n_segments)] for d in range(n_docs)]  # token = doc, segment


def test_nsp_pairs_structure_and_labels():
    docs = _documents()
    rng = random.Random(1)
    instances = [x for d in range(len(docs)) for _ in range(20) for x in nsp_instances(
        docs, d, cls_id=2, sep_id=3, max_seq_length=32, rng=rng)]
    labels = [x.label for x in instances]
    assert 0.4 < labels.count(IS_RANDOM) / len(labels) < 0.7  # 50%, a little more (one-segment chunks)
    for x in instances:
        ids, types = x.input_ids, x.token_type_ids
        assert len(ids) <= 32 and ids[0] == 2 and ids[-1] == 3 and ids.count(3) == 2
        first_sep = ids.index(3)
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
        a, b = ids[1:first_sep], ids[first_sep + 1:-1]
        assert a and b
        if x.label == IS_NEXT:  # B continues A: same document, later segment
            assert b[0] // 100 == a[-1] // 100 and b[0] % 100 > a[-1] % 100


def test_nsp_single_document_random_b_comes_from_it():
    docs = _documents(n_docs=1)
    instances = [x for seed in range(10) for x in nsp_instances(
        docs, 0, cls_id=2, sep_id=3, max_seq_length=32, rng=random.Random(seed))]
    assert any(x.label == IS_RANDOM for x in instances)
    assert all(t // 100 == 10 for x in instances for t in x.input_ids[1:-1] if t != 3)


def test_truncate_seq_pair_trims_longer_and_b_on_ties():
    rng = random.Random(0)
    a, b = list(range(10)), list(range(4))
    truncate_seq_pair(a, b, 8, rng)
    assert (len(a), len(b)) == (4, 4)
    a, b = [1, 2, 3], [4, 5, 6]
    truncate_seq_pair(a, b, 5, rng)
    assert (len(a), len(b)) == (3, 2)


@pytest.mark.parametrize("docs, match", [([[[1, 2]], []], "documents\\[1\\]"), ([[[1], []]], "documents\\[0\\]")])
def test_nsp_bad_documents(docs, match):
    with pytest.raises(ValueError, match=match):
        nsp_instances(docs, 0, cls_id=2, sep_id=3, rng=random.Random(0))


def test_subsampling_keeps_rare_words_and_drops_frequent_ones():
    counts = torch.tensor([100_000, 1_000, 10, 1])
    keep = keep_probability(counts, sample=1e-3)  # s N = 101.011
    assert keep[0] < 0.1 and (keep[2:] >= 1).all()  # count <= s N: always kept


def test_skipgram_pairs_window_one_is_radius_one():
    sentence = torch.arange(6)
    centers, contexts = skipgram_pairs(sentence, keep=torch.ones(6), window=1)
    assert ((centers - contexts).abs() == 1).all() and len(centers) == 10


def test_skipgram_pairs_dynamic_window_radius_uniform():
    g = torch.Generator().manual_seed(0)
    sentence = torch.arange(200)
    centers, contexts = skipgram_pairs(sentence, keep=torch.ones(200), window=4, generator=g)
    assert (centers - contexts).abs().max() == 4 and (centers != contexts).all()
    # mean number of context words per interior center: 2 * E[radius] = 2 * 2.5
    assert abs(len(centers) / 200 - 5.0) < 0.5


def test_negatives_follow_unigram_075_and_skip_the_target():
    g = torch.Generator().manual_seed(0)
    counts = torch.tensor([1000, 100, 10, 1])
    targets = torch.zeros(20_000, dtype=torch.long)
    negatives, use = sample_negatives(targets, counts, k=5, generator=g)
    freq = torch.bincount(negatives.flatten(), minlength=4).double() / negatives.numel()
    expected = counts.double() ** 0.75 / (counts.double() ** 0.75).sum()
    assert torch.allclose(freq, expected, atol=0.01)
    assert torch.equal(use, negatives != 0)


def test_sgns_loss_by_hand():
    torch.manual_seed(0)
    model = SkipGram(10, 4)
    torch.nn.init.normal_(model.out.weight)
    c, w = torch.tensor([1, 2]), torch.tensor([3, 4])  # contexts, centre words
    neg = torch.tensor([[5, 3], [6, 7]])
    use = torch.tensor([[True, False], [True, True]])
    v, u = model.inp.weight, model.out.weight
    loss = 0
    for i in range(2):
        loss -= F.logsigmoid(u[w[i]] @ v[c[i]])
        loss -= sum(F.logsigmoid(-u[neg[i, k]] @ v[c[i]]) for k in range(2) if use[i, k])
    assert torch.allclose(sgns_loss(model, w, c, neg, use), loss / 2)


def test_build_vocab_min_count():
    vocab = build_vocab([["a", "b", "a"], ["c", "a", "b"]], min_count=2)
    assert vocab.itos == ["a", "b"] and vocab.counts.tolist() == [3, 2]
    with pytest.raises(ValueError, match="min_count=9"):
        build_vocab([["a"]], min_count=9)


def test_skipgram_pairs_over_several_sentences_never_cross_them():
    g = torch.Generator().manual_seed(0)
    sentences = [torch.arange(0, 7), torch.arange(100, 103), torch.arange(200, 240)]
    centers, contexts = skipgram_pairs(sentences, keep=torch.ones(300), window=5, generator=g)
    assert (centers // 100 == contexts // 100).all()  # both words of a pair come from one sentence
    assert set((centers // 100).tolist()) == {0, 1, 2}
    # one sentence given alone or in a list of one: the same draws, the same pairs
    one = skipgram_pairs(sentences[2], torch.ones(300), 5, torch.Generator().manual_seed(1))
    listed = skipgram_pairs(sentences[2:], torch.ones(300), 5, torch.Generator().manual_seed(1))
    assert torch.equal(one[0], listed[0]) and torch.equal(one[1], listed[1])


# ---------------------------------------------------------------- the losses of BERT and GPT


def test_mlm_nsp_loss_is_mlm_on_the_masked_positions_plus_nsp():
    from course_utils.datasets import collate
    from course_utils.models import Encoder, EncoderForPreTraining

    torch.manual_seed(0)
    model = EncoderForPreTraining(Encoder(60, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=16)).eval()
    batch = collate([NSPInstance([2, 9, 13, 3, 8, 21, 3], [0] * 4 + [1] * 3, IS_NEXT),
                     NSPInstance([2, 9, 3, 40, 41, 42, 43, 44, 3], [0] * 3 + [1] * 6, IS_RANDOM)])
    loss = mlm_nsp_loss(model, batch, torch.Generator().manual_seed(4))
    inputs, labels = bert_masking(batch["input_ids"], 60, torch.Generator().manual_seed(4))  # the same draws
    out = model(inputs, batch["token_type_ids"], batch["attention_mask"])
    mlm = F.cross_entropy(out.mlm_logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
    nsp = F.cross_entropy(out.nsp_logits, batch["next_sentence_label"])
    assert torch.allclose(loss, mlm + nsp, atol=1e-6)
    assert not torch.isin(labels[labels != IGNORE_INDEX], torch.tensor(SPECIALS)).any()  # [CLS], [SEP] never chosen


def test_lm_loss_is_the_mean_next_token_cross_entropy():
    from course_utils.models import Decoder

    torch.manual_seed(0)
    model = Decoder(30, d_model=16, n_heads=2, n_layers=1, max_len=8).eval()
    batch = torch.randint(30, (3, 9))
    logits = model(batch[:, :-1]).logits  # (3, 8, 30)
    expected = -logits.log_softmax(-1).gather(-1, batch[:, 1:, None]).mean()
    assert torch.allclose(lm_loss(model, batch), expected, atol=1e-6)


def test_the_old_import_path_of_the_losses_still_works():
    from course_utils import pretrain

    assert pretrain.lm_loss is lm_loss and pretrain.mlm_nsp_loss is mlm_nsp_loss


# ---------------------------------------------------------------- bad input


_IDS = torch.ones(2, 3, dtype=torch.long)
_GPT = Decoder(20, d_model=8, n_heads=2, n_layers=1, max_len=8)
_BERT = EncoderForPreTraining(Encoder(20, d_model=8, n_heads=2, n_layers=1, max_len=8))
_NSP_BATCH = collate([NSPInstance([2, 5, 6, 3, 7, 8, 3], [0, 0, 0, 0, 1, 1, 1], 0),
                      NSPInstance([2, 9, 3, 10, 3], [0, 0, 0, 1, 1], 1)])


@pytest.mark.parametrize("call, error, match", [
    (lambda: build_vocab("to be or not", 1), TypeError, "sentences must be a list of sentences"),
    (lambda: build_vocab(["to", "be"], 1), TypeError, r"sentences\[0\] must be a list of words"),
    (lambda: build_vocab([["to", 2]], 1), TypeError, r"sentences\[0\] must be a list of words"),
    (lambda: build_vocab([["a"]], min_count=0), ValueError, "min_count must be >= 1"),
    (lambda: keep_probability([1, 2]), TypeError, "counts must be a torch.Tensor"),
    (lambda: keep_probability(torch.tensor([3, -1])), ValueError, "counts must be >= 0"),
    (lambda: keep_probability(torch.tensor([3, 1]), sample=0), ValueError, "sample must be a finite number"),
    (lambda: skipgram_pairs(torch.tensor([0, 5]), torch.ones(3)), ValueError,
     r"sentences\[0\] must lie in \[0, 3\)"),
    (lambda: skipgram_pairs(torch.tensor([0.0, 1.0]), torch.ones(3)), TypeError, r"sentences\[0\] must be an integer"),
    (lambda: skipgram_pairs(torch.tensor([0, 1]), torch.ones(3), window=0), ValueError, "window must be >= 1"),
    (lambda: skipgram_pairs(torch.tensor([0, 1]), torch.ones(3, dtype=torch.long)), TypeError, "keep must be a floating"),
    (lambda: sample_negatives(torch.tensor([0]), torch.zeros(4)), ValueError, "counts must hold at least one positive"),
    (lambda: sample_negatives(torch.tensor([0]), torch.ones(4), k=0), ValueError, "k must be >= 1"),
    (lambda: sample_negatives(torch.tensor([0.5]), torch.ones(4)), TypeError, "targets must be an integer tensor"),
    (lambda: SkipGram(0), ValueError, "vocab_size must be >= 1"),
    (lambda: SkipGram(5, 4)(torch.tensor([5]), torch.tensor([1])), ValueError, r"words must lie in \[0, 5\)"),
    (lambda: SkipGram(5, 4)(torch.tensor([1, 2]), torch.tensor([1])), ValueError,
     "words and contexts must have the same"),
    (lambda: sgns_loss(torch.nn.Linear(2, 2), _IDS[0], _IDS[0], _IDS, _IDS.bool()), TypeError,
     "model must be a SkipGram"),
    (lambda: sgns_loss(SkipGram(5, 4), _IDS[0], _IDS[0], _IDS[:1], _IDS.bool()), ValueError, "negatives and use"),
    (lambda: mask_tokens(torch.tensor([[2, 7, 1000]]), mask_token_id=4, vocab_size=1000, special_token_ids=SPECIALS),
     ValueError, r"input_ids must lie in \[0, 1000\)"),
    (lambda: mask_tokens(_IDS, mask_token_id=4, vocab_size=0, special_token_ids=SPECIALS), ValueError, "vocab_size"),
    (lambda: mask_tokens(_IDS, mask_token_id=4.0, vocab_size=10, special_token_ids=SPECIALS), TypeError,
     "mask_token_id must be an int"),
    (lambda: truncate_seq_pair([1, 2], [3], -1, random.Random(0)), ValueError, "max_num_tokens must be >= 0"),
    (lambda: truncate_seq_pair((1, 2), [3], 2, random.Random(0)), TypeError, "a must be a list"),
    (lambda: truncate_seq_pair([1, 2], [3], 2, 0), TypeError, "rng must be a random.Random"),
    (lambda: nsp_instances([[[1]]], 1, cls_id=2, sep_id=3, rng=random.Random(0)), ValueError, "doc_index must lie"),
    (lambda: nsp_instances([[[1]]], 0, cls_id=2, sep_id=3, max_seq_length=4, rng=random.Random(0)), ValueError,
     "max_seq_length must be >= 5"),
    (lambda: nsp_instances([[[1]]], 0, cls_id=2, sep_id=3, rng=None), TypeError, "rng must be a random.Random"),
    (lambda: nsp_instances([[[1]]], 0, cls_id=-2, sep_id=3, rng=random.Random(0)), ValueError, "cls_id must be >= 0"),
    (lambda: mlm_nsp_loss(None, {"input_ids": _IDS}), ValueError, r"batch must hold .*missing \['attention_mask'"),
    (lambda: lm_loss(_GPT, torch.ones(2, 1, dtype=torch.long)), ValueError, "batch must hold windows of at least 2"),
    (lambda: lm_loss(_GPT, torch.ones(2, 5)), TypeError, "batch must be an integer tensor"),
    # issue 17, second audit
    (lambda: build_vocab([], 1), ValueError, "sentences must hold a word that occurs at least min_count=1"),
    (lambda: keep_probability(torch.zeros(3)), ValueError, "counts must hold at least one positive count"),
    (lambda: keep_probability(torch.tensor([1.0, float("nan")])), ValueError, "counts must hold finite values"),
    (lambda: skipgram_pairs(torch.tensor([0, 1]), torch.ones(3), window=10**9), ValueError, "window must be <= 10000"),
    (lambda: skipgram_pairs(torch.tensor([0, 1]), torch.tensor([1.0, -0.5, 1.0])), ValueError,
     "keep must hold probabilities >= 0"),
    (lambda: skipgram_pairs(torch.tensor([0, 1]), torch.ones(3), generator="g"), TypeError,
     "generator must be a torch.Generator"),
    (lambda: skipgram_pairs(5, torch.ones(3)), TypeError, "sentences must be a 1-D tensor of ids or a list"),
    (lambda: sample_negatives(torch.tensor([9]), torch.ones(4)), ValueError, r"targets must lie in \[0, 4\)"),
    (lambda: sample_negatives(torch.tensor([1]), torch.tensor([0, 5, 3]), power=-0.75), ValueError,
     "power must be >= 0 when counts hold a zero"),
    (lambda: sample_negatives(torch.tensor([1]), torch.ones(4), k=10**9), ValueError, "k must be <= 1000"),
    (lambda: sample_negatives(torch.tensor([1]), torch.ones(4), generator="g"), TypeError, "generator must be a"),
    (lambda: SkipGram(10**9), ValueError, "vocab_size must be <= 1048576"),
    (lambda: sgns_loss(SkipGram(5, 4), _IDS[0], _IDS[0], _IDS + 40, _IDS.bool()), ValueError,
     r"negatives must lie in \[0, 5\)"),
    (lambda: sgns_loss(SkipGram(5, 4), _IDS[0] + 40, _IDS[0], _IDS, _IDS.bool()), ValueError,
     r"centers must lie in \[0, 5\)"),
    (lambda: mask_tokens(_IDS, mask_token_id=4, vocab_size=10, special_token_ids=None), TypeError,
     "special_token_ids must be a list of ints"),
    (lambda: mask_tokens(_IDS, mask_token_id=4, vocab_size=10, special_token_ids=[4, 2.5]), TypeError,
     r"special_token_ids\[1\] must be an int"),
    (lambda: mask_tokens(_IDS, mask_token_id=4, vocab_size=10, special_token_ids=[4, 50]), ValueError,
     r"special_token_ids\[1\] must be <= 9, got 50"),
    (lambda: mask_tokens(_IDS, mask_token_id=4, vocab_size=10, special_token_ids=SPECIALS, generator="g"), TypeError,
     "generator must be a torch.Generator"),
    (lambda: nsp_instances("abc", 0, cls_id=2, sep_id=3, rng=random.Random(0)), TypeError,
     "documents must be a list of documents"),
    (lambda: nsp_instances([[[5.5, 6]], [[7]]], 0, cls_id=2, sep_id=3, rng=random.Random(0)), TypeError,
     r"documents\[0\] must be a list of segments \(lists of int token ids >= 0\)"),
    (lambda: mlm_nsp_loss("x", _NSP_BATCH), TypeError, "model must be an EncoderForPreTraining"),
    (lambda: mlm_nsp_loss(_BERT, dict(_NSP_BATCH, next_sentence_label=torch.tensor([0, 5]))), ValueError,
     r"batch\['next_sentence_label'\] must lie in \[0, 2\)"),
    (lambda: mlm_nsp_loss(_BERT, dict(_NSP_BATCH, next_sentence_label=torch.tensor([0, 1, 1]))), ValueError,
     r"batch\['next_sentence_label'\] must hold one label per row"),
    (lambda: mlm_nsp_loss(_BERT, dict(_NSP_BATCH, token_type_ids=torch.zeros(1, 7, dtype=torch.long))), ValueError,
     r"batch\['token_type_ids'\] must have the shape \(2, 7\)"),
    (lambda: mlm_nsp_loss(_BERT, dict(_NSP_BATCH, input_ids=_NSP_BATCH["input_ids"] + 30)), ValueError,
     r"batch\['input_ids'\] must lie in \[0, 20\)"),
    (lambda: lm_loss(_BERT.encoder, _IDS), TypeError, "model must be a language model"),
    (lambda: lm_loss(_GPT, torch.tensor([[1, 2, 30]])), ValueError, r"batch must lie in \[0, 20\)"),
    (lambda: lm_loss(_GPT, torch.ones(1, 10, dtype=torch.long)), ValueError, r"at most max_len \+ 1 = 9 tokens"),
])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_valid_edge_cases_of_the_second_audit():
    """Issue 17: no sentences -> two empty long tensors; a batch with no token drawn for MLM -> the NSP loss alone."""
    centers, contexts = skipgram_pairs([], torch.ones(3))
    assert centers.dtype == contexts.dtype == torch.long and centers.numel() == contexts.numel() == 0
    centers, _ = skipgram_pairs(torch.arange(6), torch.ones(6), 10_000, torch.Generator().manual_seed(0))
    assert len(centers) == 30  # a radius beyond the sentence: every pair of it, at once
    torch.manual_seed(0)
    one_row = collate([NSPInstance([2, 9, 3, 10, 3], [0, 0, 0, 1, 1], 1)])
    _BERT.eval()
    loss = mlm_nsp_loss(_BERT, one_row, torch.Generator().manual_seed(1))  # seed 1: no token selected
    out = _BERT.encoder(one_row["input_ids"], one_row["token_type_ids"], one_row["attention_mask"])
    nsp = F.cross_entropy(_BERT.nsp(_BERT.pooler(out.last_hidden_state)), one_row["next_sentence_label"])
    assert torch.isfinite(loss) and torch.equal(loss, nsp)
