"""Checks for the exercises of chapter 09 (decoding): the softmax with a temperature, the top-p filter, one step of
greedy decoding, and one step of beam search.
"""

from __future__ import annotations

from typing import Callable

import torch

from .._validate import seeded
from ..generation import apply_temperature, generate, top_p_filter
from ..models import Decoder
from . import compare, randint, randn

# ---------------------------------------------------------------- exercise 1: the temperature


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The reference: softmax(z / T) over the last dimension."""
    return apply_temperature(logits, temperature).softmax(dim=-1)


def check_softmax_with_temperature(fn: Callable) -> bool:
    """fn(logits, temperature) = softmax(logits / temperature) over the last dimension (the vocabulary).

    logits are (V,) or (B, V). One case divides large logits by T = 0.05: exp(z / T) overflows float32, so
    subtract the maximum first (softmax is unchanged by a shift). Reference: softmax(apply_temperature(z, T)).
    """
    cases = [
        (randn(10, seed=1), 1.0),  # T = 1: the model's own distribution
        (randn(10, seed=2, scale=2.0), 0.5),  # sharper
        (randn(3, 12, seed=3, scale=2.0), 2.0),  # a batch of 3 rows, flatter
        (randn(50, seed=4, scale=10.0), 0.05),  # z / T up to ~600: exp overflows without the shift
        (randn(2, 8, seed=5, scale=3.0, shift=100.0), 1.0),  # large logits at T = 1 overflow exp too
        (randn(20, seed=6), 5.0),  # almost uniform
    ]
    return compare("softmax with temperature", fn, softmax_with_temperature, cases, atol=1e-6,
                   forbidden=("softmax",))


# ---------------------------------------------------------------- exercise 2: top-p


def check_top_p(fn: Callable) -> bool:
    """fn(logits, p) = logits with -inf at every token outside the nucleus, the others unchanged.

    The nucleus: the fewest most likely tokens whose probability mass reaches p; a token is kept iff the mass of
    the tokens strictly more likely than it is below p (so the most likely token always is). logits are (V,) or
    (B, V), one nucleus per row. Reference: course_utils.generation.top_p_filter (transformers' TopPLogitsWarper).
    """
    specs = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()  # SPECS.md's example: p = .75 keeps 2 tokens, p = .9 keeps 3
    cases = [
        (specs, 0.75),
        (specs, 0.9),
        (randn(30, seed=1, scale=2.0), 0.9),
        (randn(4, 30, seed=2, scale=2.0), 0.5),  # a batch: each row has its own nucleus
        (randn(30, seed=3, scale=4.0), 0.05),  # below the top token's mass: only it is kept
        (randn(30, seed=4, scale=0.1), 0.95),  # an almost flat distribution: most tokens are kept
        (randn(12, seed=5), 1.0),  # p = 1: nothing is removed
    ]
    return compare("top-p filter", fn, top_p_filter, cases, atol=1e-6)


# ---------------------------------------------------------------- exercise 3: one greedy step


def _decoder(seed: int, vocab_size: int = 40) -> Decoder:
    """A small random Decoder whose logits are spread (no near-ties for the arg max); the global RNG is untouched."""
    with seeded(seed):
        model = Decoder(vocab_size, d_model=16, n_heads=2, n_layers=2, d_ff=32, max_len=24)
    with torch.no_grad():
        model.tok.weight.mul_(50.0)
    return model.eval()


def greedy_step(model: Decoder, input_ids: torch.Tensor) -> torch.Tensor:
    """The reference: generate one token greedily."""
    return generate(model, input_ids, 1)


def check_greedy_step(fn: Callable) -> bool:
    """fn(model, input_ids) = input_ids (B, T) with one more column (B, T + 1): the arg max of the next token.

    The new token of row b is argmax_v P(v | input_ids[b]), read from model(input_ids).logits at the last
    position. model is a course_utils Decoder. Reference: generate(model, input_ids, 1).
    """
    cases = [
        (_decoder(1), randint(40, 1, 5, seed=1)),
        (_decoder(2), randint(40, 3, 7, seed=2)),  # a batch: one arg max per row
        (_decoder(3), randint(40, 2, 1, seed=3)),  # a one-token prompt
        (_decoder(4, vocab_size=100), randint(100, 4, 20, seed=4)),
    ]
    return compare("one greedy step", fn, greedy_step, cases, atol=0)


# ---------------------------------------------------------------- exercise 4: one beam search step


def beam_step(beam_scores: torch.Tensor, log_probs: torch.Tensor, num_beams: int):
    """The reference: the num_beams best of all beam_scores[i] + log_probs[i, v], with their beam i and token v."""
    V = log_probs.shape[-1]
    scores, index = torch.topk((beam_scores[:, None] + log_probs).flatten(), num_beams)  # best first
    return scores, index // V, index % V


def check_beam_step(fn: Callable) -> bool:
    """fn(beam_scores, log_probs, num_beams) = (scores, beams, tokens), each (num_beams,), best first.

    beam_scores (k,) are the sums of log-probabilities of the k running prefixes; log_probs (k, V) the log
    P(v | prefix i) of each next token. Among the k * V extensions (prefix i + token v, score beam_scores[i] +
    log_probs[i, v]) keep the num_beams best: their scores, the prefix i each extends and the token v.
    Reference: a top-k over the flattened (k, V) scores.
    """

    def case(k: int, V: int, num_beams: int, seed: int, first: bool = False):
        log_probs = randn(k, V, seed=seed, scale=2.0).log_softmax(dim=-1)  # (k, V)
        beam_scores = torch.tensor([0.0] + [-1e9] * (k - 1)) if first else -randn(k, seed=seed + 1).abs() * 5
        return beam_scores, log_probs, num_beams

    cases = [
        case(2, 10, 2, seed=1),
        case(3, 50, 3, seed=2),
        case(3, 50, 3, seed=3, first=True),  # the first step: all beams hold the prompt, only beam 0 may expand
        case(4, 20, 4, seed=4),
        case(2, 30, 4, seed=5),  # more survivors than running beams (transformers keeps 2 * num_beams candidates)
    ]
    return compare("one beam search step", fn, beam_step, cases, atol=1e-5)
