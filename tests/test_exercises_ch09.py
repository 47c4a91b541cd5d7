"""The checks of chapter 09's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import pytest
import torch

from course_utils.exercises import ch09, randint
from course_utils.generation import generate, top_p_filter
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


def softmax_t(logits, temperature):
    z = logits / temperature
    z = z - z.max(dim=-1, keepdim=True).values  # softmax is unchanged by a shift: no overflow
    return z.exp() / z.exp().sum(dim=-1, keepdim=True)


def softmax_t_naive(logits, temperature):  # exp overflows for large z / T
    e = (logits / temperature).exp()
    return e / e.sum(dim=-1, keepdim=True)


def softmax_t_multiplied(logits, temperature):
    return softmax_t(logits * temperature, 1.0)


def softmax_t_ignored(logits, temperature):
    return softmax_t(logits, 1.0)


def softmax_t_first_dim(logits, temperature):  # normalises over the batch, not the vocabulary
    z = logits / temperature
    e = (z - z.max(dim=0, keepdim=True).values).exp()
    return e / e.sum(dim=0, keepdim=True)


def top_p(logits, p):
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_above = probs.cumsum(dim=-1) - probs  # mass of the strictly more likely tokens
    remove = (mass_above >= p).scatter(-1, order, mass_above >= p)
    return logits.masked_fill(remove, float("-inf"))


def top_p_loop(logits, p):  # one row at a time, with Python lists
    if logits.dim() == 2:
        return torch.stack([top_p_loop(row, p) for row in logits])
    probs, out, mass = logits.softmax(-1).tolist(), torch.full_like(logits, float("-inf")), 0.0
    for i in sorted(range(len(probs)), key=lambda i: -probs[i]):
        if mass >= p:
            break
        out[i], mass = logits[i], mass + probs[i]
    return out


def top_p_excludes_the_crossing_token(logits, p):  # keeps only tokens whose cumulative mass stays below p
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    remove = sorted_logits.softmax(-1).cumsum(-1) > p
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def top_p_finite_fill(logits, p):  # -1e9 instead of -inf
    return top_p(logits, p).clamp(min=-1e9)


def top_p_probabilities(logits, p):  # returns the renormalised probabilities, not logits
    return top_p(logits, p).softmax(dim=-1)


def top_p_least_likely(logits, p):  # sorts the wrong way: keeps the least likely tokens
    sorted_logits, order = torch.sort(logits, dim=-1)
    probs = sorted_logits.softmax(dim=-1)
    remove = probs.cumsum(dim=-1) - probs >= p
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def greedy(model, input_ids):
    next_token = model(input_ids).logits[:, -1].argmax(dim=-1)  # (B,)
    return torch.cat([input_ids, next_token[:, None]], dim=-1)


def greedy_via_softmax(model, input_ids):  # the arg max of the probabilities is the same
    probs = model(input_ids).logits[:, -1].softmax(dim=-1)
    return torch.cat([input_ids, probs.argmax(dim=-1, keepdim=True)], dim=-1)


def greedy_first_position(model, input_ids):  # reads the prediction after the first token
    next_token = model(input_ids).logits[:, 0].argmax(dim=-1)
    return torch.cat([input_ids, next_token[:, None]], dim=-1)


def greedy_token_only(model, input_ids):
    return model(input_ids).logits[:, -1].argmax(dim=-1)


def greedy_least_likely(model, input_ids):
    next_token = model(input_ids).logits[:, -1].argmin(dim=-1)
    return torch.cat([input_ids, next_token[:, None]], dim=-1)


def beam(beam_scores, log_probs, num_beams):
    V = log_probs.shape[-1]
    scores, index = (beam_scores[:, None] + log_probs).flatten().topk(num_beams)
    return scores, index // V, index % V


def beam_sorted(beam_scores, log_probs, num_beams):  # a full sort, then divmod
    V = log_probs.shape[-1]
    scores, index = (beam_scores[:, None] + log_probs).flatten().sort(descending=True)
    return scores[:num_beams], torch.div(index[:num_beams], V, rounding_mode="floor"), index[:num_beams] % V


def beam_forgets_the_prefix(beam_scores, log_probs, num_beams):  # ranks by the last token only
    V = log_probs.shape[-1]
    _, index = log_probs.flatten().topk(num_beams)
    return beam_scores[index // V] + log_probs.flatten()[index], index // V, index % V


def beam_per_row(beam_scores, log_probs, num_beams):  # the best token of each beam, not the best extensions
    total = beam_scores[:, None] + log_probs
    scores, tokens = total.max(dim=-1)
    order = scores.argsort(descending=True)[:num_beams]
    return scores[order], order, tokens[order]


def beam_swapped_divmod(beam_scores, log_probs, num_beams):
    V = log_probs.shape[-1]
    scores, index = (beam_scores[:, None] + log_probs).flatten().topk(num_beams)
    return scores, index % V, index // V


def beam_probabilities_multiplied(beam_scores, log_probs, num_beams):  # multiplies log-probs
    V = log_probs.shape[-1]
    scores, index = (beam_scores[:, None] * log_probs).flatten().topk(num_beams)
    return scores, index // V, index % V


CHECKS = [
    (ch09.check_softmax_with_temperature, softmax_t),
    (ch09.check_top_p, top_p),
    (ch09.check_greedy_step, greedy),
    (ch09.check_beam_step, beam),
]

WRONG = [
    (ch09.check_softmax_with_temperature, softmax_t_naive),
    (ch09.check_softmax_with_temperature, softmax_t_multiplied),
    (ch09.check_softmax_with_temperature, softmax_t_ignored),
    (ch09.check_softmax_with_temperature, softmax_t_first_dim),
    (ch09.check_top_p, top_p_excludes_the_crossing_token),
    (ch09.check_top_p, top_p_finite_fill),
    (ch09.check_top_p, top_p_probabilities),
    (ch09.check_top_p, top_p_least_likely),
    (ch09.check_greedy_step, greedy_first_position),
    (ch09.check_greedy_step, greedy_token_only),
    (ch09.check_greedy_step, greedy_least_likely),
    (ch09.check_beam_step, beam_forgets_the_prefix),
    (ch09.check_beam_step, beam_per_row),
    (ch09.check_beam_step, beam_swapped_divmod),
    (ch09.check_beam_step, beam_probabilities_multiplied),
]

globals().update(contract_tests(CHECKS, WRONG))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("check, solution", [
    (ch09.check_top_p, top_p_loop),
    (ch09.check_greedy_step, greedy_via_softmax),
    (ch09.check_beam_step, beam_sorted),
])
def test_other_right_solutions_pass(check, solution):
    assert check(solution) is True


def test_the_overflow_case_is_what_catches_the_naive_softmax():
    z, t = torch.tensor([600.0, 0.0]), 1.0
    assert softmax_t_naive(z, t).isnan().any() and torch.allclose(softmax_t(z, t), torch.tensor([1.0, 0.0]))


def test_references_are_course_utils_and_match_the_specs_example():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    kept = top_p_filter(probs.log(), 0.75).isfinite()
    assert kept.tolist() == [True, True, False, False]  # SPECS.md section 5
    model, ids = ch09._decoder(1), randint(40, 2, 4, seed=0)
    with torch.no_grad():
        by_hand = greedy(model, ids)
    assert torch.equal(ch09.greedy_step(model, ids), by_hand)
    assert torch.equal(by_hand, generate(model, ids, 1, use_cache=False))
    scores, beams, tokens = ch09.beam_step(torch.tensor([-1.0, -2.0]), torch.tensor([[-3.0, -0.5], [-0.1, -4.0]]), 3)
    assert scores.tolist() == pytest.approx([-1.5, -2.1, -4.0])
    assert beams.tolist() == [0, 1, 0] and tokens.tolist() == [1, 0, 0]


def test_the_greedy_cases_have_no_near_ties():
    """A student's forward pass may differ from the reference's in the last float bit: the arg max must not."""
    for B, T, seed, V in ((1, 5, 1, 40), (3, 7, 2, 40), (2, 1, 3, 40), (4, 20, 4, 100)):  # check_greedy_step's cases
        model, ids = ch09._decoder(seed, vocab_size=V), randint(V, B, T, seed=seed)
        with torch.no_grad():
            top2 = model(ids).logits[:, -1].topk(2).values  # (B, 2)
        assert (top2[:, 0] - top2[:, 1]).min() > 1e-3


def test_in_place_student_code_cannot_corrupt_the_reference():
    def softmax_in_place(logits, temperature):
        out = softmax_t(logits, temperature)
        logits.zero_()
        return out

    def greedy_in_place(model, input_ids):
        out = greedy(model, input_ids)
        input_ids.zero_()
        with torch.no_grad():
            model.tok.weight.zero_()
        return out

    assert ch09.check_softmax_with_temperature(softmax_in_place) is True
    assert ch09.check_greedy_step(greedy_in_place) is True
