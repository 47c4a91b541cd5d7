"""Checks for the exercises of chapter 05 (fine-tuning, figure 8): the classifier head on [CLS], the parameters
dropped and added when the pre-training heads are swapped for it, and a label sample balanced over the classes.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Callable

import torch

from .._validate import check_int
from ..models import Encoder, EncoderForClassification, EncoderForPreTraining, Pooler
from . import Mistake, call, check_callable, check_outputs, compare, loaded, randn, run


def check_classifier_head(fn: Callable) -> bool:
    """fn(h, W_pool, b_pool, W_cls, b_cls) = class logits (B, n_labels) from the last hidden states h (B, L, d).

    BERT's head of figure 8: take the [CLS] vector h[:, 0], pool it with tanh(W_pool h_CLS + b_pool), then apply
    the classifier W_cls (n_labels, d), b_cls (n_labels,). Reference: course_utils' Pooler and an nn.Linear.
    """
    def reference(h, W_pool, b_pool, W_cls, b_cls):
        d, n_labels = h.shape[-1], W_cls.shape[0]
        state = {"0.dense.weight": W_pool, "0.dense.bias": b_pool, "1.weight": W_cls, "1.bias": b_cls}
        return loaded(lambda: torch.nn.Sequential(Pooler(d), torch.nn.Linear(d, n_labels)), state)(h)

    def case(B: int, L: int, d: int, n_labels: int, seed: int):
        return (randn(B, L, d, seed=seed), randn(d, d, seed=seed + 1, scale=d**-0.5),
                randn(d, seed=seed + 2, scale=0.5), randn(n_labels, d, seed=seed + 3),
                randn(n_labels, seed=seed + 4, scale=0.1))

    cases = [
        case(2, 5, 8, 6, seed=10),  # six genres
        case(3, 7, 16, 2, seed=20),  # two labels (NSP-sized)
        case(1, 1, 4, 3, seed=30),  # a single token: [CLS] only
        case(4, 9, 12, 6, seed=40),  # n_labels != d: the classifier must not be transposed
    ]
    return compare("classifier head on [CLS]", fn, reference, cases)


def switch_counts(vocab_size: int, d_model: int, n_labels: int) -> tuple[int, int]:
    """The reference for check_switch_counts: (dropped, new) parameters, counted on models built on the meta device."""
    for name, value in (("vocab_size", vocab_size), ("d_model", d_model), ("n_labels", n_labels)):
        check_int(name, value, 1)
    with torch.device("meta"):  # shapes only: no memory, no random initialisation
        encoder = Encoder(vocab_size, d_model=d_model, n_heads=1, n_layers=1, d_ff=4 * d_model, max_len=8)
        pretraining = EncoderForPreTraining(encoder)
        classification = EncoderForClassification(encoder, n_labels)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())  # a tied matrix is counted once

    reused = count(encoder) + count(pretraining.pooler)
    return count(pretraining) - reused, count(classification) - reused


def check_switch_counts(fn: Callable) -> bool:
    """fn(vocab_size, d_model, n_labels) = (dropped, new) when a BERT's pre-training heads give way to a classifier.

    The encoder and the pooler are kept. Dropped: the MLM head (a dense layer, a LayerNorm with gain and bias, a
    bias per vocabulary entry; its output matrix is tied to the token embeddings, which stay) and the NSP layer
    (d_model -> 2, with bias). New: the classifier (d_model -> n_labels, with bias). Two whole numbers.
    """
    cases = [
        (8000, 128, 6),  # the course's tiny BERT and the six genres
        (100, 16, 2),
        (30522, 384, 6),  # MiniLM's sizes
        (30522, 768, 3),  # bert-base on MNLI's three labels
    ]
    return compare("parameters dropped and new", fn, switch_counts, cases, atol=0)


def _balanced_cases() -> list[tuple[list[int], int]]:
    rng = random.Random(5)
    genres = [g for g, size in enumerate((40, 10, 25, 12, 8, 30)) for _ in range(size)]  # unbalanced, like the plays
    rng.shuffle(genres)
    gaps = [label for label in (0, 2, 5) for _ in range(7)]  # labels need not be 0..k-1
    rng.shuffle(gaps)
    return [
        ([0] * 10 + [1] * 10 + [2] * 10, 9),  # 3 per class
        (genres, 32),  # 32 = 6 x 5 + 2: two classes get one more
        (genres, 6),  # one per class
        (genres, 1),
        (gaps, 20),  # 7 + 7 + 6
        ([1, 0] * 4, 8),  # everything
    ]


def check_balanced_sample(fn: Callable) -> bool:
    """fn(labels, n, seed) = n distinct indices into labels, as balanced as possible over the classes, seeded.

    Balanced: the number of picks of any two classes present in labels differs by at most one. Seeded: the same
    seed gives the same indices, different seeds (almost always) different ones. The cases give every class enough
    examples; the labels must not be changed.
    """
    check_callable(fn)

    def one_case(labels: list[int], n: int):
        def picks(seed: int) -> list[int]:
            mine = list(labels)
            got = call(fn, mine, n, seed)
            check_outputs(got, torch.zeros(n, dtype=torch.long), lists=True)  # n integer indices
            got = torch.as_tensor(got).tolist()
            if mine != labels:
                raise Mistake("your function modified the labels")
            if not all(0 <= j < len(labels) for j in got):
                raise Mistake(f"indices must lie in [0, {len(labels)}), got {got!r:.80}")
            if len(set(got)) != n:
                raise Mistake(f"expected {n} distinct indices, got {got!r:.80}")
            return got

        first = [picks(seed) for seed in range(4)]
        for seed, got in enumerate(first):
            counts = Counter(labels[j] for j in got)
            per_class = [counts.get(c, 0) for c in sorted(set(labels))]
            if max(per_class) - min(per_class) > 1:
                raise Mistake(f"with seed {seed}, the picks per class {per_class} differ by more than one")
        if picks(0) != first[0]:
            raise Mistake("the same seed gave different indices")
        if n < len(labels) and len({tuple(sorted(p)) for p in first}) == 1:
            raise Mistake("seeds 0-3 all picked the same examples")

    return run("balanced sample", _balanced_cases(), one_case, ("labels", "n"))
