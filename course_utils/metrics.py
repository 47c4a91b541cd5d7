"""How good is a model: perplexity and a bigram baseline (GPT), edit distance and longest common subsequence
(BART's reconstructions), the confusion matrix (fine-tuning), and the entropy of a next-token distribution.

A model argument is duck-typed (this module sits below `models`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ._validate import check_finite, check_int, check_int_tensor, check_probability, check_tensor


@torch.no_grad()
def perplexity(model, stream: torch.Tensor, block_size: int | None = None) -> float:
    """exp of the mean next-token loss over consecutive windows of the stream (the tail shorter than one is dropped).

    model is a Decoder; block_size (default: model.config.max_len) tokens predict the next block_size, window by window.
    """
    config = getattr(model, "config", None)
    if not hasattr(config, "causal"):  # a Decoder's config; an Encoder's or an EncoderDecoder's has none
        raise TypeError(f"model must be a causal language model (a course_utils Decoder), got {type(model).__name__}")
    block_size = config.max_len if block_size is None else block_size
    check_int("block_size", block_size, 1, config.max_len)
    check_int_tensor("stream", stream, ndim=1, low=0, high=config.vocab_size)
    if len(stream) < block_size + 1:
        raise ValueError(f"stream must hold at least block_size + 1 = {block_size + 1} tokens, got {len(stream)}")
    windows = stream.unfold(0, block_size + 1, block_size)  # (N, block_size + 1), each shares its last token
    model.eval()
    # 8 windows at a time: their (8 L, V) logits stay in cache; 64 at a time was 1.6x slower on 2 cores
    nll = sum(F.cross_entropy(model(w[:, :-1]).logits.flatten(0, 1), w[:, 1:].flatten(), reduction="sum").item()
              for w in windows.split(8))
    return math.exp(nll / windows[:, 1:].numel())


def bigram_perplexity(train: torch.Tensor, held_out: torch.Tensor, vocab_size: int, lam: float) -> float:
    """Perplexity of a bigram model interpolated with add-one unigrams: lam c(a, b) / c(a) + (1 - lam) p(b).

    vocab_size is at most 2**20.
    """
    check_int("vocab_size", vocab_size, 1, 2**20)
    check_probability("lam", lam)
    for name, ids in (("train", train), ("held_out", held_out)):
        check_int_tensor(name, ids, ndim=1, low=0, high=vocab_size)
        if len(ids) < 2:
            raise ValueError(f"{name} must hold at least 2 tokens (one bigram), got {len(ids)}")
    unigram = (torch.bincount(train, minlength=vocab_size) + 1.0) / (len(train) + vocab_size)  # (V,)
    codes, counts = torch.unique(train[:-1] * vocab_size + train[1:], return_counts=True)  # seen pairs a*V + b
    context = torch.bincount(train[:-1], minlength=vocab_size).float()  # c(a)
    a, b = held_out[:-1], held_out[1:]
    query = a * vocab_size + b
    at = torch.searchsorted(codes, query).clamp(max=len(codes) - 1)
    pair = torch.where(codes[at] == query, counts[at], 0).float()  # c(a, b), 0 if never seen
    p_bigram = torch.where(context[a] > 0, pair / context[a].clamp(min=1), unigram[b])  # unseen a: back off
    return math.exp(-(lam * p_bigram + (1 - lam) * unigram[b]).log().mean().item())


def _check_tokens(name: str, tokens) -> None:
    if isinstance(tokens, torch.Tensor) or not isinstance(tokens, Sequence):
        raise TypeError(f"{name} must be a list of tokens (a tensor: call .tolist()), got {type(tokens).__name__}")


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Levenshtein distance between two token lists (insertions, deletions, substitutions cost 1)."""
    _check_tokens("a", a)
    _check_tokens("b", b)
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def common_subsequence(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common subsequence: how many tokens of b come out, in order, in a."""
    _check_tokens("a", a)
    _check_tokens("b", b)
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, n_labels: int) -> torch.Tensor:
    """Counts (n_labels, n_labels): row = true class, column = predicted class (n_labels <= 4096)."""
    check_int("n_labels", n_labels, 1, 4096)
    for name, t in (("labels", labels), ("predictions", predictions)):
        check_int_tensor(name, t, ndim=1, low=0, high=n_labels)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels and predictions must have the same shape, got {tuple(labels.shape)} "
                         f"and {tuple(predictions.shape)}")
    return torch.bincount(labels * n_labels + predictions, minlength=n_labels**2).view(n_labels, n_labels)


def entropy(probs: torch.Tensor) -> float:
    """H(p) = -sum_v p_v log p_v in nats (0 log 0 = 0); exp(H) is how many equally likely tokens it amounts to."""
    check_tensor("probs", probs, ndim=1, floating=True)
    check_finite("probs", probs)
    total = probs.double().sum().item()
    if not len(probs) or (probs < 0).any() or abs(total - 1) > 1e-4:
        raise ValueError(f"probs must be a distribution (entries >= 0 summing to 1), got {len(probs)} entries, "
                         f"minimum {probs.min().item() if len(probs) else 0:.4g}, sum {total:.6g}")
    return float(-torch.special.xlogy(probs.double(), probs.double()).sum())
