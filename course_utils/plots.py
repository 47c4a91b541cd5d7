"""Matplotlib helpers shared by the chapters: attention heat maps and masks."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch


def attention_heatmap(
    alpha: torch.Tensor,
    queries: Sequence[str],
    keys: Sequence[str] | None = None,
    *,
    ax: plt.Axes | None = None,
    title: str = "",
    annotate: bool = False,
    cmap: str = "Blues",
) -> plt.Axes:
    """Draw attention weights alpha (Lq, Lk) with a row per query token and a column per key token."""
    alpha = torch.as_tensor(alpha).detach().float()
    keys = list(queries) if keys is None else list(keys)
    if alpha.dim() != 2 or alpha.shape != (len(queries), len(keys)):
        raise ValueError(
            f"alpha must have shape (len(queries), len(keys)) = ({len(queries)}, {len(keys)}), got {tuple(alpha.shape)}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * len(keys) + 1.5, 0.45 * len(queries) + 1))
    ax.imshow(alpha.numpy(), cmap=cmap, vmin=0.0, vmax=max(float(alpha.max()), 1e-9))
    ax.set_xticks(range(len(keys)), keys, rotation=90)
    ax.set_yticks(range(len(queries)), queries)
    ax.set_xlabel("key j")
    ax.set_ylabel("query i")
    if annotate:
        for i in range(alpha.shape[0]):
            for j in range(alpha.shape[1]):
                ax.text(j, i, f"{alpha[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if alpha[i, j] > 0.5 * alpha.max() else "black")
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
    """Draw a boolean mask (Lq, Lk): dark = query i may attend to key j, white = hidden."""
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a boolean tensor, got dtype {mask.dtype}")
    return attention_heatmap(mask.float(), queries, keys, ax=ax, title=title, cmap="Greys")
