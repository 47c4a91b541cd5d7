"""The warpers of the Inference section: temperature, top-k, top-p (and n-gram blocking), as transformers applies them.

    temperature  z / T             T < 1 sharpens the softmax, T > 1 flattens it
    top-k        keep the k largest z, the rest -inf
    top-p        keep the fewest most likely tokens whose probability mass reaches p

generate(do_sample=True) samples from softmax(warp_logits(z)); the widgets draw warp_distribution(z).

"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._validate import check_int, check_int_tensor, check_positive, check_probability, check_tensor
from .metrics import entropy


def _check_logits(logits) -> None:
    """Float scores (..., V) that a softmax can read: no NaN, no +inf, at least one finite score per row."""
    check_tensor("logits", logits, ndim_min=1, floating=True)
    if torch.isnan(logits).any() or (logits == math.inf).any():
        raise ValueError("logits must not hold NaN or +inf (-inf marks a removed token)")
    if logits.shape[-1] == 0 or not torch.isfinite(logits).any(dim=-1).all():
        raise ValueError("logits must hold at least one finite score per row (every token was removed)")


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """z / T: T < 1 sharpens the softmax towards the arg max, T > 1 flattens it (TemperatureLogitsWarper)."""
    _check_logits(logits)
    check_positive("temperature", temperature)
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Set every logit below the k-th largest to -inf; ties with the k-th are kept (TopKLogitsWarper)."""
    _check_logits(logits)
    check_int("k", k, 1)
    kth = torch.topk(logits, min(k, logits.shape[-1])).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the fewest most likely tokens whose probability mass reaches p, the rest -inf (TopPLogitsWarper).

    A token is kept iff the mass of the tokens strictly more likely than it is below p; the most likely always is.
    Among tokens tied at the cut, which are kept is torch.sort's (unstable) choice, as in transformers; how many,
    and so the distribution's values and entropy, do not depend on it.
    """
    _check_logits(logits)
    check_probability("p", p, zero=False)
    sorted_logits, order = torch.sort(logits, descending=False)  # (..., V), least likely first
    mass_below = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # mass of this token and all less likely ones
    remove = mass_below <= 1 - p
    remove[..., -1] = False  # the most likely token stays
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def check_warpers(temperature, top_k, top_p) -> None:
    """Raise unless temperature > 0, top_k >= 0 (0 = off) and top_p in (0, 1] (1 = off)."""
    check_positive("temperature", temperature)
    check_int("top_k", top_k, 0)
    check_probability("top_p", top_p, zero=False)


def warp_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Temperature, then top-k, then top-p, each only when active: the scores generate(do_sample=True) samples from.

    transformers' order and switches: top_k=0 and top_p=1.0 are off; removed tokens get -inf.
    """
    _check_logits(logits)
    check_warpers(temperature, top_k, top_p)
    if temperature != 1.0:
        logits = apply_temperature(logits, temperature)
    if top_k != 0:
        logits = top_k_filter(logits, top_k)
    if top_p < 1.0:
        logits = top_p_filter(logits, top_p)
    return logits


class WarpedDistribution(NamedTuple):
    """The model's next-token distribution (T = 1, nothing removed) and the one sampling draws from."""

    before: torch.Tensor  # (V,) softmax(z)
    after: torch.Tensor  # (V,) softmax(top_p(top_k(z / T))): 0 for a removed token
    entropy_before: float  # nats
    entropy_after: float  # nats
    survivors: torch.Tensor  # (n,) ids of the tokens no filter removed, most likely first


def warp_distribution(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> WarpedDistribution:
    """softmax(z) and softmax(warp_logits(z)) for one position's logits z (V,), with their entropies and survivors."""
    check_tensor("logits", logits, ndim=1, floating=True)
    z = warp_logits(logits.float(), temperature, top_k, top_p)  # (V,)
    before, after = logits.float().softmax(-1), z.softmax(-1)  # (V,), (V,)
    order = logits.argsort(descending=True, stable=True)  # the filters keep a prefix of this ranking
    survivors = order[z[order].isfinite()]
    return WarpedDistribution(before, after, entropy(before), entropy(after), survivors)


def ban_repeated_ngrams(ids: torch.Tensor, scores: torch.Tensor, n: int) -> torch.Tensor:
    """Scores (N, V) with -inf for every token that would repeat an n-gram of its row of ids (N, T).

    transformers' NoRepeatNGramLogitsProcessor: the last n - 1 tokens of a row, wherever they occurred before,
    may not be followed again by the token that followed them then (n = 0: off).
    """
    check_int_tensor("ids", ids, ndim=2, low=0)
    check_tensor("scores", scores, ndim=2, floating=True)
    check_int("n", n, 0)
    if scores.shape[0] != ids.shape[0]:
        raise ValueError(f"scores must have one row per row of ids ({ids.shape[0]}), got shape {tuple(scores.shape)}")
    if ids.numel() and ids.max() >= scores.shape[1]:
        raise ValueError(f"ids must lie in [0, {scores.shape[1]}) (the width of scores), got {ids.max().item()}")
    if n == 0 or ids.shape[1] < n:  # no n-gram in the row yet
        return scores
    windows = ids.unfold(1, n, 1)  # (N, T - n + 1, n): every n-gram of each row
    prefix = ids[:, ids.shape[1] - n + 1:]  # (N, n - 1): the n-gram the next token would complete
    rows, at = (windows[:, :, :-1] == prefix[:, None]).all(-1).nonzero(as_tuple=True)
    return scores.index_put((rows, windows[rows, at, -1]), torch.tensor(-math.inf, dtype=scores.dtype))
