"""Checks for the exercises of chapter 05 (fine-tuning, figure 8): the classifier head on [CLS], the parameters
dropped and added when the pre-training heads are swapped for it, and the learning-rate split of fine-tuning (a new
head trained fast, the pre-trained encoder gently or not at all).
"""

from __future__ import annotations

from typing import Callable

import torch

from .._validate import check_int
from ..models import Encoder, EncoderForClassification, EncoderForPreTraining, Pooler
from . import Mistake, call, check_callable, compare, loaded, randn, run


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
        (8000, 128, 2),  # the course's tiny BERT and the two labels of the chapter
        (100, 16, 2),
        (30522, 384, 6),  # MiniLM's sizes, six labels
        (30522, 768, 3),  # bert-base on MNLI's three labels
    ]
    return compare("parameters dropped and new", fn, switch_counts, cases, atol=0)


def check_param_groups(fn: Callable) -> bool:
    """fn(model, lr, encoder_lr) = AdamW's parameter groups: the new classifier at lr, the pre-trained rest at encoder_lr.

    Two dicts {"params": [...], "lr": ...}: model.classifier's parameters in one, every other parameter (the
    encoder and the pooler, pre-trained) in the other, each parameter exactly once. encoder_lr=0 freezes the
    encoder: AdamW then moves the classifier only, a linear probe.
    """
    check_callable(fn)

    def one_case(d_model: int, n_labels: int, lr: float, encoder_lr: float):
        with torch.random.fork_rng():  # the model's random initialisation leaves the caller's state alone
            torch.manual_seed(d_model)
            model = EncoderForClassification(Encoder(50, d_model=d_model, n_heads=2, n_layers=2, d_ff=2 * d_model,
                                                     max_len=8), n_labels)
        groups = call(fn, model, lr, encoder_lr)
        if not (isinstance(groups, (list, tuple)) and len(groups) == 2
                and all(isinstance(g, dict) and {"params", "lr"} <= set(g) for g in groups)):
            raise Mistake(f"expected a list of two dicts with keys 'params' and 'lr', got {groups!r:.80}")
        params = [list(g["params"]) for g in groups]
        ids = [frozenset(map(id, p)) for p in params]
        head = frozenset(map(id, model.classifier.parameters()))
        rest = frozenset(map(id, model.parameters())) - head
        if any(len(i) != len(p) for i, p in zip(ids, params)):
            raise Mistake("a parameter appears twice in one group")
        if set(ids) != {head, rest}:
            raise Mistake("one group must hold exactly the classifier's parameters, the other all the others "
                          "(encoder and pooler)")
        for i, g in zip(ids, groups):
            want, whose = (lr, "the classifier's") if i == head else (encoder_lr, "the pre-trained")
            if g["lr"] != want:
                raise Mistake(f"{whose} parameters must have lr={want}, got lr={g['lr']}")

    cases = [
        (16, 2, 1e-3, 1e-4),  # the head learns ten times faster
        (8, 6, 3e-4, 3e-4),  # one rate for all: two groups still
        (16, 2, 1e-2, 0.0),  # a frozen encoder (a linear probe)
    ]
    return run("parameter groups", cases, one_case, ("d_model", "n_labels", "lr", "encoder_lr"))
