"""Checks for the exercises of chapter 08 (BART's denoising): token deletion, document rotation and sentence
permutation with their random draws given, and the cut of the Poisson span lengths to the masking budget.

Each `check_*(fn)` compares the student's `fn` with the noising function of course_utils on seeded cases (see the
package's docstring): the student gets the draws that the course_utils function makes with the case's seed, so
both must return the same tokens (a tensor or a list).
"""

from __future__ import annotations

from typing import Callable

import torch

from ..noising import (
    document_rotation, draw_span_lengths, poisson_span_lengths, rotation_offset, sentence_bounds,
    sentence_permutation, token_deletion,
)
from . import compare, gen

BOS, EOS, STOP = 0, 2, 18  # <s>, </s> and "." in the course's byte-level BPE


def _document(n: int, seed: int, stops: float = 0.0) -> torch.Tensor:
    """<s>, n seeded token ids (a share `stops` of them full stops), </s>."""
    g = gen(seed)
    body = torch.randint(5, 8000, (n,), generator=g)
    body[torch.rand(n, generator=g) < stops] = STOP
    return torch.cat([torch.tensor([BOS]), body, torch.tensor([EOS])])


# ---------------------------------------------------------------- exercise 1: token deletion


def check_token_deletion(fn: Callable) -> bool:
    """fn(tokens, ratio, order) = tokens without n = ceil(ratio * (L - 2)) of them: those at positions 1 + order[:n].

    tokens (L,) start with <s> and end with </s>; order (L - 2,) is a random permutation of 0..L-3, the draw of
    token_deletion (so 1 + order[:n] are n distinct positions between <s> and </s>). The other tokens stay, in
    order. Reference: course_utils.noising.token_deletion with the same seed.
    """
    def reference(tokens, ratio, order, seed):
        return token_deletion(tokens, ratio=ratio, generator=gen(seed))

    def case(n: int, ratio: float, seed: int):
        tokens = _document(n, seed)
        return tokens, ratio, torch.randperm(n, generator=gen(seed)), seed  # the draw token_deletion makes

    cases = [
        case(20, 0.15, seed=1),  # ceil(3.0) = 3 tokens deleted
        case(46, 0.15, seed=2),  # ceil(6.9) = 7: round up
        case(62, 0.3, seed=3),
        case(5, 0.5, seed=4),  # ceil(2.5) = 3
        case(10, 1.0, seed=5),  # everything between <s> and </s>
        case(12, 0.0, seed=6),  # nothing: a copy
    ]
    return compare("token deletion", fn, reference, cases, atol=0, lists=True, reference_only=1)


# ---------------------------------------------------------------- exercise 2: document rotation


def check_document_rotation(fn: Callable) -> bool:
    """fn(tokens, offset) = <s>, tokens[offset:-1], tokens[1:offset], </s>: the text starts at token `offset`.

    tokens (L,) start with <s> and end with </s>; offset in 1..L-1 (1 and L-1 leave the text as it is).
    Reference: course_utils.noising.document_rotation with the seed that draws this offset.
    """
    def reference(tokens, offset, seed):
        return document_rotation(tokens, generator=gen(seed))

    def case(n: int, seed: int):
        tokens = _document(n, seed)
        return tokens, rotation_offset(len(tokens), gen(seed)), seed  # the draw document_rotation makes

    cases = [
        case(10, seed=2),  # offset 4
        case(47, seed=1),
        case(62, seed=3),  # a 64-token line
        case(3, seed=4),
        case(1, seed=5),  # <s> w </s>: every offset leaves it as it is
        case(0, seed=6),  # <s> </s>: offset 1
    ]
    return compare("document rotation", fn, reference, cases, atol=0, lists=True, reference_only=1)


# ---------------------------------------------------------------- exercise 3: the span-length budget


def check_span_budget(fn: Callable) -> bool:
    """fn(lengths, num_to_mask) = the span lengths kept: lengths up to the first span at which the running sum
    reaches num_to_mask, that span shortened so that the kept lengths sum to exactly num_to_mask.

    lengths (n,) are Poisson draws (zeros included) whose sum is at least num_to_mask. Reference:
    course_utils.noising.poisson_span_lengths, with the same seed.
    """
    def reference(lengths, num_to_mask, poisson_lambda, seed):
        return poisson_span_lengths(num_to_mask, poisson_lambda, generator=gen(seed))

    def case(num_to_mask: int, poisson_lambda: float, seed: int):
        lengths = draw_span_lengths(num_to_mask, poisson_lambda, gen(seed))  # poisson_span_lengths' draw, uncut
        return lengths, num_to_mask, poisson_lambda, seed

    cases = [
        case(10, 3.0, seed=2),  # a 64-token line at 30%: 6 + 1 + 4 crosses 10, the third span is cut to 3
        case(150, 3.0, seed=7),  # a long document: about 50 spans
        case(1, 3.0, seed=3),  # one word to mask: a 0-length span, then one cut from 4 to 1
        case(5, 0.5, seed=1),  # short spans: many zeros, several batches of draws
        case(12, 8.0, seed=2),  # the first span alone reaches the budget
        case(9, 3.0, seed=1),  # the running sum hits the budget exactly: nothing to shorten
    ]
    return compare("span budget", fn, reference, cases, atol=0, lists=True, reference_only=2)


# ---------------------------------------------------------------- exercise 4: sentence permutation


def check_sentence_permutation(fn: Callable) -> bool:
    """fn(tokens, full_stop_id, order) = <s>, the sentences in the order order[0], order[1], ..., the rest, </s>.

    The token before </s> counts as a full stop, and a sentence ends at a full stop that does not follow another
    full stop (the second stop of ". ." opens the next sentence). Sentence i is the i-th from the left; order is a
    random permutation of 0..n-1. Whatever follows the last sentence end stays in place before </s>.
    Reference: course_utils.noising.sentence_permutation with the seed that draws this order.
    """
    def reference(tokens, full_stop_id, order, seed):
        return sentence_permutation(tokens, full_stop_id, generator=gen(seed))

    def case(tokens: torch.Tensor, seed: int):
        n = len(sentence_bounds(tokens, STOP)[1])
        order = torch.randperm(n, generator=gen(seed))  # sentence_permutation's draw
        return tokens, STOP, order, seed

    def doc(*body: int) -> torch.Tensor:
        return torch.tensor([BOS, *body, EOS])

    cases = [
        case(doc(10, 11, STOP, 12, STOP, 13, 14, 15, STOP), seed=2),  # three sentences
        case(doc(10, 11, STOP, 12, STOP, 13, 14), seed=3),  # the last one has no full stop: ends before </s>
        case(doc(10, STOP, STOP, 11, 12, STOP, 13, STOP), seed=4),  # ". ." : the second stop opens the next one
        case(doc(10, 11, STOP, 12, STOP, STOP), seed=5),  # a run of stops before </s>: the tail stays last
        case(doc(10, STOP, 11, 12, STOP, 13), seed=8),  # 13 counts as a stop after a stop: it stays last too
        case(_document(60, seed=6, stops=0.15), seed=6),  # a 64-token line
        case(doc(10, 11, 12), seed=7),  # one sentence: nothing moves
    ]
    return compare("sentence permutation", fn, reference, cases, atol=0, lists=True, reference_only=1)
