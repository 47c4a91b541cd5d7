"""Checks for the exercises of chapter 03 (Word2Vec and BERT's masked language modelling): the skip-gram
negative-sampling loss from the vectors, word2vec.c's subsampling given the random draws, BERT's 80/10/10
corruption given the random draws, and the MLM loss over the selected positions.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..objectives import IGNORE_INDEX, SkipGram, keep_probability, sgns_loss
from . import compare, gen, loaded, randn

SELECT_P, MASK_P, RANDOM_P = 0.15, 0.8, 0.1  # BERT: 15% selected; of those 80% [MASK], 10% random, 10% unchanged

# ------------------------------------------------------------------ exercise 1: the SGNS loss


def sgns_reference(v_w: torch.Tensor, u_pos: torch.Tensor, u_neg: torch.Tensor, use: torch.Tensor) -> torch.Tensor:
    """course_utils' sgns_loss on a SkipGram whose tables hold the given vectors.

    Input table: the N rows of v_w; output table: the N rows of u_pos, then the N * K rows of u_neg.
    """
    n, k, d = u_neg.shape
    model = loaded(lambda: SkipGram(n + n * k, d), {"inp.weight": torch.cat([v_w, v_w.new_zeros(n * k, d)]),
                                                     "out.weight": torch.cat([u_pos, u_neg.reshape(n * k, d)])})
    words = torch.arange(n)
    return sgns_loss(model, words, words, n + torch.arange(n * k).view(n, k), use)  # negatives (N, K)


def check_sgns_loss(fn: Callable) -> bool:
    """fn(v_w, u_pos, u_neg, use) = mean over the N pairs of
    -log sigma(u_pos . v_w) - sum_k use_k log sigma(-u_neg_k . v_w).

    v_w (N, d) input vectors, u_pos (N, d) and u_neg (N, K, d) output vectors, use (N, K) bool (False = a skipped
    negative). Reference: course_utils.objectives.sgns_loss.
    """

    def case(n: int, k: int, d: int, seed: int, scale: float = 1.0, skip: float = 0.2, dtype=torch.float64):
        use = torch.rand(n, k, generator=gen(seed + 3)) >= skip
        v_w = randn(n, d, seed=seed, scale=scale, dtype=dtype)
        u_pos = randn(n, d, seed=seed + 1, scale=scale, dtype=dtype)
        return v_w, u_pos, randn(n, k, d, seed=seed + 2, scale=scale, dtype=dtype), use

    cases = [
        case(1, 5, 8, seed=10, skip=0.0),  # one pair, K = 5 (word2vec.c's default), nothing skipped
        case(16, 5, 10, seed=20),  # some negatives skipped
        case(7, 2, 4, seed=30, dtype=torch.float32),
        case(9, 3, 6, seed=40, skip=1.0),  # every negative skipped: only the positive term is left
        case(12, 5, 8, seed=50, scale=20.0),  # dot products beyond -745: log(sigmoid(.)) underflows to -inf
    ]
    return compare("SGNS loss", fn, sgns_reference, cases)


# ------------------------------------------------------------------ exercise 2: subsampling


def subsample_reference(sentence: torch.Tensor, counts: torch.Tensor, sample: float, u: torch.Tensor) -> torch.Tensor:
    """word2vec.c's subsampling with the draws u given: keep an occurrence of w when P_keep(w) >= u."""
    return sentence[keep_probability(counts, sample)[sentence] >= u]


def check_subsample(fn: Callable) -> bool:
    """fn(sentence, counts, sample, u) = the ids of `sentence` (n,) kept by word2vec.c's subsampling, in order.

    counts (V,) are the vocabulary's counts, sample is s, u (n,) one uniform draw per occurrence; an occurrence of
    w is kept when sqrt(s / z_w) + s / z_w >= u with z_w = counts[w] / counts.sum(). Reference: keep_probability.
    """

    def case(vocab_size: int, n: int, sample: float, seed: int, total: int = 20_000):
        g = gen(seed)
        zipf = 1.0 / torch.arange(1, vocab_size + 1, dtype=torch.float64)  # a Zipf law, like real text
        counts = (total * zipf / zipf.sum()).round().long().clamp(min=1)
        sentence = torch.multinomial(counts.double(), n, replacement=True, generator=g)  # frequent words show up
        return sentence, counts, sample, torch.rand(n, generator=g, dtype=torch.float64)

    cases = [
        case(50, 40, 1e-3, seed=10),
        case(200, 100, 1e-2, seed=20),  # a higher threshold: more words always kept
        case(30, 60, 1e-4, seed=30),  # a low threshold: frequent words mostly dropped
        case(20, 25, 0.5, seed=40),  # s N above every count: nothing is dropped
        case(1000, 300, 1e-3, seed=50, total=200_000),
    ]
    return compare("subsampling", fn, subsample_reference, cases, atol=0, forbidden=("keep_probability",))


# ------------------------------------------------------------------ exercise 3: BERT's corruption


def corrupt_reference(
    input_ids: torch.Tensor, special_ids: Sequence[int], mask_id: int,
    u_select: torch.Tensor, u_action: torch.Tensor, random_ids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's MLM corruption with the draws given (as mask_tokens, but deterministic): returns (inputs, labels).

    Selected: u_select < 0.15 and not a special token. A selected token becomes mask_id if u_action < 0.8, the
    random id at its position if 0.8 <= u_action < 0.9, and stays otherwise. labels: the original id where
    selected, -100 elsewhere.
    """
    special = torch.isin(input_ids, torch.as_tensor(list(special_ids), dtype=input_ids.dtype))
    selected = (u_select < SELECT_P) & ~special
    to_mask = selected & (u_action < MASK_P)
    to_random = selected & (u_action >= MASK_P) & (u_action < MASK_P + RANDOM_P)
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return inputs, labels


def check_corrupt(fn: Callable) -> bool:
    """fn(input_ids, special_ids, mask_id, u_select, u_action, random_ids) = (inputs, labels), both (B, L).

    See corrupt_reference for the rule. The cases have [CLS] (2) first, [SEP] (3) last and [PAD] (0) after it,
    with [MASK] = 4 and specials (0, 1, 2, 3, 4), like the course's WordPiece tokenizer.
    """
    specials = [0, 1, 2, 3, 4]

    def case(batch: int, length: int, vocab_size: int, seed: int, select_all: bool = False):
        g = gen(seed)
        ids = torch.randint(5, vocab_size, (batch, length), generator=g)
        lengths = torch.randint(3, length + 1, (batch,), generator=g)
        lengths[0] = length  # one full row
        for row, n in enumerate(lengths.tolist()):
            ids[row, 0], ids[row, n - 1] = 2, 3  # [CLS] ... [SEP]
            ids[row, n:] = 0  # [PAD]
        u_select = torch.rand(batch, length, generator=g) * (0.15 if select_all else 1.0)
        u_action = torch.rand(batch, length, generator=g)
        random_ids = torch.randint(vocab_size, (batch, length), generator=g)  # may be special: as transformers does
        return ids, specials, 4, u_select, u_action, random_ids

    cases = [
        case(4, 16, 30, seed=10),
        case(8, 32, 100, seed=20),
        case(2, 12, 20, seed=30, select_all=True),  # every non-special token selected: specials must stay out
        case(16, 64, 8000, seed=40),
        case(1, 5, 10, seed=50, select_all=True),
    ]
    return compare("BERT corruption (80/10/10)", fn, corrupt_reference, cases, atol=0)


# ------------------------------------------------------------------ exercise 4: the MLM loss


def mlm_loss_reference(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of -log softmax(logits)[label] over the positions whose label is not -100 (F.cross_entropy)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def check_mlm_loss(fn: Callable) -> bool:
    """fn(logits, labels) = the MLM loss, the mean over the selected positions (labels != -100) of
    -log P(label | x~), for logits (B, L, V) and labels (B, L). Reference: F.cross_entropy(ignore_index=-100).
    """

    def case(batch: int, length: int, vocab_size: int, seed: int, scale: float = 1.0, p: float = 0.15,
             dtype=torch.float64, empty_row: bool = False):
        g = gen(seed)
        logits = scale * torch.randn(batch, length, vocab_size, generator=g, dtype=dtype)
        targets = torch.randint(vocab_size, (batch, length), generator=g)
        selected = torch.rand(batch, length, generator=g) < p
        selected[0, 0] = True  # at least one selected position
        if empty_row:
            selected[-1] = False  # a row with nothing selected (e.g. a padded sequence)
        return logits, torch.where(selected, targets, torch.full_like(targets, IGNORE_INDEX))

    cases = [
        case(2, 8, 11, seed=10),
        case(4, 16, 50, seed=20, empty_row=True),
        case(3, 10, 30, seed=30, p=1.0),  # every position selected
        case(2, 12, 40, seed=40, dtype=torch.float32),
        case(2, 8, 20, seed=50, scale=1000.0),  # large logits: softmax(...).log() gives -inf
    ]
    return compare("MLM loss", fn, mlm_loss_reference, cases,
                   forbidden=("cross_entropy", "nll_loss", "CrossEntropyLoss", "NLLLoss"))
