"""Perplexity and its bigram baseline, edit distance and LCS, the confusion matrix, entropy."""

import math

import pytest
import torch

from course_utils import set_seed
from course_utils.metrics import (
    bigram_perplexity, common_subsequence, confusion_matrix, edit_distance, entropy, perplexity,
)
from course_utils.models import Decoder, Encoder


@pytest.fixture(scope="module")
def toy_lm():
    set_seed(0)
    return Decoder(50, d_model=16, n_heads=2, n_layers=1, max_len=8).eval()


def test_edit_distance():
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 4, 3], [1, 2, 3]) == 1  # a substitution
    assert edit_distance([1, 3], [1, 2, 3]) == 1  # an insertion
    assert edit_distance([], [1, 2]) == 2 and edit_distance([5, 6], []) == 2
    assert edit_distance([1, 2, 3, 4], [2, 3, 4, 1]) == 2


def test_common_subsequence():
    assert common_subsequence([1, 2, 3, 4], [2, 4, 5]) == 2
    assert common_subsequence([], [1]) == 0 and common_subsequence([7, 7], [7]) == 1


def test_bigram_perplexity_is_exact_on_a_toy_stream():
    train = torch.tensor([0, 1, 0, 1, 0, 2])
    held_out = torch.tensor([0, 1, 2])
    unigram = torch.tensor([3 + 1, 2 + 1, 1 + 1, 0 + 1]) / (6 + 4)
    p01 = 0.5 * (2 / 3) + 0.5 * unigram[1]  # c(0, 1) = 2, c(0) = 3
    p12 = 0.5 * 0 + 0.5 * unigram[2]  # c(1, 2) = 0 although 1 was seen as a context: only the unigram part
    expected = torch.exp(-(torch.log(p01) + torch.log(p12)) / 2).item()
    assert bigram_perplexity(train, held_out, 4, lam=0.5) == pytest.approx(expected, rel=1e-6)
    assert bigram_perplexity(train, held_out, 4, lam=0) == pytest.approx(1 / math.sqrt(unigram[1] * unigram[2]))


def test_perplexity_is_exp_of_the_mean_next_token_loss(toy_lm):
    stream = torch.randint(50, (8 * 5 + 1,), generator=torch.Generator().manual_seed(1))
    windows = stream.unfold(0, 9, 8)
    loss = torch.nn.functional.cross_entropy(toy_lm(windows[:, :-1]).logits.flatten(0, 1), windows[:, 1:].flatten())
    assert perplexity(toy_lm, stream) == pytest.approx(loss.exp().item(), rel=1e-5)
    windows = stream.unfold(0, 5, 4)  # block_size 4: 10 windows
    loss = torch.nn.functional.cross_entropy(toy_lm(windows[:, :-1]).logits.flatten(0, 1), windows[:, 1:].flatten())
    assert perplexity(toy_lm, stream, block_size=4) == pytest.approx(loss.exp().item(), rel=1e-5)


def test_confusion_matrix_rows_are_true_classes():
    confusion = confusion_matrix(torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 2, 0, 2]), 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_entropy():
    assert entropy(torch.full((8,), 1 / 8)) == pytest.approx(math.log(8))
    assert entropy(torch.tensor([0.0, 1.0, 0.0])) == 0.0  # 0 log 0 = 0


def test_the_old_import_paths_still_work():
    from course_utils import finetune, pretrain

    assert pretrain.perplexity is perplexity and pretrain.edit_distance is edit_distance
    assert finetune.confusion_matrix is confusion_matrix


_LONG = torch.tensor([0, 1, 0, 1, 0, 2])


@pytest.mark.parametrize("call, error, match", [
    (lambda m: perplexity(m, torch.arange(20), block_size=0), ValueError, "block_size must be >= 1, got 0"),
    (lambda m: perplexity(m, torch.arange(20), block_size=9), ValueError, "block_size must be <= 8, got 9"),
    (lambda m: perplexity(m, torch.arange(5)), ValueError, "stream must hold at least block_size \\+ 1 = 9 tokens"),
    (lambda m: perplexity(m, torch.arange(40, 60)), ValueError, r"stream must lie in \[0, 50\)"),
    (lambda m: perplexity(m, torch.rand(20)), TypeError, "stream must be an integer tensor"),
    (lambda m: perplexity(torch.nn.Linear(2, 2), torch.arange(20)), TypeError, "model must be a causal language"),
    (lambda m: bigram_perplexity(_LONG, _LONG, 4, lam=1.5), ValueError, r"lam must lie in \[0, 1\], got 1.5"),
    (lambda m: bigram_perplexity(_LONG, _LONG, 4, lam=-0.1), ValueError, "lam must lie in"),
    (lambda m: bigram_perplexity(_LONG, torch.tensor([], dtype=torch.long), 4, 0.5), ValueError,
     "held_out must hold at least 2 tokens"),
    (lambda m: bigram_perplexity(_LONG, torch.tensor([1]), 4, 0.5), ValueError, "held_out must hold at least 2"),
    (lambda m: bigram_perplexity(_LONG, _LONG, 2, 0.5), ValueError, r"train must lie in \[0, 2\)"),
    (lambda m: bigram_perplexity(_LONG, torch.tensor([0, 7]), 4, 0.5), ValueError, r"held_out must lie in \[0, 4\)"),
    (lambda m: bigram_perplexity(_LONG, _LONG, 0, 0.5), ValueError, "vocab_size must be >= 1"),
    (lambda m: edit_distance(torch.tensor([1, 2]), [1]), TypeError, "a must be a list of tokens"),
    (lambda m: common_subsequence([1], 5), TypeError, "b must be a list of tokens"),
    (lambda m: confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), 3), ValueError,
     r"predictions must lie in \[0, 3\)"),
    (lambda m: confusion_matrix(torch.tensor([0, -1]), torch.tensor([0, 1]), 3), ValueError, "labels must lie in"),
    (lambda m: confusion_matrix(torch.zeros(3), torch.zeros(3, dtype=torch.long), 3), TypeError, "labels"),
    (lambda m: confusion_matrix(torch.zeros(3, dtype=torch.long), torch.zeros(2, dtype=torch.long), 3), ValueError,
     "same shape"),
    (lambda m: confusion_matrix(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long), 0), ValueError,
     "n_labels must be >= 1"),
    (lambda m: entropy(torch.tensor([0.5, float("nan")])), ValueError, "probs must hold finite values"),
    (lambda m: entropy(torch.tensor([1, 0])), TypeError, "probs must be a floating-point tensor"),
    # issue 17, second audit
    (lambda m: entropy(torch.tensor([-0.5, 1.5])), ValueError, r"probs must be a distribution .*minimum -0.5"),
    (lambda m: entropy(torch.tensor([0.9, 0.9])), ValueError, r"probs must be a distribution .*sum 1.8"),
    (lambda m: entropy(torch.tensor([])), ValueError, "probs must be a distribution .*got 0 entries"),
    (lambda m: perplexity(Encoder(50, d_model=16, n_heads=2, n_layers=1, max_len=8), torch.arange(20)), TypeError,
     "model must be a causal language model"),
    (lambda m: bigram_perplexity(_LONG, _LONG, 10**9, 0.5), ValueError, "vocab_size must be <= 1048576"),
    (lambda m: confusion_matrix(torch.tensor([0]), torch.tensor([0]), 10**9), ValueError, "n_labels must be <= 4096"),
])
def test_bad_input_raises(toy_lm, call, error, match):
    with pytest.raises(error, match=match):
        call(toy_lm)
