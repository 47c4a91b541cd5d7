"""Eq. (1), masks and multi-head attention, checked against torch."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.attention import (
    KVCache, MultiHeadAttention, causal_mask, padding_mask, scaled_dot_product_attention,
)
from course_utils.hf import mha_from_torch


@pytest.fixture
def qkv():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 5, 8, generator=g)  # (B, H, Lq, d)
    k = torch.randn(2, 3, 7, 8, generator=g)  # (B, H, Lk, d)
    v = torch.randn(2, 3, 7, 4, generator=g)  # (B, H, Lk, dv)
    return q, k, v


def test_eq1_by_hand_unscaled():
    """scale=1.0 is the lecture's s_ij = q_i^T k_j, alpha_i = softmax(s_i), y_i = sum_j alpha_ij v_j."""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(4, 3, generator=g) for _ in range(3))
    y, alpha = scaled_dot_product_attention(q, k, v, scale=1.0)
    for i in range(4):
        s_i = torch.stack([q[i] @ k[j] for j in range(4)])
        alpha_i = torch.exp(s_i) / torch.exp(s_i).sum()
        assert torch.allclose(alpha[i], alpha_i, atol=1e-6)
        assert torch.allclose(y[i], sum(alpha_i[j] * v[j] for j in range(4)), atol=1e-6)


def test_matches_torch_sdpa_without_mask(qkv):
    q, k, v = qkv
    y, alpha = scaled_dot_product_attention(q, k, v)
    assert torch.allclose(y, F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    assert torch.allclose(alpha.sum(-1), torch.ones(2, 3, 5))
    assert (alpha >= 0).all()


def test_matches_torch_sdpa_with_scale_and_masks(qkv):
    q, k, v = qkv
    g = torch.Generator().manual_seed(2)
    random_mask = torch.rand(2, 1, 5, 7, generator=g) > 0.4
    random_mask[..., 0] = True  # every query sees at least one key
    for mask in (random_mask, causal_mask(5, 7), padding_mask(torch.tensor([[1] * 7, [1] * 4 + [0] * 3]))):
        for scale in (None, 1.0, 0.3):
            y, alpha = scaled_dot_product_attention(q, k, v, mask=mask, scale=scale)
            ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
            assert torch.allclose(y, ref, atol=1e-6)
            assert (alpha.masked_select(~mask.expand_as(alpha)) == 0).all()  # masked weights are exactly 0


def test_default_scale_is_inverse_sqrt_d(qkv):
    q, k, v = qkv
    y1, a1 = scaled_dot_product_attention(q, k, v)
    y2, a2 = scaled_dot_product_attention(q, k, v, scale=1 / math.sqrt(8))
    assert torch.equal(a1, a2) and torch.equal(y1, y2)


def test_output_is_convex_combination_of_values(qkv):
    q, k, v = qkv
    y, _ = scaled_dot_product_attention(q, k, v, scale=1.0)
    assert (y <= v.max(dim=-2, keepdim=True).values + 1e-6).all()
    assert (y >= v.min(dim=-2, keepdim=True).values - 1e-6).all()


def test_fully_masked_row_gives_zeros_like_torch(qkv):
    q, k, v = qkv
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2] = False  # query 2 may attend to nothing
    y, alpha = scaled_dot_product_attention(q, k, v, mask=mask)
    assert torch.equal(alpha[..., 2, :], torch.zeros(2, 3, 7))
    assert torch.equal(y[..., 2, :], torch.zeros(2, 3, 4))
    assert torch.allclose(y, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-6)
    assert not torch.isnan(y).any()


def test_gradients_finite_with_fully_masked_row(qkv):
    q, k, v = (t.clone().requires_grad_() for t in qkv)
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[0] = False
    y, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    y.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_causal_mask_values():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    # queries are the last positions when keys are cached: the new token sees all keys
    assert torch.equal(causal_mask(1, 4), torch.ones(1, 4, dtype=torch.bool))
    assert torch.equal(causal_mask(2, 4), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool))


def test_causal_attention_equals_torch_is_causal(qkv):
    q, _, _ = qkv
    k, v = q.clone(), q.clone()
    y, alpha = scaled_dot_product_attention(q, k, v, mask=causal_mask(5))
    assert torch.allclose(y, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)
    assert torch.equal(alpha.triu(1), torch.zeros_like(alpha))  # nothing from the future


def test_padding_mask_shape_and_values():
    m = padding_mask(torch.tensor([[1, 1, 0], [1, 0, 0]]))
    assert m.shape == (2, 1, 1, 3) and m.dtype == torch.bool
    assert m[:, 0, 0].tolist() == [[True, True, False], [True, False, False]]


def _sdpa(**changes):
    """scaled_dot_product_attention on valid (4, 4) inputs with some arguments replaced."""
    args = {"q": torch.zeros(4, 4), "k": torch.zeros(4, 4), "v": torch.zeros(4, 4), **changes}
    return lambda: scaled_dot_product_attention(**args)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (_sdpa(q=torch.zeros(2, 3)), ValueError, "last dimension"),
        (_sdpa(v=torch.zeros(5, 4)), ValueError, "number of keys"),
        (_sdpa(q=[[1.0]]), TypeError, "q must be a torch.Tensor"),
        (_sdpa(k=torch.zeros(4, 4, dtype=torch.long)), TypeError, "floating-point"),
        (_sdpa(q=torch.zeros(4)), ValueError, "at least 2"),
        (_sdpa(mask=torch.ones(4, 4)), TypeError, "boolean"),
        (_sdpa(mask=torch.ones(3, 4, dtype=torch.bool)), ValueError, "does not broadcast"),
        (_sdpa(scale=0.0), ValueError, "scale"),
        (_sdpa(scale=-1.0), ValueError, "scale"),
        (_sdpa(scale=float("nan")), ValueError, "scale"),
        (_sdpa(scale="big"), TypeError, "scale"),
        (_sdpa(q=torch.zeros(3, 4, 4), k=torch.zeros(2, 4, 4), v=torch.zeros(2, 4, 4)), ValueError, "do not broadcast"),
        (lambda: causal_mask(0), ValueError, "length"),
        (lambda: causal_mask(2.0), TypeError, "length"),
        (lambda: causal_mask(3, 2), ValueError, "n_keys"),
        (lambda: padding_mask(torch.tensor([1, 0])), ValueError, "2 dimensions"),
        (lambda: padding_mask(torch.tensor([[1, 2]])), ValueError, "only 0"),
        (lambda: MultiHeadAttention(10, 3), ValueError, "divisible"),
        (lambda: MultiHeadAttention(8, 0), ValueError, "n_heads"),
        (lambda: MultiHeadAttention(8, 2)(torch.zeros(1, 3, 6)), ValueError, "d_model=8"),
        (lambda: MultiHeadAttention(8, 2)(torch.zeros(3, 8)), ValueError, "3 dimensions"),
        (lambda: MultiHeadAttention(8, 2)(torch.zeros(1, 3, 8), torch.zeros(2, 4, 8)), ValueError, "context"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def _torch_mha(d=16, h=4, seed=0):
    torch.manual_seed(seed)
    theirs = torch.nn.MultiheadAttention(d, h, batch_first=True).eval()
    with torch.no_grad():  # non-zero biases, so a swapped bias would show
        theirs.in_proj_bias.normal_()
        theirs.out_proj.bias.normal_()
    return theirs, mha_from_torch(theirs)


def test_mha_self_attention_equals_torch():
    theirs, ours = _torch_mha()
    x = torch.randn(2, 6, 16)
    pad = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    causal = causal_mask(6)
    y, alpha = ours(x, mask=padding_mask(pad) & causal)
    # torch: bool masks mean True = NOT allowed, the inverse of ours
    ref_y, ref_alpha = theirs(x, x, x, key_padding_mask=pad == 0, attn_mask=~causal, average_attn_weights=False)
    assert torch.allclose(y, ref_y, atol=1e-5)
    assert torch.allclose(alpha, ref_alpha, atol=1e-6)
    assert alpha.shape == (2, 4, 6, 6)


def test_mha_cross_attention_equals_torch():
    theirs, ours = _torch_mha(seed=1)
    x, context = torch.randn(2, 3, 16), torch.randn(2, 5, 16)  # decoder queries, encoder keys/values
    pad = torch.tensor([[1] * 5, [1, 1, 0, 0, 0]])
    y, alpha = ours(x, context, mask=padding_mask(pad))
    ref_y, ref_alpha = theirs(x, context, context, key_padding_mask=pad == 0, average_attn_weights=False)
    assert torch.allclose(y, ref_y, atol=1e-5)
    assert torch.allclose(alpha, ref_alpha, atol=1e-6)
    assert alpha.shape == (2, 4, 3, 5)  # queries from x, keys from the context


def test_mha_head_h_uses_features_h_times_d_head():
    """Head h reads features [h*d_head, (h+1)*d_head) of q, k, v: check one head by hand."""
    _, ours = _torch_mha()
    x = torch.randn(1, 4, 16)
    _, alpha = ours(x)
    q, k = ours.q_proj(x)[0, :, 8:12], ours.k_proj(x)[0, :, 8:12]  # head 2 of 4, d_head = 4
    assert torch.allclose(alpha[0, 2], torch.softmax(q @ k.T / 2.0, dim=-1), atol=1e-6)


def test_kv_cache_appends_along_time_and_reorders_the_batch():
    g = torch.Generator().manual_seed(0)
    cache = KVCache()
    assert cache.length == 0 and len(cache) == 0
    k1, v1, k2, v2 = (torch.randn(3, 2, n, 4, generator=g) for n in (5, 5, 1, 1))
    cache[0].update(k1, v1)
    cache[1].update(k1 + 1, v1 + 1)
    k, v = cache[0].update(k2, v2)
    assert torch.equal(k, torch.cat([k1, k2], dim=2)) and torch.equal(v, torch.cat([v1, v2], dim=2))
    assert cache.length == 6 and len(cache) == 2  # layer 0's T
    cache[0].cross = (k1, v1)
    cache.reorder(torch.tensor([2, 0, 0]))  # beam search keeps beam 2 once and beam 0 twice
    assert torch.equal(cache[0].keys[1], k[0]) and torch.equal(cache[0].values[0], v[2])
    assert torch.equal(cache[1].keys[0], k1[2] + 1)
    assert torch.equal(cache[0].cross[0][2], k1[0]) and cache.length == 6
    cross = cache[0].cross
    cache.reorder(torch.tensor([1, 1, 2]), cross=False)  # beams of one source: their cross keys are all the same
    assert cache[0].cross is cross and torch.equal(cache[1].keys[2], k1[0] + 1)


def test_mha_with_cache_token_by_token_equals_one_causal_pass():
    _, ours = _torch_mha(seed=2)
    x = torch.randn(2, 6, 16)
    pad = torch.tensor([[0, 0, 1, 1, 1, 1], [1] * 6])  # row 0 left-padded
    full_y, full_alpha = ours(x, mask=padding_mask(pad) & causal_mask(6))
    cache = KVCache()
    for t in range(6):
        y, alpha = ours(x[:, t:t + 1], mask=padding_mask(pad[:, :t + 1]), cache=cache[0])
        assert alpha.shape == (2, 4, 1, t + 1)  # one query, T_past + 1 keys
        assert (y - full_y[:, t:t + 1]).abs().max() < 1e-6
        assert (alpha[..., 0, :] - full_alpha[..., t, :t + 1]).abs().max() < 1e-6
    assert cache.length == 6


def test_mha_cross_attention_cache_projects_the_context_once():
    _, ours = _torch_mha(seed=3)
    x, context = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    full_y, _ = ours(x, context)
    cache = KVCache()
    y0, _ = ours(x[:, :1], context, cache=cache[0])
    assert cache[0].cross is not None and cache.length == 0  # cross keys do not count as cached tokens
    y1, _ = ours(x[:, 1:], context * 0, cache=cache[0])  # a changed context is not projected again
    assert (torch.cat([y0, y1], dim=1) - full_y).abs().max() < 1e-6


def _zeros(*shape):
    return torch.zeros(*shape), torch.zeros(*shape)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda c: c[2], ValueError, "layer must be <= 1"),
        (lambda c: c[-1], ValueError, "layer"),
        (lambda c: c[0].update(*_zeros(1, 2, 3)), ValueError, "4 dimensions"),
        (lambda c: c[0].update(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 2, 4)), ValueError, "one shape"),
        (lambda c: c[0].update(*_zeros(2, 2, 1, 4)), ValueError, "do not continue"),
        (lambda c: c.reorder(torch.tensor([1])), ValueError, r"index must lie in \[0, 1\)"),
        (lambda c: c.reorder(torch.tensor([0.0])), TypeError, "integer"),
        (lambda c: MultiHeadAttention(8, 2)(torch.zeros(1, 3, 8), cache={}), TypeError, "LayerCache"),
        (lambda c: MultiHeadAttention(8, 2)(torch.zeros(1, 3, 8), cache=c), TypeError, "cache\\[i\\]"),
        (lambda c: MultiHeadAttention(8, 2, bias="no"), TypeError, "bias must be a bool"),
    ],
)
def test_kv_cache_bad_input(call, error, match):
    cache = KVCache()
    cache[0].update(*_zeros(1, 2, 3, 4))  # one layer cached, batch 1
    with pytest.raises(error, match=match):
        call(cache)
