"""The checks of chapter 05's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import pytest
import torch

from course_utils.exercises import ch05
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


def head(h, W_pool, b_pool, W_cls, b_cls):
    pooled = torch.tanh(h[:, 0] @ W_pool.T + b_pool)  # (B, d): the [CLS] vector, pooled
    return pooled @ W_cls.T + b_cls  # (B, n_labels)


def head_mean_pooled(h, W_pool, b_pool, W_cls, b_cls):  # averages the tokens instead of taking [CLS]
    return torch.tanh(h.mean(1) @ W_pool.T + b_pool) @ W_cls.T + b_cls


def head_last_token(h, W_pool, b_pool, W_cls, b_cls):  # [SEP] (the last position) instead of [CLS]
    return torch.tanh(h[:, -1] @ W_pool.T + b_pool) @ W_cls.T + b_cls


def head_no_tanh(h, W_pool, b_pool, W_cls, b_cls):
    return (h[:, 0] @ W_pool.T + b_pool) @ W_cls.T + b_cls


def head_untransposed(h, W_pool, b_pool, W_cls, b_cls):  # W_pool applied as (in, out)
    return torch.tanh(h[:, 0] @ W_pool + b_pool) @ W_cls.T + b_cls


def head_no_pooler(h, W_pool, b_pool, W_cls, b_cls):
    return h[:, 0] @ W_cls.T + b_cls


def counts(V, d, n_labels):
    mlm = (d * d + d) + 2 * d + V  # dense, LayerNorm (gain, bias), output bias; the output matrix is tied
    nsp = 2 * d + 2
    return mlm + nsp, n_labels * d + n_labels


def counts_untied(V, d, n_labels):  # drops the tied output matrix too (it is the token embedding: it stays)
    dropped, new = counts(V, d, n_labels)
    return dropped + V * d, new


def counts_no_output_bias(V, d, n_labels):
    dropped, new = counts(V, d, n_labels)
    return dropped - V, new


def counts_new_pooler(V, d, n_labels):  # the pooler is reused, not new
    dropped, new = counts(V, d, n_labels)
    return dropped, new + d * d + d


def counts_no_biases(V, d, n_labels):
    dropped, new = counts(V, d, n_labels)
    return dropped, new - n_labels


def counts_swapped(V, d, n_labels):
    return tuple(reversed(counts(V, d, n_labels)))


def groups(model, lr, encoder_lr):
    head = list(model.classifier.parameters())
    rest = [p for name, p in model.named_parameters() if not name.startswith("classifier.")]
    return [{"params": head, "lr": lr}, {"params": rest, "lr": encoder_lr}]


def groups_as_tuple_pooler_first(model, lr, encoder_lr):  # any order of the groups and of the parameters
    rest = list(model.pooler.parameters()) + list(model.encoder.parameters())
    return ({"params": rest, "lr": encoder_lr, "weight_decay": 0.01},
            {"params": list(model.classifier.parameters()), "lr": lr})


def groups_swapped_rates(model, lr, encoder_lr):  # the new head learns slowly, the encoder fast
    return groups(model, encoder_lr, lr)


def groups_pooler_as_head(model, lr, encoder_lr):  # the pooler is pre-trained: it belongs with the encoder
    head = list(model.pooler.parameters()) + list(model.classifier.parameters())
    return [{"params": head, "lr": lr}, {"params": list(model.encoder.parameters()), "lr": encoder_lr}]


def groups_missing_embeddings(model, lr, encoder_lr):  # forgets the embeddings: they would never be trained
    rest = [p for name, p in model.named_parameters() if not name.startswith(("classifier.", "encoder.embeddings."))]
    return [{"params": list(model.classifier.parameters()), "lr": lr}, {"params": rest, "lr": encoder_lr}]


def groups_twice(model, lr, encoder_lr):  # every parameter in the encoder's group, the head's too
    return [{"params": list(model.classifier.parameters()), "lr": lr},
            {"params": list(model.parameters()), "lr": encoder_lr}]


def groups_head_twice(model, lr, encoder_lr):  # two groups, but the encoder is in neither
    return [{"params": list(model.classifier.parameters()), "lr": lr},
            {"params": list(model.classifier.parameters()), "lr": encoder_lr}]


def groups_one(model, lr, encoder_lr):  # a single group: no split
    return [{"params": list(model.parameters()), "lr": lr}]


CHECKS = [
    (ch05.check_classifier_head, head),
    (ch05.check_switch_counts, counts),
    (ch05.check_param_groups, groups),
]

WRONG = [
    (ch05.check_classifier_head, head_mean_pooled),
    (ch05.check_classifier_head, head_last_token),
    (ch05.check_classifier_head, head_no_tanh),
    (ch05.check_classifier_head, head_untransposed),
    (ch05.check_classifier_head, head_no_pooler),
    (ch05.check_switch_counts, counts_untied),
    (ch05.check_switch_counts, counts_no_output_bias),
    (ch05.check_switch_counts, counts_new_pooler),
    (ch05.check_switch_counts, counts_no_biases),
    (ch05.check_switch_counts, counts_swapped),
    (ch05.check_param_groups, groups_swapped_rates),
    (ch05.check_param_groups, groups_pooler_as_head),
    (ch05.check_param_groups, groups_missing_embeddings),
    (ch05.check_param_groups, groups_twice),
    (ch05.check_param_groups, groups_one),
    (ch05.check_param_groups, groups_head_twice),
]

globals().update(contract_tests(CHECKS, WRONG, structured=(ch05.check_param_groups,)))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


def test_wrong_shapes_and_types_are_reported():
    with pytest.raises(AssertionError, match="expected shape"):
        ch05.check_classifier_head(lambda h, *w: head(h, *w)[0])
    with pytest.raises(AssertionError, match="expected 2 outputs"):
        ch05.check_switch_counts(lambda *a: sum(counts(*a)))
    with pytest.raises(AssertionError, match="first output: expected a whole number"):
        ch05.check_switch_counts(lambda *a: (counts(*a)[0] + 0.5, counts(*a)[1]))
    with pytest.raises(AssertionError, match="returned None"):
        ch05.check_param_groups(lambda model, lr, encoder_lr: None)
    with pytest.raises(AssertionError, match="expected a list of two dicts with keys 'params' and 'lr'"):
        ch05.check_param_groups(lambda model, lr, encoder_lr: [list(model.parameters()), []])
    with pytest.raises(AssertionError, match="a parameter appears twice"):
        ch05.check_param_groups(lambda m, lr, e: [{"params": [*m.classifier.parameters()] * 2, "lr": lr},
                                                 groups(m, lr, e)[1]])


def test_answers_as_floats_tensors_and_lists_are_accepted():
    assert ch05.check_switch_counts(lambda *a: [float(x) for x in counts(*a)]) is True
    assert ch05.check_switch_counts(lambda *a: tuple(torch.tensor(x) for x in counts(*a))) is True
    assert ch05.check_param_groups(groups_as_tuple_pooler_first) is True


def test_reference_counts_match_the_shipped_sizes():
    assert ch05.switch_counts(8000, 128, 6) == counts(8000, 128, 6) == (25_026, 774)
    assert ch05.switch_counts(30522, 768, 3) == counts(30522, 768, 3)


def test_in_place_student_code_cannot_corrupt_the_reference():
    def in_place(h, W_pool, b_pool, W_cls, b_cls):
        out = head(h, W_pool, b_pool, W_cls, b_cls)
        h.zero_()
        W_cls.mul_(2.0)
        return out

    assert ch05.check_classifier_head(in_place) is True


@pytest.mark.parametrize("args, error, match", [
    ((0, 128, 6), ValueError, "vocab_size must be >= 1, got 0"),
    ((8000, 128.0, 6), TypeError, "d_model must be an int"),
    ((8000, 128, True), TypeError, "n_labels must be an int"),
])
def test_reference_counts_reject_bad_sizes(args, error, match):
    with pytest.raises(error, match=match):
        ch05.switch_counts(*args)
