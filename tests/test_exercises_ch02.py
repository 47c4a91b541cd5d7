"""The checks of chapter 02's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.exercises import ch02
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


def layer_norm(x, gain, bias, eps):
    mu = x.mean(-1, keepdim=True)  # (..., 1)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased, 1/d
    return gain * (x - mu) / torch.sqrt(var + eps) + bias


def layer_norm_unbiased(x, gain, bias, eps):  # the classic slip: torch.std / var default to 1/(d-1)
    return gain * (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) + bias


def layer_norm_no_eps(x, gain, bias, eps):  # eq. (3) taken literally
    return gain * (x - x.mean(-1, keepdim=True)) / x.std(-1, unbiased=False, keepdim=True) + bias


def layer_norm_no_affine(x, gain, bias, eps):  # the lecture's eq. (3): forgets gain and bias
    return layer_norm(x, 1.0, 0.0, eps)


def layer_norm_eps_outside(x, gain, bias, eps):  # sigma + eps instead of sqrt(sigma^2 + eps)
    mu = x.mean(-1, keepdim=True)
    return gain * (x - mu) / (x.std(-1, unbiased=False, keepdim=True) + eps) + bias


ACTS = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda z: F.gelu(z, approximate="tanh")}


def feed_forward(y, W1, b1, W2, b2, activation):
    z = ACTS[activation](y @ W1.T + b1)  # (..., d_ff)
    return z @ W2.T + b2  # (..., d_model)


def feed_forward_always_relu(y, W1, b1, W2, b2, activation):
    return feed_forward(y, W1, b1, W2, b2, "relu")


def feed_forward_exact_gelu(y, W1, b1, W2, b2, activation):  # GPT-2's tanh approximation replaced by erf
    return feed_forward(y, W1, b1, W2, b2, "gelu" if activation == "gelu_tanh" else activation)


def feed_forward_untransposed(y, W1, b1, W2, b2, activation):  # y @ W1 instead of y @ W1.T: wrong or a shape error
    try:
        return ACTS[activation](y @ W1.reshape(W1.shape[1], W1.shape[0]) + b1) @ W2.reshape(W2.shape[1], -1) + b2
    except RuntimeError as err:
        raise AssertionError(str(err)) from err


def gpt2_count(V, P, d, n_layers, d_ff):
    attention = 4 * d * d + 4 * d  # Q, K, V and output projections, with biases
    ffn = 2 * d * d_ff + d_ff + d  # eq. (2)
    norms = 2 * 2 * d  # two LayerNorms, gain and bias
    return (V + P) * d + n_layers * (attention + ffn + norms) + 2 * d  # + final LayerNorm; the head is tied


def gpt2_count_untied(V, P, d, n_layers, d_ff):
    return gpt2_count(V, P, d, n_layers, d_ff) + V * d


def gpt2_count_no_final_norm(V, P, d, n_layers, d_ff):
    return gpt2_count(V, P, d, n_layers, d_ff) - 2 * d


def gpt2_count_4d(V, P, d, n_layers, d_ff):
    return gpt2_count(V, P, d, n_layers, 4 * d)


def gpt2_count_no_biases(V, P, d, n_layers, d_ff):
    return gpt2_count(V, P, d, n_layers, d_ff) - n_layers * (4 * d + d_ff + d)


CHECKS = [
    (ch02.check_layer_norm, layer_norm),
    (ch02.check_feed_forward, feed_forward),
    (ch02.check_param_count, gpt2_count),
]

WRONG = [
    (ch02.check_layer_norm, layer_norm_unbiased),
    (ch02.check_layer_norm, layer_norm_no_eps),
    (ch02.check_layer_norm, layer_norm_no_affine),
    (ch02.check_layer_norm, layer_norm_eps_outside),
    (ch02.check_feed_forward, feed_forward_always_relu),
    (ch02.check_feed_forward, feed_forward_exact_gelu),
    (ch02.check_feed_forward, feed_forward_untransposed),
    (ch02.check_param_count, gpt2_count_untied),
    (ch02.check_param_count, gpt2_count_no_final_norm),
    (ch02.check_param_count, gpt2_count_4d),
    (ch02.check_param_count, gpt2_count_no_biases),
]

globals().update(contract_tests(CHECKS, WRONG))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


def test_wrong_shape_and_wrong_type_are_reported():
    with pytest.raises(AssertionError, match="expected shape"):
        ch02.check_layer_norm(lambda x, g, b, eps: layer_norm(x, g, b, eps).mean(-1))
    with pytest.raises(AssertionError, match="whole number"):
        ch02.check_param_count(lambda *a: gpt2_count(*a) + 0.5)
    with pytest.raises(AssertionError, match="whole number"):
        ch02.check_param_count(lambda *a: "many")
    with pytest.raises(AssertionError, match="your output is NaN"):
        ch02.check_param_count(lambda *a: float("nan"))


def test_param_count_accepts_floats_and_tensors_that_are_whole():
    assert ch02.check_param_count(lambda *a: float(gpt2_count(*a))) is True
    assert ch02.check_param_count(lambda *a: torch.tensor(gpt2_count(*a))) is True


def test_reference_count_matches_the_published_checkpoints():
    assert ch02.gpt2_param_count(50257, 1024, 768, 12, 3072) == 124_439_808  # gpt2, SPECS section 7
    assert ch02.gpt2_param_count(100, 32, 16, 2, 64) == gpt2_count(100, 32, 16, 2, 64) == 8_704


def test_in_place_student_code_cannot_corrupt_the_reference():
    def in_place(x, gain, bias, eps):
        y = layer_norm(x, gain, bias, eps)
        x.zero_()
        gain.zero_()
        return y

    def ffn_in_place(y, W1, b1, W2, b2, activation):
        out = feed_forward(y, W1, b1, W2, b2, activation)
        W1.mul_(2.0)
        return out

    assert ch02.check_layer_norm(in_place) is True
    assert ch02.check_feed_forward(ffn_in_place) is True


@pytest.mark.parametrize("args, error, match", [
    ((0, 32, 16, 2, 64), ValueError, "vocab_size must be >= 1, got 0"),
    ((100, 32, 16.0, 2, 64), TypeError, "d_model must be an int"),
    ((100, 32, 16, True, 64), TypeError, "n_layers must be an int"),
    ((100, 32, 16, 2, -1), ValueError, "d_ff must be >= 1"),
])
def test_reference_count_rejects_bad_sizes(args, error, match):
    with pytest.raises(error, match=match):
        ch02.gpt2_param_count(*args)
