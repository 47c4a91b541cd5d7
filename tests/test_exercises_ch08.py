"""The checks of chapter 08's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import math

import pytest
import torch

from course_utils.exercises import ch08
from course_utils.noising import (
    document_rotation, draw_span_lengths, poisson_span_lengths, rotation_offset, sentence_bounds, sentence_permutation,
    token_deletion,
)
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


def deletion(tokens, ratio, order):
    n = math.ceil(ratio * (len(tokens) - 2))
    keep = torch.ones(len(tokens), dtype=torch.bool)
    keep[1 + order[:n]] = False
    return tokens[keep]


def deletion_as_list(tokens, ratio, order):  # a list of ids is fine too
    gone = set((1 + order[: math.ceil(ratio * (len(tokens) - 2))]).tolist())
    return [t for i, t in enumerate(tokens.tolist()) if i not in gone]


def deletion_floor(tokens, ratio, order):  # rounds the count down
    keep = torch.ones(len(tokens), dtype=torch.bool)
    keep[1 + order[: int(ratio * (len(tokens) - 2))]] = False
    return tokens[keep]


def deletion_no_offset(tokens, ratio, order):  # positions 0..L-3: <s> may go, the last token never does
    keep = torch.ones(len(tokens), dtype=torch.bool)
    keep[order[: math.ceil(ratio * (len(tokens) - 2))]] = False
    return tokens[keep]


def deletion_counts_specials(tokens, ratio, order):  # ceil(ratio * L) instead of ceil(ratio * (L - 2))
    keep = torch.ones(len(tokens), dtype=torch.bool)
    keep[1 + order[: math.ceil(ratio * len(tokens))]] = False
    return tokens[keep]


def deletion_masks(tokens, ratio, order):  # token masking instead: the length is kept
    out = tokens.clone()
    out[1 + order[: math.ceil(ratio * (len(tokens) - 2))]] = 4
    return out


def rotation(tokens, offset):
    return torch.cat([tokens[:1], tokens[offset:-1], tokens[1:offset], tokens[-1:]])


def rotation_roll(tokens, offset):  # the same with roll
    return torch.cat([tokens[:1], tokens[1:-1].roll(1 - offset), tokens[-1:]])


def rotation_whole(tokens, offset):  # <s> and </s> rotate too
    return tokens.roll(-offset)


def rotation_off_by_one(tokens, offset):  # starts one token later
    return torch.cat([tokens[:1], tokens[offset + 1:-1], tokens[1:offset + 1], tokens[-1:]])


def rotation_backwards(tokens, offset):  # the end of the text moves to the front the other way
    return torch.cat([tokens[:1], tokens[1:-1].roll(offset - 1), tokens[-1:]])


def budget(lengths, num_to_mask):
    cum = lengths.cumsum(0)
    i = int((cum < num_to_mask).sum())  # the first span at which the sum reaches the budget
    kept = lengths[: i + 1].clone()
    kept[i] = num_to_mask - (cum[i - 1] if i > 0 else 0)
    return kept


def budget_loop(lengths, num_to_mask):  # a plain loop over python ints
    kept, total = [], 0
    for length in lengths.tolist():
        kept.append(min(length, num_to_mask - total))
        total += kept[-1]
        if total == num_to_mask:
            return kept


def budget_not_cut(lengths, num_to_mask):  # keeps the crossing span whole: masks too much
    i = int((lengths.cumsum(0) < num_to_mask).sum())
    return lengths[: i + 1]


def budget_drops_crossing(lengths, num_to_mask):  # drops the crossing span: masks too little
    i = int((lengths.cumsum(0) < num_to_mask).sum())
    return lengths[:i]


def budget_no_zeros(lengths, num_to_mask):  # loses the 0-length spans (the insertions)
    kept = budget(lengths, num_to_mask)
    return kept[kept > 0]


def budget_keeps_all(lengths, num_to_mask):  # cuts the crossing span but keeps the spans after it
    out = lengths.clone()
    out[: len(budget(lengths, num_to_mask))] = budget(lengths, num_to_mask)
    return out


def _sentences(tokens, stop):
    stops = tokens == stop
    stops[-2] = True
    ends = ((stops[1:] & ~stops[:-1]).nonzero().squeeze(1) + 2).tolist()
    starts = [1, *ends[:-1]]
    return list(zip(starts, ends))


def permutation(tokens, stop, order):
    spans = _sentences(tokens, stop)
    if not spans:
        return tokens.clone()
    return torch.cat([tokens[:1], *(tokens[a:b] for a, b in (spans[i] for i in order)), tokens[spans[-1][1]:]])


def permutation_every_stop(tokens, stop, order):  # every full stop ends a sentence, runs of stops too
    ends = [i + 1 for i in range(1, len(tokens) - 1) if tokens[i] == stop or i == len(tokens) - 2]
    spans = list(zip([1, *ends[:-1]], ends))
    if len(spans) != len(order):
        return tokens.clone()
    return torch.cat([tokens[:1], *(tokens[a:b] for a, b in (spans[i] for i in order)), tokens[-1:]])


def permutation_inverse(tokens, stop, order):  # sentence i goes to place order[i]
    return permutation(tokens, stop, torch.argsort(order))


def permutation_no_forced_end(tokens, stop, order):  # the words after the last full stop are left behind
    spans = [(a, b) for a, b in _sentences(tokens, stop) if tokens[b - 1] == stop]
    if len(spans) < len(order):
        order = order[order < len(spans)]
    if not spans:
        return tokens.clone()
    return torch.cat([tokens[:1], *(tokens[a:b] for a, b in (spans[i] for i in order)), tokens[spans[-1][1]:]])


CHECKS = [
    (ch08.check_token_deletion, deletion),
    (ch08.check_document_rotation, rotation),
    (ch08.check_span_budget, budget),
    (ch08.check_sentence_permutation, permutation),
]

WRONG = [
    (ch08.check_token_deletion, deletion_floor),
    (ch08.check_token_deletion, deletion_no_offset),
    (ch08.check_token_deletion, deletion_counts_specials),
    (ch08.check_token_deletion, deletion_masks),
    (ch08.check_document_rotation, rotation_whole),
    (ch08.check_document_rotation, rotation_off_by_one),
    (ch08.check_document_rotation, rotation_backwards),
    (ch08.check_span_budget, budget_not_cut),
    (ch08.check_span_budget, budget_drops_crossing),
    (ch08.check_span_budget, budget_no_zeros),
    (ch08.check_span_budget, budget_keeps_all),
    (ch08.check_sentence_permutation, permutation_every_stop),
    (ch08.check_sentence_permutation, permutation_inverse),
    (ch08.check_sentence_permutation, permutation_no_forced_end),
]

globals().update(contract_tests(CHECKS, WRONG))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("check, solution", [
    (ch08.check_token_deletion, deletion_as_list),
    (ch08.check_document_rotation, rotation_roll),
    (ch08.check_span_budget, budget_loop),
])
def test_other_right_solutions_pass(check, solution):
    assert check(solution) is True


def test_the_given_draws_are_the_draws_of_course_utils():
    """With a seed, each noising function makes exactly the draw the check hands to the student."""
    tokens = torch.tensor([0, *range(10, 30), 2])  # 20 distinct tokens between <s> and </s>
    order = torch.randperm(20, generator=torch.Generator().manual_seed(9))
    deleted = token_deletion(tokens, ratio=0.25, generator=torch.Generator().manual_seed(9))
    assert set(tokens.tolist()) - set(deleted.tolist()) == set((10 + order[:5]).tolist())
    offset = rotation_offset(len(tokens), torch.Generator().manual_seed(9))
    rotated = document_rotation(tokens, generator=torch.Generator().manual_seed(9))
    assert rotated[1] == tokens[offset] and 1 <= offset <= len(tokens) - 1
    raw = draw_span_lengths(30, 3.0, torch.Generator().manual_seed(9))
    kept = poisson_span_lengths(30, 3.0, generator=torch.Generator().manual_seed(9))
    assert torch.equal(kept[:-1], raw[: len(kept) - 1]) and int(kept.sum()) == 30 and kept[-1] <= raw[len(kept) - 1]
    stop = ch08.STOP
    document = torch.tensor([0, 10, stop, 11, stop, 12, 13, stop, 14, 15, 2])  # 4 sentences, the last with no stop
    assert sentence_bounds(document, stop)[1].tolist() == [3, 5, 8, 10]
    permuted = sentence_permutation(document, stop, generator=torch.Generator().manual_seed(9))
    sentences = [[10, stop], [11, stop], [12, 13, stop], [14, 15]]
    expected = [t for i in torch.randperm(4, generator=torch.Generator().manual_seed(9)).tolist() for t in sentences[i]]
    assert permuted[1:-1].tolist() == expected


def test_wrong_output_types_are_reported():
    with pytest.raises(AssertionError, match=r"expected shape \(19,\), got shape \(1, 19\)"):
        ch08.check_token_deletion(lambda tokens, ratio, order: deletion(tokens, ratio, order)[None])
    with pytest.raises(AssertionError, match="wrong dtype: expected an integer tensor"):
        ch08.check_span_budget(lambda lengths, n: budget(lengths, n).float())


def test_in_place_student_code_cannot_corrupt_the_reference():
    def deletion_in_place(tokens, ratio, order):
        out = deletion(tokens, ratio, order)
        tokens.zero_()
        order.zero_()
        return out

    def budget_in_place(lengths, num_to_mask):
        out = budget(lengths, num_to_mask)
        lengths.zero_()
        return out

    assert ch08.check_token_deletion(deletion_in_place) is True
    assert ch08.check_span_budget(budget_in_place) is True
