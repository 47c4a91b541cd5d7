"""The checks of chapter 06's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import pytest
import torch
import torch.nn.functional as F

from course_utils import set_seed
from course_utils.attention import causal_mask
from course_utils.exercises import ch06
from course_utils.models import Decoder
from course_utils.pretrain import lm_loss as pretrain_lm_loss
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


def cached_mask(L, T):
    return torch.ones(L, T, dtype=torch.bool).tril(diagonal=T - L)


def cached_mask_loop(L, T):  # query i is position T - L + i and sees keys j <= T - L + i
    return torch.tensor([[j <= T - L + i for j in range(T)] for i in range(L)])


def cached_mask_upper_left(L, T):  # torch's is_causal alignment: wrong once keys are cached
    return torch.ones(L, T, dtype=torch.bool).tril()


def cached_mask_strict(L, T):  # a query may not see itself
    return torch.ones(L, T, dtype=torch.bool).tril(diagonal=T - L - 1)


def cached_mask_future(L, T):  # True where attention is forbidden
    return ~cached_mask(L, T)


def cached_mask_square(L, T):  # forgets the cached keys
    return torch.ones(L, L, dtype=torch.bool).tril()


def log_likelihood(logits, ids):
    log_p = F.log_softmax(logits[:, :-1], dim=-1)  # (B, L - 1, V): position t predicts token t + 1
    return log_p.gather(-1, ids[:, 1:, None]).squeeze(-1).sum(-1)


def log_likelihood_loop(logits, ids):  # the product of the lecture, one factor at a time, in log space
    B, L, _ = logits.shape
    return torch.stack([sum(torch.log_softmax(logits[b, i - 1], -1)[ids[b, i]] for i in range(1, L))
                        for b in range(B)])


def log_likelihood_no_shift(logits, ids):  # scores each token with the logits at its own position
    return F.log_softmax(logits, dim=-1).gather(-1, ids[..., None]).squeeze(-1).sum(-1)


def log_likelihood_naive(logits, ids):  # log of a softmax that underflows to 0 for confident logits
    p = torch.softmax(logits[:, :-1], dim=-1)
    return torch.log(p.gather(-1, ids[:, 1:, None]).squeeze(-1)).sum(-1)


def log_likelihood_mean(logits, ids):  # a mean per token instead of the sum of the factorisation
    return log_likelihood(logits, ids) / (ids.shape[1] - 1)


def log_likelihood_batch_total(logits, ids):  # one number for the batch
    return log_likelihood(logits, ids).sum()


def lm_loss(logits, ids, attention_mask):
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")  # (B, L - 1)
    real = attention_mask[:, 1:].float()
    return (nll * real).sum() / real.sum()


def lm_loss_ignore_index(logits, ids, attention_mask):
    targets = ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1))


def lm_loss_with_padding(logits, ids, attention_mask):  # pads counted as targets
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())


def lm_loss_no_shift(logits, ids, attention_mask):
    targets = ids.masked_fill(attention_mask == 0, -100)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def lm_loss_mask_of_inputs(logits, ids, attention_mask):  # masks by the input position, not the target's
    targets = ids[:, 1:].masked_fill(attention_mask[:, :-1] == 0, -100)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten())


def lm_loss_mean_of_rows(logits, ids, attention_mask):  # each sequence weighs the same, whatever its length
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
    real = attention_mask[:, 1:].float()
    rows = real.sum(-1) > 0
    return ((nll * real).sum(-1)[rows] / real.sum(-1)[rows]).mean()


def lm_loss_sum(logits, ids, attention_mask):
    return lm_loss(logits, ids, attention_mask) * attention_mask[:, 1:].sum()


CHECKS = [
    (ch06.check_cached_causal_mask, cached_mask),
    (ch06.check_sequence_log_likelihood, log_likelihood),
    (ch06.check_lm_loss, lm_loss),
]

WRONG = [
    (ch06.check_cached_causal_mask, cached_mask_upper_left),
    (ch06.check_cached_causal_mask, cached_mask_strict),
    (ch06.check_cached_causal_mask, cached_mask_future),
    (ch06.check_cached_causal_mask, cached_mask_square),
    (ch06.check_sequence_log_likelihood, log_likelihood_no_shift),
    (ch06.check_sequence_log_likelihood, log_likelihood_naive),
    (ch06.check_sequence_log_likelihood, log_likelihood_mean),
    (ch06.check_sequence_log_likelihood, log_likelihood_batch_total),
    (ch06.check_lm_loss, lm_loss_with_padding),
    (ch06.check_lm_loss, lm_loss_no_shift),
    (ch06.check_lm_loss, lm_loss_mask_of_inputs),
    (ch06.check_lm_loss, lm_loss_mean_of_rows),
    (ch06.check_lm_loss, lm_loss_sum),
]

globals().update(contract_tests(CHECKS, WRONG))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("check, solution", [
    (ch06.check_cached_causal_mask, cached_mask_loop),
    (ch06.check_sequence_log_likelihood, log_likelihood_loop),
    (ch06.check_lm_loss, lm_loss_ignore_index),
])
def test_other_right_solutions_pass(check, solution):
    assert check(solution) is True


def test_wrong_output_types_are_reported():
    with pytest.raises(AssertionError, match="boolean"):
        ch06.check_cached_causal_mask(lambda L, T: cached_mask(L, T).float())
    with pytest.raises(AssertionError, match=r"expected a torch.Tensor, got list \[-11.23"):
        ch06.check_sequence_log_likelihood(lambda logits, ids: log_likelihood(logits, ids).tolist())
    with pytest.raises(AssertionError, match="single number"):
        ch06.check_lm_loss(lambda logits, ids, mask: F.cross_entropy(logits.flatten(0, 1), ids.flatten(),
                                                                     reduction="none"))


def test_references_agree_with_the_decoder_and_pretrain():
    set_seed(0)
    model = Decoder(50, d_model=16, n_heads=2, n_layers=2, max_len=12).eval()
    ids = torch.randint(50, (3, 9))
    full = torch.ones_like(ids)
    with torch.no_grad():
        logits = model(ids).logits  # (3, 9, 50)
        # pretrain's loss runs the model on ids[:, :-1]; a causal model gives the same logits there
        assert torch.allclose(ch06.lm_loss(logits, ids, full), pretrain_lm_loss(model, ids), atol=1e-5)
        factors = [torch.log_softmax(model(ids[:1, :i]).logits[0, -1], -1)[ids[0, i]] for i in range(1, 9)]
    # the mean loss is minus the summed log-likelihood over all B (L - 1) targets
    total = ch06.sequence_log_likelihood(logits, ids).sum()
    assert torch.allclose(-total / (3 * 8), ch06.lm_loss(logits, ids, full).double(), atol=1e-5)
    # log P(x) of one sequence, one factor at a time, from a model fed growing prefixes
    assert torch.allclose(ch06.sequence_log_likelihood(logits[:1], ids[:1]), torch.stack(factors).sum().double(),
                          atol=1e-4)
    # padding a row leaves the loss of the real targets unchanged
    padded_ids, mask = ids.clone(), full.clone()
    padded_ids[0, 5:], mask[0, 5:] = 1, 0
    with torch.no_grad():
        padded_logits = model(padded_ids).logits  # causal: positions 0..4 of row 0 do not see the padding
    real = torch.cat([F.cross_entropy(padded_logits[0, :4], ids[0, 1:5], reduction="none"),
                      F.cross_entropy(logits[1:, :-1].flatten(0, 1), ids[1:, 1:].flatten(), reduction="none")])
    assert torch.allclose(ch06.lm_loss(padded_logits, padded_ids, mask), real.mean(), atol=1e-5)


def test_the_cached_mask_is_what_the_decoder_uses_with_a_cache():
    # 3 new queries behind 5 cached keys: the last 3 rows of the full causal mask (lower-right aligned)
    full = torch.ones(8, 8, dtype=torch.bool).tril()
    assert torch.equal(causal_mask(3, 8), full[5:])
    assert ch06.check_cached_causal_mask(lambda L, T: torch.ones(T, T, dtype=torch.bool).tril()[T - L:]) is True


def test_in_place_student_code_cannot_corrupt_the_reference():
    def log_likelihood_in_place(logits, ids):
        out = log_likelihood(logits, ids)
        logits.zero_()
        ids.zero_()
        return out

    def lm_loss_in_place(logits, ids, attention_mask):
        out = lm_loss(logits, ids, attention_mask)
        attention_mask.fill_(1)
        return out

    assert ch06.check_sequence_log_likelihood(log_likelihood_in_place) is True
    assert ch06.check_lm_loss(lm_loss_in_place) is True
