"""The checks of chapter 05's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import random
from collections import defaultdict

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


def balanced_sample(labels, n, seed):
    rng = random.Random(seed)
    by_class = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[label].append(i)
    classes = sorted(by_class)
    for c in classes:
        rng.shuffle(by_class[c])
    extra = set(rng.sample(classes, n % len(classes)))
    return [i for c in classes for i in by_class[c][: n // len(classes) + (c in extra)]]


def sample_first_of_each_class(labels, n, seed):  # balanced but ignores the seed
    return balanced_sample(labels, n, seed=0)


def sample_uniform(labels, n, seed):  # random but not balanced
    return random.Random(seed).sample(range(len(labels)), n)


def sample_unseeded(labels, n, seed):  # balanced, but a new draw at every call
    return balanced_sample(labels, n, seed=random.randrange(10**9))


def sample_extra_to_first_classes(labels, n, seed):  # puts every remainder on class 0: unbalanced by 2 when n%k>1
    picks = balanced_sample(labels, n - n % len(set(labels)), seed)
    spare = [i for i, label in enumerate(labels) if label == min(labels) and i not in picks]
    return picks + spare[: n % len(set(labels))]


def sample_with_repeats(labels, n, seed):
    picks = balanced_sample(labels, n, seed)
    return picks[:-1] + picks[:1] if n > 1 else picks


def sample_sorting_labels(labels, n, seed):  # modifies the caller's list
    labels.sort()
    return balanced_sample(labels, n, seed)


CHECKS = [
    (ch05.check_classifier_head, head),
    (ch05.check_switch_counts, counts),
    (ch05.check_balanced_sample, balanced_sample),
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
    (ch05.check_balanced_sample, sample_first_of_each_class),
    (ch05.check_balanced_sample, sample_uniform),
    (ch05.check_balanced_sample, sample_unseeded),
    (ch05.check_balanced_sample, sample_extra_to_first_classes),
    (ch05.check_balanced_sample, sample_with_repeats),
    (ch05.check_balanced_sample, sample_sorting_labels),
]

globals().update(contract_tests(CHECKS, WRONG))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


def test_wrong_shapes_and_types_are_reported():
    with pytest.raises(AssertionError, match="expected shape"):
        ch05.check_classifier_head(lambda h, *w: head(h, *w)[0])
    with pytest.raises(AssertionError, match="expected 2 outputs"):
        ch05.check_switch_counts(lambda *a: sum(counts(*a)))
    with pytest.raises(AssertionError, match="first output: expected a whole number"):
        ch05.check_switch_counts(lambda *a: (counts(*a)[0] + 0.5, counts(*a)[1]))
    with pytest.raises(AssertionError, match="returned None"):
        ch05.check_balanced_sample(lambda labels, n, seed: None)
    with pytest.raises(AssertionError, match="must lie in"):
        ch05.check_balanced_sample(lambda labels, n, seed: [i + len(labels) for i in balanced_sample(labels, n, seed)])


def test_answers_as_floats_tensors_and_lists_are_accepted():
    assert ch05.check_switch_counts(lambda *a: [float(x) for x in counts(*a)]) is True
    assert ch05.check_switch_counts(lambda *a: tuple(torch.tensor(x) for x in counts(*a))) is True
    assert ch05.check_balanced_sample(lambda *a: torch.tensor(balanced_sample(*a))) is True


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
