"""Chapter 01 exercise checks: a correct solution passes, a wrong one fails loudly, a stub is "not attempted"."""

import math

import pytest
import torch

from course_utils.exercises import ch01


def stub(*args):
    raise NotImplementedError


# Correct solutions, written as a student would (not with course_utils).
def softmax(s):
    e = torch.exp(s - s.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def attention(x, Q, K, V):
    q, k, v = x @ Q.T, x @ K.T, x @ V.T  # (L, d)
    alpha = softmax(q @ k.T)  # (L, L): alpha[i, j] = softmax_j(q_i^T k_j)
    return alpha @ v, alpha


def attention_loop(x, Q, K, V):
    """Eq. (1) literally, one token at a time."""
    ys, alphas = [], []
    for i in range(x.shape[0]):
        q_i = Q @ x[i]
        s_i = torch.stack([q_i @ (K @ x[j]) for j in range(x.shape[0])])
        alpha_i = softmax(s_i)
        ys.append(sum(alpha_i[j] * (V @ x[j]) for j in range(x.shape[0])))
        alphas.append(alpha_i)
    return torch.stack(ys), torch.stack(alphas)


def causal(L):
    return torch.tril(torch.ones(L, L, dtype=torch.bool))


def split_heads(x, n_heads):
    B, L, d = x.shape
    return x.view(B, L, n_heads, d // n_heads).transpose(1, 2)  # (B, H, L, d_head)


# Wrong solutions: the classic mistakes.
def softmax_naive(s):  # overflows on large scores
    return torch.exp(s) / torch.exp(s).sum(dim=-1, keepdim=True)


def softmax_wrong_dim(s):
    return torch.softmax(s, dim=0)


def attention_scaled(x, Q, K, V):  # the Transformer's scaling, not eq. (1)
    q, k, v = x @ Q.T, x @ K.T, x @ V.T
    alpha = torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1)
    return alpha @ v, alpha


def attention_transposed(x, Q, K, V):  # softmax over the queries instead of the keys
    q, k, v = x @ Q.T, x @ K.T, x @ V.T
    alpha = torch.softmax(q @ k.T, dim=0)
    return alpha @ v, alpha


def causal_upper(L):
    return torch.triu(torch.ones(L, L, dtype=torch.bool))


def causal_strict(L):  # a token must see itself
    return torch.tril(torch.ones(L, L, dtype=torch.bool), diagonal=-1)


def causal_float(L):
    return torch.tril(torch.ones(L, L))


def split_heads_reshape(x, n_heads):  # right shape, tokens and heads mixed up
    B, L, d = x.shape
    return x.reshape(B, n_heads, L, d // n_heads)


CHECKS = {
    "softmax": (ch01.check_softmax, [softmax], [softmax_naive, softmax_wrong_dim]),
    "attention": (ch01.check_attention, [attention, attention_loop], [attention_scaled, attention_transposed]),
    "causal": (ch01.check_causal_mask, [causal], [causal_upper, causal_strict, causal_float]),
    "split": (ch01.check_split_heads, [split_heads], [split_heads_reshape]),
}


@pytest.mark.parametrize("name", CHECKS)
def test_correct_solutions_pass(name, capsys):
    check, good, _ = CHECKS[name]
    for fn in good:
        assert check(fn) is True
        assert "correct on all" in capsys.readouterr().out


@pytest.mark.parametrize("name", CHECKS)
def test_wrong_solutions_raise(name):
    check, _, bad = CHECKS[name]
    for fn in bad:
        with pytest.raises(AssertionError):
            check(fn)


@pytest.mark.parametrize("name", CHECKS)
def test_stub_is_not_attempted(name, capsys):
    check, _, _ = CHECKS[name]
    assert check(stub) is False
    assert "not attempted yet" in capsys.readouterr().out


def test_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match="shape"):
        ch01.check_split_heads(lambda x, h: x)


def test_causal_mask_dtype_is_reported():
    with pytest.raises(AssertionError, match="boolean"):
        ch01.check_causal_mask(causal_float)


def test_inputs_are_not_shared_with_the_student():
    """A student function that writes into its input cannot corrupt the reference's input."""

    def softmax_in_place(s):
        s -= s.max(dim=-1, keepdim=True).values
        return torch.softmax(s, dim=-1)

    assert ch01.check_softmax(softmax_in_place) is True


@pytest.mark.parametrize("check", [ch01.check_softmax, ch01.check_attention, ch01.check_causal_mask,
                                   ch01.check_split_heads])
def test_not_a_function_raises(check):
    with pytest.raises(TypeError, match="fn must be a function"):
        check("softmax")


def test_checks_do_not_touch_the_global_random_state():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    ch01.check_attention(attention)
    assert torch.equal(torch.get_rng_state(), before)
