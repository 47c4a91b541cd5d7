"""Chapter 05's exercises, solved: the classifier head, the parameters a switch of heads drops and adds, a
balanced sample."""

import random

import torch


def classifier_head(h, W_pool, b_pool, W_cls, b_cls):
    pooled = torch.tanh(h[:, 0] @ W_pool.T + b_pool)  # (B, d): the [CLS] vector, pooled
    return pooled @ W_cls.T + b_cls  # (B, n_labels)


def switch_counts(vocab_size, d_model, n_labels):
    mlm = (d_model * d_model + d_model) + 2 * d_model + vocab_size  # dense, LayerNorm, output bias
    nsp = 2 * d_model + 2
    return mlm + nsp, n_labels * d_model + n_labels


def balanced_sample(labels, n, seed):
    rng = random.Random(seed)
    by_class = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    classes = sorted(by_class)
    for c in classes:
        rng.shuffle(by_class[c])
    extra = set(rng.sample(classes, n % len(classes)))  # these classes get one more
    return [i for c in classes for i in by_class[c][: n // len(classes) + (c in extra)]]
