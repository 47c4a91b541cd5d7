"""The checks of chapter 03's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.exercises import ch03
from course_utils.objectives import IGNORE_INDEX, SkipGram, keep_probability, mask_tokens, sgns_loss
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


def sgns(v_w, u_pos, u_neg, use):
    positive = F.logsigmoid((u_pos * v_w).sum(-1))  # (N,)
    negative = F.logsigmoid(-torch.einsum("nkd,nd->nk", u_neg, v_w))  # (N, K)
    return -(positive + (negative * use).sum(-1)).mean()


def sgns_ignores_use(v_w, u_pos, u_neg, use):  # skipped negatives counted anyway
    return sgns(v_w, u_pos, u_neg, torch.ones_like(use))


def sgns_summed(v_w, u_pos, u_neg, use):  # the sum over pairs, not the mean
    return sgns(v_w, u_pos, u_neg, use) * v_w.shape[0]


def sgns_sign_slip(v_w, u_pos, u_neg, use):  # log sigma(+u.v) for the negatives
    negative = F.logsigmoid(torch.einsum("nkd,nd->nk", u_neg, v_w))
    return -(F.logsigmoid((u_pos * v_w).sum(-1)) + (negative * use).sum(-1)).mean()


def sgns_naive_log(v_w, u_pos, u_neg, use):  # log(sigmoid(.)): -inf for large negative dot products
    positive = torch.log(torch.sigmoid((u_pos * v_w).sum(-1)))
    negative = torch.log(torch.sigmoid(-torch.einsum("nkd,nd->nk", u_neg, v_w)))
    return -(positive + (negative * use).sum(-1)).mean()


def subsample(sentence, counts, sample, u):
    z = counts / counts.sum()
    keep = (sample / z).sqrt() + sample / z
    return sentence[keep[sentence] >= u]


def subsample_clamped(sentence, counts, sample, u):  # capping the probability at 1 changes nothing
    z = counts / counts.sum()
    return sentence[((sample / z).sqrt() + sample / z).clamp(max=1.0)[sentence] >= u]


def subsample_paper(sentence, counts, sample, u):  # the paper's 1 - P_discard = sqrt(t / z)
    z = counts / counts.sum()
    return sentence[(sample / z).sqrt()[sentence] >= u]


def subsample_inverted(sentence, counts, sample, u):  # drops what should be kept
    z = counts / counts.sum()
    return sentence[((sample / z).sqrt() + sample / z)[sentence] < u]


def subsample_counts_not_frequencies(sentence, counts, sample, u):  # z = c_w instead of c_w / N
    keep = (sample / counts).sqrt() + sample / counts
    return sentence[keep[sentence] >= u]


def corrupt(input_ids, special_ids, mask_id, u_select, u_action, random_ids):
    special = torch.isin(input_ids, torch.tensor(list(special_ids)))
    selected = (u_select < 0.15) & ~special
    inputs = input_ids.clone()
    inputs[selected & (u_action < 0.8)] = mask_id
    rand = selected & (u_action >= 0.8) & (u_action < 0.9)
    inputs[rand] = random_ids[rand]
    labels = torch.full_like(input_ids, -100)
    labels[selected] = input_ids[selected]
    return inputs, labels


def corrupt_specials_selected(input_ids, special_ids, mask_id, u_select, u_action, random_ids):
    return corrupt(input_ids, [], mask_id, u_select, u_action, random_ids)


def corrupt_labels_only_on_mask(input_ids, special_ids, mask_id, u_select, u_action, random_ids):
    inputs, labels = corrupt(input_ids, special_ids, mask_id, u_select, u_action, random_ids)
    return inputs, torch.where(inputs == mask_id, labels, -100)  # forgets the random and unchanged tokens


def corrupt_random_and_keep_swapped(input_ids, special_ids, mask_id, u_select, u_action, random_ids):
    return corrupt(input_ids, special_ids, mask_id, u_select, torch.where(u_action >= 0.8, 1.7 - u_action, u_action),
                   random_ids)


def corrupt_in_place(input_ids, special_ids, mask_id, u_select, u_action, random_ids):  # labels from the output
    special = torch.isin(input_ids, torch.tensor(list(special_ids)))
    selected = (u_select < 0.15) & ~special
    input_ids[selected & (u_action < 0.8)] = mask_id
    return input_ids, torch.where(selected, input_ids, -100)


def mlm_loss(logits, labels):
    selected = labels != -100
    log_p = torch.log_softmax(logits[selected], dim=-1)  # (n, V)
    return -log_p.gather(1, labels[selected][:, None]).mean()


def mlm_loss_summed(logits, labels):  # the lecture's sum
    return mlm_loss(logits, labels) * (labels != -100).sum()


def mlm_loss_over_all_positions(logits, labels):  # divides by B * L
    return mlm_loss_summed(logits, labels) / labels.numel()


def mlm_loss_naive_softmax(logits, labels):  # softmax(...).log(): -inf for large logits
    selected = labels != -100
    p = torch.softmax(logits[selected], dim=-1)
    return -p.log().gather(1, labels[selected][:, None]).mean()


CHECKS = [
    (ch03.check_sgns_loss, sgns),
    (ch03.check_subsample, subsample),
    (ch03.check_corrupt, corrupt),
    (ch03.check_mlm_loss, mlm_loss),
]

WRONG = [
    (ch03.check_sgns_loss, sgns_ignores_use),
    (ch03.check_sgns_loss, sgns_summed),
    (ch03.check_sgns_loss, sgns_sign_slip),
    (ch03.check_sgns_loss, sgns_naive_log),
    (ch03.check_subsample, subsample_paper),
    (ch03.check_subsample, subsample_inverted),
    (ch03.check_subsample, subsample_counts_not_frequencies),
    (ch03.check_corrupt, corrupt_specials_selected),
    (ch03.check_corrupt, corrupt_labels_only_on_mask),
    (ch03.check_corrupt, corrupt_random_and_keep_swapped),
    (ch03.check_corrupt, corrupt_in_place),
    (ch03.check_mlm_loss, mlm_loss_summed),
    (ch03.check_mlm_loss, mlm_loss_over_all_positions),
    (ch03.check_mlm_loss, mlm_loss_naive_softmax),
]

globals().update(contract_tests(CHECKS, WRONG))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


def test_equivalent_solutions_pass():
    assert ch03.check_subsample(subsample_clamped) is True
    with pytest.raises(AssertionError, match="uses `cross_entropy`"):  # right, but the exercise asks for it by hand
        ch03.check_mlm_loss(lambda logits, labels: F.cross_entropy(logits.flatten(0, 1), labels.flatten()))


def test_wrong_shapes_are_reported():
    with pytest.raises(AssertionError, match=r"expected a single number \(shape \(\)\), got shape \(2, 8\)"):
        ch03.check_mlm_loss(lambda logits, labels: -torch.log_softmax(logits, -1).amax(-1))
    with pytest.raises(AssertionError, match="expected 2 outputs"):
        ch03.check_corrupt(lambda *args: corrupt(*args)[0])


# ---------------------------------------------------------------- the references are the course's truth


def test_sgns_reference_is_the_formula_and_sgns_loss():
    g = torch.Generator().manual_seed(0)
    v, u_pos, u_neg = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g), torch.randn(6, 3, 4, generator=g)
    use = torch.tensor([[True, False, True]] * 6)
    assert torch.allclose(ch03.sgns_reference(v, u_pos, u_neg, use), sgns(v, u_pos, u_neg, use), atol=1e-6)
    model = SkipGram(10, 4)  # and on a model's own tables: the same as sgns_loss
    centers, contexts = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    negatives, use = torch.tensor([[7, 8], [9, 1], [2, 2]]), torch.tensor([[True, True], [True, False], [True, True]])
    with torch.no_grad():
        model.out.weight.normal_(generator=g)
        expected = sgns_loss(model, centers, contexts, negatives, use)
        inp, out = model.inp.weight, model.out.weight
        got = ch03.sgns_reference(inp[contexts], out[centers], out[negatives], use)
    assert torch.allclose(got, expected, atol=1e-6)


def test_subsample_reference_keeps_rare_words_and_drops_frequent_ones():
    counts = torch.tensor([10_000, 10, 5])
    sentence = torch.tensor([0, 1, 2] * 1000)
    u = torch.rand(len(sentence), generator=torch.Generator().manual_seed(0))
    kept = ch03.subsample_reference(sentence, counts, 1e-3, u)
    assert (torch.bincount(kept, minlength=3)[1:] == 1000).all()  # count <= s N = 10.015: always kept
    rate = (kept == 0).sum().item() / 1000
    assert abs(rate - keep_probability(counts, 1e-3)[0].item()) < 0.05


def test_corrupt_reference_has_the_rates_of_mask_tokens():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (512, 128), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3
    u_select, u_action = torch.rand(ids.shape, generator=g), torch.rand(ids.shape, generator=g)
    ours, ours_labels = ch03.corrupt_reference(ids, range(5), 4, u_select, u_action,
                                               torch.randint(1000, ids.shape, generator=g))
    theirs, theirs_labels = mask_tokens(ids, mask_token_id=4, vocab_size=1000, special_token_ids=range(5), generator=g)

    def rates(inputs, labels):
        selected = labels != IGNORE_INDEX
        n = selected.sum().item()
        masked = (selected & (inputs == 4)).sum().item() / n
        unchanged = (selected & (inputs == ids)).sum().item() / n
        return torch.tensor([n / ids[:, 1:-1].numel(), masked, unchanged, 1 - masked - unchanged])

    assert (rates(ours, ours_labels) - torch.tensor([0.15, 0.8, 0.1, 0.1])).abs().max() < 0.015
    assert (rates(ours, ours_labels) - rates(theirs, theirs_labels)).abs().max() < 0.02
    assert (ours_labels[:, [0, -1]] == IGNORE_INDEX).all()


def test_corrupt_reference_leaves_its_input_alone():
    ids = torch.tensor([[2, 10, 11, 12, 3, 0]])
    before = ids.clone()
    inputs, labels = ch03.corrupt_reference(ids, range(5), 4, torch.zeros(1, 6), torch.zeros(1, 6),
                                            torch.full((1, 6), 7))
    assert torch.equal(ids, before)
    assert inputs.tolist() == [[2, 4, 4, 4, 3, 0]] and labels.tolist() == [[-100, 10, 11, 12, -100, -100]]


def test_in_place_student_code_cannot_corrupt_the_reference():
    def sgns_in_place(v_w, u_pos, u_neg, use):
        loss = sgns(v_w, u_pos, u_neg, use)
        v_w.zero_()
        use.fill_(False)
        return loss

    def mlm_in_place(logits, labels):
        loss = mlm_loss(logits, labels)
        labels.fill_(-100)
        return loss

    assert ch03.check_sgns_loss(sgns_in_place) is True
    assert ch03.check_mlm_loss(mlm_in_place) is True
