"""The checks of chapter 01's exercises: right answers pass, wrong ones fail loudly, stubs are "not attempted"."""

import math

import pytest
import torch

from course_utils.exercises import ch01
from exercise_contract import contract_tests  # tests/exercise_contract.py

# ---------------------------------------------------------------- solutions, right and wrong


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


CHECKS = [
    (ch01.check_softmax, softmax),
    (ch01.check_attention, attention),
    (ch01.check_causal_mask, causal),
    (ch01.check_split_heads, split_heads),
]

WRONG = [
    (ch01.check_softmax, softmax_naive),
    (ch01.check_softmax, softmax_wrong_dim),
    (ch01.check_attention, attention_scaled),
    (ch01.check_attention, attention_transposed),
    (ch01.check_causal_mask, causal_upper),
    (ch01.check_causal_mask, causal_strict),
    (ch01.check_causal_mask, causal_float),
    (ch01.check_split_heads, split_heads_reshape),
]

globals().update(contract_tests(CHECKS, WRONG))  # the shared contract: test_a_right_solution_passes, ...

# ---------------------------------------------------------------- tests


def test_other_right_solutions_pass():
    assert ch01.check_attention(attention_loop) is True


def test_wrong_shapes_and_dtypes_are_reported():
    with pytest.raises(AssertionError, match=r"expected shape \(2, 3, 5, 4\), got shape \(2, 5, 12\)"):
        ch01.check_split_heads(lambda x, h: x)
    with pytest.raises(AssertionError, match="expected a boolean tensor"):
        ch01.check_causal_mask(causal_float)
    with pytest.raises(AssertionError, match="expected 2 outputs"):
        ch01.check_attention(lambda *args: attention(*args)[0])


def test_inputs_are_not_shared_with_the_student():
    """A student function that writes into its input cannot corrupt the reference's input."""

    def softmax_in_place(s):
        s -= s.max(dim=-1, keepdim=True).values
        return torch.softmax(s, dim=-1)

    assert ch01.check_softmax(softmax_in_place) is True


def test_a_message_names_the_check_the_case_its_inputs_and_the_mistake():
    with pytest.raises(AssertionError) as error:
        ch01.check_split_heads(lambda x, n_heads: None)
    assert str(error.value) == ("split heads, case 0 (x=tensor of shape (2, 5, 12), n_heads=3): "
                                "your function returned None (did you forget `return`?)")
    with pytest.raises(AssertionError, match=r"causal mask, case 2 \(length=5\): wrong values in 10 of 25 entries"):
        ch01.check_causal_mask(lambda L: causal(L) if L < 5 else torch.ones(L, L, dtype=torch.bool))
    with pytest.raises(AssertionError, match=r"softmax, case 0 \(s=tensor of shape \(5,\)\): expected a torch.Tensor, "
                                             r"got list \[0.611823, "):
        ch01.check_softmax(lambda s: softmax(s).tolist())
