"""Checks for the exercises of chapter 08 (BART's denoising): token deletion, document rotation and sentence
permutation with their random draws given, and the cut of the Poisson span lengths to the masking budget.

Each `check_*(fn)` runs the student's `fn` and the noising function of course_utils.objectives on seeded cases:
the student gets the draws that the course_utils function makes with the same seed, so both must return the same
tokens. It returns True if every output matches, False if `fn` still raises NotImplementedError; a wrong result
raises an AssertionError naming the case. The cases never touch the global random state, and the student's
function gets copies of the tensors, so an in-place edit cannot change what the reference sees.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..objectives import document_rotation, poisson_span_lengths, sentence_permutation, token_deletion
from . import check_callable, compare

BOS, EOS, STOP = 0, 2, 18  # <s>, </s> and "." in the course's byte-level BPE


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _document(n: int, seed: int, stops: float = 0.0) -> torch.Tensor:
    """<s>, n seeded token ids (a share `stops` of them full stops), </s>."""
    g = _gen(seed)
    body = torch.randint(5, 8000, (n,), generator=g)
    body[torch.rand(n, generator=g) < stops] = STOP
    return torch.cat([torch.tensor([BOS]), body, torch.tensor([EOS])])


def _tokens_out(name: str, got) -> torch.Tensor:
    """The student's output as a 1-D LongTensor (a list is fine too)."""
    got = torch.as_tensor(got)
    if got.dim() != 1 or got.is_floating_point():
        raise AssertionError(f"{name}: expected a 1-D tensor (or list) of token ids, got {got!r:.80}")
    return got.long()


# ---------------------------------------------------------------- exercise 1: token deletion


def check_token_deletion(fn: Callable) -> bool:
    """fn(tokens, ratio, order) = tokens without n = ceil(ratio * (L - 2)) of them: those at positions 1 + order[:n].

    tokens (L,) start with <s> and end with </s>; order (L - 2,) is a random permutation of 0..L-3, the draw of
    token_deletion (so 1 + order[:n] are n distinct positions between <s> and </s>). The other tokens stay, in
    order. Reference: course_utils.objectives.token_deletion with the same seed.
    """
    check_callable(fn)

    def student(tokens, ratio, order, seed):
        return _tokens_out("token deletion", fn(tokens, ratio, order))

    def reference(tokens, ratio, order, seed):
        return token_deletion(tokens, ratio=ratio, generator=_gen(seed))

    def case(n: int, ratio: float, seed: int):
        tokens = _document(n, seed)
        return tokens, ratio, torch.randperm(n, generator=_gen(seed)), seed  # the draw token_deletion makes

    cases = [
        case(20, 0.15, seed=1),  # ceil(3.0) = 3 tokens deleted
        case(46, 0.15, seed=2),  # ceil(6.9) = 7: round up
        case(62, 0.3, seed=3),
        case(5, 0.5, seed=4),  # ceil(2.5) = 3
        case(10, 1.0, seed=5),  # everything between <s> and </s>
        case(12, 0.0, seed=6),  # nothing: a copy
    ]
    return compare("token deletion", student, reference, cases, atol=0)


# ---------------------------------------------------------------- exercise 2: document rotation


def _rotation_offset(length: int, seed: int) -> int:
    """The offset document_rotation draws for a document of `length` tokens with this seed (1..L-1)."""
    return int(torch.randint(1, max(1, length - 1) + 1, (1,), generator=_gen(seed)))


def check_document_rotation(fn: Callable) -> bool:
    """fn(tokens, offset) = <s>, tokens[offset:-1], tokens[1:offset], </s>: the text starts at token `offset`.

    tokens (L,) start with <s> and end with </s>; offset in 1..L-1 (1 and L-1 leave the text as it is).
    Reference: course_utils.objectives.document_rotation with the seed that draws this offset.
    """
    check_callable(fn)

    def student(tokens, offset, seed):
        return _tokens_out("document rotation", fn(tokens, offset))

    def reference(tokens, offset, seed):
        return document_rotation(tokens, generator=_gen(seed))

    def case(n: int, seed: int):
        tokens = _document(n, seed)
        return tokens, _rotation_offset(len(tokens), seed), seed

    cases = [
        case(10, seed=2),  # offset 4
        case(47, seed=1),
        case(62, seed=3),  # a 64-token line
        case(3, seed=4),
        case(1, seed=5),  # <s> w </s>: every offset leaves it as it is
        case(0, seed=6),  # <s> </s>: offset 1
    ]
    return compare("document rotation", student, reference, cases, atol=0)


# ---------------------------------------------------------------- exercise 3: the span-length budget


def _pmf(poisson_lambda: float) -> torch.Tensor:
    """Poisson(lambda) probabilities of k = 0, 1, ... to the first below 1e-7, as poisson_span_lengths builds them."""
    pmf = []
    for k in range(128):
        pmf.append(math.exp(-poisson_lambda) * poisson_lambda**k / math.factorial(k))
        if pmf[-1] < 1e-7:
            break
    return torch.tensor(pmf)


def _raw_lengths(num_to_mask: int, poisson_lambda: float, seed: int) -> torch.Tensor:
    """The span lengths poisson_span_lengths draws with this seed, before the cut: batches of num_to_mask draws
    until they sum to num_to_mask or more."""
    g, pmf = _gen(seed), _pmf(poisson_lambda)
    lengths = torch.multinomial(pmf, num_to_mask, replacement=True, generator=g)
    while lengths.sum() < num_to_mask:
        lengths = torch.cat([lengths, torch.multinomial(pmf, num_to_mask, replacement=True, generator=g)])
    return lengths


def check_span_budget(fn: Callable) -> bool:
    """fn(lengths, num_to_mask) = the span lengths kept: lengths up to the first span at which the running sum
    reaches num_to_mask, that span shortened so that the kept lengths sum to exactly num_to_mask.

    lengths (n,) are Poisson draws (zeros included) whose sum is at least num_to_mask. Reference:
    course_utils.objectives.poisson_span_lengths, with the same seed.
    """
    check_callable(fn)

    def student(lengths, num_to_mask, poisson_lambda, seed):
        return _tokens_out("span budget", fn(lengths, num_to_mask))

    def reference(lengths, num_to_mask, poisson_lambda, seed):
        return poisson_span_lengths(num_to_mask, poisson_lambda, generator=_gen(seed))

    def case(num_to_mask: int, poisson_lambda: float, seed: int):
        return _raw_lengths(num_to_mask, poisson_lambda, seed), num_to_mask, poisson_lambda, seed

    cases = [
        case(10, 3.0, seed=2),  # a 64-token line at 30%: 6 + 1 + 4 crosses 10, the third span is cut to 3
        case(150, 3.0, seed=7),  # a long document: about 50 spans
        case(1, 3.0, seed=3),  # one word to mask: a 0-length span, then one cut from 4 to 1
        case(5, 0.5, seed=1),  # short spans: many zeros, several batches of draws
        case(12, 8.0, seed=2),  # the first span alone reaches the budget
        case(9, 3.0, seed=1),  # the running sum hits the budget exactly: nothing to shorten
    ]
    return compare("span budget", student, reference, cases, atol=0)


# ---------------------------------------------------------------- exercise 4: sentence permutation


def _n_sentences(tokens: torch.Tensor, full_stop_id: int) -> int:
    """Sentences as sentence_permutation cuts them: the token before </s> is a full stop; an end is a full stop
    that does not follow another one."""
    stops = tokens == full_stop_id
    stops[-2] = True
    return int((stops[1:] & ~stops[:-1]).sum())


def check_sentence_permutation(fn: Callable) -> bool:
    """fn(tokens, full_stop_id, order) = <s>, the sentences in the order order[0], order[1], ..., the rest, </s>.

    The token before </s> counts as a full stop, and a sentence ends at a full stop that does not follow another
    full stop (the second stop of ". ." opens the next sentence). Sentence i is the i-th from the left; order is a
    random permutation of 0..n-1. Whatever follows the last sentence end stays in place before </s>.
    Reference: course_utils.objectives.sentence_permutation with the seed that draws this order.
    """
    check_callable(fn)

    def student(tokens, full_stop_id, order, seed):
        return _tokens_out("sentence permutation", fn(tokens, full_stop_id, order))

    def reference(tokens, full_stop_id, order, seed):
        return sentence_permutation(tokens, full_stop_id, generator=_gen(seed))

    def case(tokens: torch.Tensor, seed: int):
        order = torch.randperm(_n_sentences(tokens, STOP), generator=_gen(seed))  # sentence_permutation's draw
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
    return compare("sentence permutation", student, reference, cases, atol=0)
