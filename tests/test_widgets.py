"""The attention-mask explorer: the masks it builds, the figure it draws, the widget it wires, its errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.attention import scaled_dot_product_attention  # noqa: E402
from course_utils.widgets import attention_mask_explorer, build_mask, draw_mask_explorer, pad_positions  # noqa: E402

TOKENS = ["[CLS]", "the", "cat", "sat", "[SEP]", "[PAD]"]
SOURCE = ["[CLS]", "le", "chat", "[SEP]"]
T, F = True, False


@pytest.fixture
def qk():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)  # (L, d)
    return q, k, torch.randn(4, 4, generator=g)  # k_source (Lk, d)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_bidirectional_sees_everything():
    assert build_mask("bidirectional", 3).equal(torch.ones(3, 3, dtype=torch.bool))


def test_causal_is_lower_triangular():
    expected = torch.tensor([[T, F, F], [T, T, F], [T, T, T]])
    assert build_mask("causal", 3).equal(expected)


def test_padding_hides_padded_keys_from_every_query():
    mask = build_mask("padding", 4, n_pad=2)
    assert mask.equal(torch.tensor([[T, T, F, F]] * 4))  # pad queries still see the real tokens
    left = build_mask("padding", 4, n_pad=1, pad_side="left")
    assert left.equal(torch.tensor([[F, T, T, T]] * 4))


def test_causal_with_padding():
    right = build_mask("causal", 4, n_pad=1)
    assert right.equal(torch.tensor([[T, F, F, F], [T, T, F, F], [T, T, T, F], [T, T, T, F]]))
    left = build_mask("causal", 3, n_pad=1, pad_side="left")
    assert left.equal(torch.tensor([[F, F, F], [F, T, F], [F, T, T]]))  # first query sees nothing


def test_cross_is_rectangular_and_hides_source_padding():
    mask = build_mask("cross", 2, 5, n_pad=2)
    assert mask.shape == (2, 5)
    assert mask.equal(torch.tensor([[T, T, T, F, F]] * 2))


def test_pad_positions():
    assert pad_positions(4, 2).tolist() == [F, F, T, T]
    assert pad_positions(4, 1, "left").tolist() == [T, F, F, F]
    assert not pad_positions(3).any()


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(kind="diagonal", n_queries=3), ValueError, ["kind", "diagonal", "bidirectional"]),
        (dict(kind="causal", n_queries=0), ValueError, ["n_queries", ">= 1", "0"]),
        (dict(kind="causal", n_queries=2.5), TypeError, ["n_queries", "2.5", "int"]),
        (dict(kind="causal", n_queries=3, n_keys=4), ValueError, ["n_keys", "4", "3"]),
        (dict(kind="padding", n_queries=3, n_pad=3), ValueError, ["n_pad", "<= 2", "3"]),
        (dict(kind="padding", n_queries=3, n_pad=-1), ValueError, ["n_pad", ">= 0", "-1"]),
        (dict(kind="bidirectional", n_queries=3, n_pad=1), ValueError, ["n_pad", "padding"]),
        (dict(kind="padding", n_queries=3, n_pad=1, pad_side="up"), ValueError, ["pad_side", "up", "left"]),
    ],
)
def test_build_mask_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        build_mask(**kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_figure_mask_only():
    fig = draw_mask_explorer("causal", TOKENS[:4])
    assert len(fig.axes) == 1
    image = fig.axes[0].images[0].get_array()
    assert (image == build_mask("causal", 4).float().numpy()).all()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == TOKENS[:4]


def test_figure_weights_are_masked_attention(qk):
    q, k, _ = qk
    fig = draw_mask_explorer("padding", TOKENS, q, k, n_pad=1)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == "mask: padding"
    shown = torch.as_tensor(fig.axes[1].images[0].get_array())
    mask = build_mask("padding", 6, n_pad=1)
    _, alpha = scaled_dot_product_attention(q, k, k, mask=mask)
    assert torch.allclose(shown.float(), alpha)
    assert (shown[:, -1] == 0).all()  # the [PAD] key gets exactly zero weight
    assert torch.allclose(shown.sum(-1).float(), torch.ones(6))
    colors = [t.get_color() for t in fig.axes[1].get_xticklabels()]
    assert colors[-1] == "tab:red" and colors[0] == "black"  # the padded position is flagged


def test_figure_lengths_and_left_padding(qk):
    q, k, _ = qk
    fig = draw_mask_explorer("causal", TOKENS, q, k, n_queries=4, n_pad=1, pad_side="left", scale=1.0)
    shown = torch.as_tensor(fig.axes[1].images[0].get_array())
    assert shown.shape == (4, 4)
    assert (shown[0] == 0).all()  # the left pad query sees nothing: its row is zeros, not NaN
    assert torch.allclose(shown[1:].sum(-1).float(), torch.ones(3))
    assert (shown[:, 0] == 0).all() and (shown.triu(1) == 0).all()


def test_figure_cross(qk):
    q, k, k_src = qk
    fig = draw_mask_explorer("cross", TOKENS, q, k, n_queries=3, source_tokens=SOURCE, k_source=k_src, n_pad=1)
    shown = torch.as_tensor(fig.axes[1].images[0].get_array())
    assert shown.shape == (3, 4)
    _, alpha = scaled_dot_product_attention(q[:3], k_src, k_src, mask=build_mask("cross", 3, 4, n_pad=1))
    assert torch.allclose(shown.float(), alpha)
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == SOURCE
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == TOKENS[:3]


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        (("causal", "the cat"), {}, TypeError, ["tokens", "list of str"]),
        (("causal", []), {}, TypeError, ["tokens"]),
        (("causal", TOKENS), dict(n_queries=7), ValueError, ["n_queries", "<= 6", "7"]),
        (("cross", TOKENS), {}, ValueError, ["source_tokens", "None"]),
        (("causal", TOKENS, torch.zeros(5, 4), torch.zeros(6, 4)), {}, ValueError, ["q", "(6, d)", "(5, 4)"]),
        (("causal", TOKENS, torch.zeros(6, 4), torch.zeros(6, 3)), {}, ValueError, ["k", "(6, 4)", "(6, 3)"]),
        (("causal", TOKENS, torch.zeros(6, 4, dtype=torch.long), torch.zeros(6, 4)), {}, TypeError, ["q", "int64"]),
        (("causal", TOKENS, torch.zeros(6, 4)), {}, ValueError, ["q and k"]),
        (("cross", TOKENS, torch.zeros(6, 4), torch.zeros(6, 4)), dict(source_tokens=SOURCE), ValueError,
         ["k_source", "None"]),
        (("cross", TOKENS, torch.zeros(6, 4), torch.zeros(6, 4)),
         dict(source_tokens=SOURCE, k_source=torch.zeros(3, 4)), ValueError, ["k_source", "(4, 4)", "(3, 4)"]),
    ],
)
def test_figure_bad_arguments(args, kwargs, error, words):
    with pytest.raises(error) as info:
        draw_mask_explorer(*args, **kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_widget_wires_controls_to_the_figure(qk):
    import ipywidgets as W

    q, k, k_src = qk
    box = attention_mask_explorer(TOKENS, q, k, SOURCE, k_src, kind="padding", n_pad=1)
    assert isinstance(box, W.VBox)
    (kind, side), (n_q, n_k, n_pad), image = box.children[0].children, box.children[1].children, box.children[2]
    assert isinstance(image, W.Image) and bytes(image.value).startswith(b"\x89PNG")  # the figure, drawn at creation
    assert kind.options == ("bidirectional", "causal", "padding", "cross")
    assert (kind.value, n_pad.value, n_q.value, n_k.disabled) == ("padding", 1, 6, True)
    first = bytes(image.value)
    kind.value = "bidirectional"
    assert n_pad.max == 0 and n_pad.value == 0 and n_pad.disabled and side.disabled
    assert bytes(image.value) != first  # redrawn
    kind.value = "cross"
    assert not n_k.disabled and n_pad.max == len(SOURCE) - 1
    n_pad.value = 3
    n_k.value = 2
    assert n_pad.max == 1 and n_pad.value == 1  # clipped: at least one real key
    before = bytes(image.value)
    side.value = "left"
    assert bytes(image.value) != before
    assert plt.get_fignums() == []  # every figure drawn by the widget is closed


def test_widget_image_matches_the_pure_function(qk):
    """The widget shows exactly what draw_mask_explorer draws for the same settings."""
    from course_utils.widgets import figure_png

    q, k, _ = qk
    box = attention_mask_explorer(TOKENS, q, k, kind="causal", n_pad=2)
    expected = figure_png(draw_mask_explorer("causal", TOKENS, q, k, n_pad=2))
    assert bytes(box.children[2].value) == expected


def test_widget_without_source_has_no_cross_and_validates():
    box = attention_mask_explorer(TOKENS)
    assert "cross" not in box.children[0].children[0].options
    with pytest.raises(ValueError, match="n_pad"):
        attention_mask_explorer(TOKENS, kind="padding", n_pad=6)
    with pytest.raises(ValueError, match="source_tokens"):
        attention_mask_explorer(TOKENS, kind="cross")
