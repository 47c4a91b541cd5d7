"""The chapters' heat maps: one colour scale for every attention map (with its colour bar), masks with a legend."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.plots import attention_heatmap, mask_grid  # noqa: E402


def test_maps_side_by_side_share_the_scale_0_to_1_and_show_it():
    fig, axes = plt.subplots(1, 2)
    peaked, spread = torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.full((2, 2), 0.5)
    for ax, alpha in zip(axes, (peaked, spread)):
        attention_heatmap(alpha, ["a", "b"], ax=ax)
        assert ax.images[0].get_clim() == (0.0, 1.0)  # 0.5 looks the same in both maps
    assert len(fig.axes) == 4  # two maps, two colour bars
    assert fig.axes[2].get_ylabel() == r"$\alpha_{ij}$"
    plt.close(fig)


def test_a_map_may_scale_to_its_own_maximum_without_a_colour_bar():
    fig, ax = plt.subplots()
    attention_heatmap(torch.tensor([[0.1, 0.3]]), ["a"], ["b", "c"], ax=ax, vmax=None, colorbar=False)
    assert ax.images[0].get_clim() == pytest.approx((0.0, 0.3)) and len(fig.axes) == 1
    plt.close(fig)


def test_a_mask_is_black_where_the_query_attends_and_says_so():
    fig, ax = plt.subplots()
    mask_grid(torch.tensor([[True, False], [True, True]]), ["a", "b"], ax=ax)
    rgba = ax.images[0].to_rgba(ax.images[0].get_array())  # (2, 2, 4)
    assert rgba[0, 0, :3].tolist() == [0.0, 0.0, 0.0] and rgba[0, 1, :3].tolist() == [1.0, 1.0, 1.0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["i attends to j", "hidden:\n" + r"$\alpha_{ij} = 0$"]
    assert len(fig.axes) == 1  # the legend, not a colour bar
    plt.close(fig)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(vmax=0.0), ValueError, "vmax must be a finite number > 0, got 0.0"),
    (dict(colorbar="yes"), TypeError, "colorbar must be a bool"),
])
def test_bad_scale_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        attention_heatmap(torch.zeros(1, 1), ["a"], **kwargs)
