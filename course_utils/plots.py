"""Matplotlib helpers shared by the chapters: attention heat maps and masks."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Patch

from ._validate import (check_bool, check_choice, check_finite, check_instance, check_positive, check_strings,
                        check_tensor)


def attention_heatmap(
    alpha: torch.Tensor,
    queries: Sequence[str],
    keys: Sequence[str] | None = None,
    *,
    ax: plt.Axes | None = None,
    title: str = "",
    annotate: bool = False,
    cmap: str = "Blues",
    vmax: float | None = 1.0,
    colorbar: bool = True,
) -> plt.Axes:
    """Draw attention weights alpha (Lq, Lk) with a row per query token and a column per key token.

    The colours run from 0 to vmax = 1 by default, so that maps side by side compare (None: this map's maximum);
    colorbar=True draws the scale beside the map.
    """
    check_strings("queries", queries, what="one label per token")
    keys = list(queries) if keys is None else keys
    check_strings("keys", keys, what="one label per token")
    if not isinstance(alpha, torch.Tensor):
        try:
            alpha = torch.as_tensor(alpha)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"alpha must be a tensor (or array) of weights, got {type(alpha).__name__}") from None
    check_tensor("alpha", alpha, ndim=2)
    alpha = alpha.detach().float()
    check_finite("alpha", alpha)
    if alpha.shape != (len(queries), len(keys)):
        raise ValueError(
            f"alpha must have shape (len(queries), len(keys)) = ({len(queries)}, {len(keys)}), got {tuple(alpha.shape)}"
        )
    check_bool("annotate", annotate)
    check_bool("colorbar", colorbar)
    check_choice("cmap", cmap, plt.colormaps())
    if vmax is not None:
        check_positive("vmax", vmax)
    if ax is not None:
        check_instance("ax", ax, plt.Axes, "matplotlib Axes")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * len(keys) + 1.5, 0.45 * len(queries) + 1))
    top = max(float(alpha.max()), 1e-9) if vmax is None else vmax
    image = ax.imshow(alpha.numpy(), cmap=cmap, vmin=0.0, vmax=top)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=r"$\alpha_{ij}$")
    ax.set_xticks(range(len(keys)), keys, rotation=90)
    ax.set_yticks(range(len(queries)), queries)
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")
    if annotate:
        for i in range(alpha.shape[0]):
            for j in range(alpha.shape[1]):
                ax.text(j, i, f"{alpha[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if alpha[i, j] > 0.5 * top else "black")
    if title:
        ax.set_title(title)
    return ax


def mask_grid(
    mask: torch.Tensor,
    queries: Sequence[str],
    keys: Sequence[str] | None = None,
    *,
    ax: plt.Axes | None = None,
    title: str = "",
) -> plt.Axes:
    """Draw a boolean mask (Lq, Lk): black = query i may attend to key j, white = hidden (its weight is 0).

    The legend says so on the figure.
    """
    if isinstance(mask, (list, tuple)):
        mask = torch.tensor(mask)
    check_tensor("mask", mask, ndim=2)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a boolean tensor, got dtype {mask.dtype}")
    n_keys = len(queries) if keys is None else len(keys)
    if tuple(mask.shape) != (len(queries), n_keys):
        raise ValueError(f"mask must have shape (len(queries), len(keys)) = ({len(queries)}, {n_keys}), "
                         f"got {tuple(mask.shape)}")
    ax = attention_heatmap(mask.float(), queries, keys, ax=ax, title=title, cmap="Greys", colorbar=False)
    seen, hidden = (Patch(facecolor=c, edgecolor="grey") for c in ("black", "white"))
    labels = ["i attends to j", "hidden:\n" + r"$\alpha_{ij} = 0$"]
    ax.legend([seen, hidden], labels, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=7, frameon=False,
              handlelength=1)  # where a map's colour bar goes
    return ax
