"""Eq. (2)-(4): FeedForward, LayerNorm and the three norm placements, checked against torch."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.attention import causal_mask, padding_mask
from course_utils.hf import layer_from_torch
from course_utils.layers import FeedForward, LayerNorm, TransformerLayer


def test_layer_norm_equals_torch_with_and_without_affine():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16) * 4 + 2
    ours, theirs = LayerNorm(16, eps=1e-5), torch.nn.LayerNorm(16, eps=1e-5)
    with torch.no_grad():
        for p in (*ours.parameters(), *theirs.parameters()):
            p.copy_(torch.arange(16.0) / 8 - 1)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    plain = LayerNorm(16, affine=False)
    assert list(plain.parameters()) == []
    assert torch.allclose(plain(x), F.layer_norm(x, (16,)), atol=1e-5)
    y = plain(x)  # eq. (3): mean 0 and (biased) standard deviation 1 per vector
    assert torch.allclose(y.mean(-1), torch.zeros(3, 5), atol=1e-5)
    assert torch.allclose(y.std(-1, unbiased=False), torch.ones(3, 5), atol=1e-4)


def test_feed_forward_is_eq2():
    torch.manual_seed(0)
    ffn = FeedForward(8)
    assert ffn.w1.out_features == 32  # d_ff defaults to 4 d
    y = torch.randn(2, 3, 8)
    z = torch.relu(y @ ffn.w1.weight.T + ffn.w1.bias)
    assert torch.allclose(ffn(y), z @ ffn.w2.weight.T + ffn.w2.bias, atol=1e-6)


@pytest.mark.parametrize("activation, fn", [
    ("gelu", F.gelu), ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")), ("relu", F.relu),
])
def test_feed_forward_activations(activation, fn):
    torch.manual_seed(0)
    ffn = FeedForward(8, 16, activation=activation)
    y = torch.randn(5, 8)
    assert torch.allclose(ffn(y), ffn.w2(fn(ffn.w1(y))), atol=1e-6)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_layer_equals_torch_encoder_layer(norm_first, activation):
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(
        16, 4, 40, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    ).eval()
    with torch.no_grad():  # non-trivial norms, so a swapped norm1/norm2 would show
        for ln in (theirs.norm1, theirs.norm2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.normal_()
    ours = layer_from_torch(theirs)
    assert ours.norm == ("pre" if norm_first else "post")
    x = torch.randn(2, 6, 16)
    pad = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    y, alpha = ours(x, mask=padding_mask(pad) & causal_mask(6))
    # eval fast path off: the math path handles both masks, True = NOT allowed in torch
    ref = theirs(x, src_mask=~causal_mask(6), src_key_padding_mask=pad == 0)
    real = pad.bool()  # torch's fast path may zero padded positions: compare real tokens
    assert torch.allclose(y[real], ref[real], atol=1e-5)
    assert alpha.shape == (2, 4, 6, 6)


def test_lecture_placement_is_eq4():
    torch.manual_seed(0)
    layer = TransformerLayer(16, 4, norm="lecture")
    assert layer.norm1.weight is None  # the lecture's LayerNorm has no gain and bias
    x = torch.randn(2, 5, 16)
    y, _ = layer(x)
    a, _ = layer.attn(x)
    h = x + F.layer_norm(a, (16,))  # eq. (4)
    assert torch.allclose(y, h + F.layer_norm(layer.ffn(h), (16,)), atol=1e-5)


def test_post_and_pre_by_hand():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)
    post = TransformerLayer(16, 4, norm="post")
    pre = TransformerLayer(16, 4, norm="pre")
    pre.load_state_dict(post.state_dict())
    a, _ = post.attn(x)
    h = post.norm1(x + a)
    assert torch.allclose(post(x)[0], post.norm2(h + post.ffn(h)), atol=1e-5)
    a, _ = pre.attn(pre.norm1(x))
    h = x + a
    assert torch.allclose(pre(x)[0], h + pre.ffn(pre.norm2(h)), atol=1e-5)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    layer = TransformerLayer(16, 4, dropout=0.5)
    x = torch.randn(2, 5, 16)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    layer.train()
    assert not torch.equal(layer(x)[0], layer(x)[0])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: TransformerLayer(16, 4, norm="sandwich"), ValueError, "norm must be one of"),
        (lambda: TransformerLayer(16, 5), ValueError, "divisible"),
        (lambda: FeedForward(8, activation="tanh"), ValueError, "activation"),
        (lambda: FeedForward(8, d_ff=0), ValueError, "d_ff"),
        (lambda: LayerNorm(8, eps=0), ValueError, "eps"),
        (lambda: LayerNorm(8)(torch.zeros(2, 7)), ValueError, "last dimension d=8"),
        (lambda: LayerNorm(8)(torch.zeros(2, 8, dtype=torch.long)), TypeError, "floating-point"),
        (lambda: TransformerLayer(8, 2)(torch.zeros(1, 3, 8), mask=torch.ones(4, 4, dtype=torch.bool)),
         ValueError, "mask"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
