"""Interactive widgets for the notebooks (plain ipywidgets + matplotlib: JupyterLab, Colab, no custom JS).

Each widget only wires controls (via `observe`) to a pure function that can be tested and called for a static
figure, and shows the figure as a PNG in an `ipywidgets.Image`:
    build_mask(kind, n_queries, n_keys, n_pad, pad_side)  -> the boolean mask (True = may attend)
    draw_mask_explorer(kind, tokens, q, k, ...)           -> matplotlib Figure: mask grid + attention weights
    attention_mask_explorer(tokens, q, k, ...)            -> the widget (chapter 01)
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import torch

if TYPE_CHECKING:  # imported lazily inside the widget functions
    import ipywidgets

from ._validate import check_choice, check_positive_int, check_tensor
from .attention import causal_mask, scaled_dot_product_attention
from .plots import attention_heatmap, mask_grid

MASK_KINDS = ("bidirectional", "causal", "padding", "cross")
PAD_SIDES = ("right", "left")
_DESCRIPTIONS = {
    "bidirectional": "every token sees every token (BERT)",
    "causal": "token i sees tokens j <= i (GPT)",
    "padding": "nobody sees the padded keys",
    "cross": "decoder queries see every real encoder key",
}


def _check_count(name: str, value, low: int, high: int) -> None:
    """Raise TypeError / ValueError unless low <= value <= high is an int."""
    check_positive_int(name, value, minimum=low)
    if value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")


def pad_positions(n: int, n_pad: int = 0, pad_side: str = "right") -> torch.Tensor:
    """Boolean (n,) vector, True at the n_pad padded positions (the last ones, or the first ones if "left")."""
    check_positive_int("n", n)
    _check_count("n_pad", n_pad, 0, n)
    check_choice("pad_side", pad_side, PAD_SIDES)
    pad = torch.zeros(n, dtype=torch.bool)
    if n_pad:
        pad[slice(n - n_pad, None) if pad_side == "right" else slice(0, n_pad)] = True
    return pad


def build_mask(
    kind: str, n_queries: int, n_keys: int | None = None, n_pad: int = 0, pad_side: str = "right"
) -> torch.Tensor:
    """Boolean mask (n_queries, n_keys), True = query i may attend to key j; n_pad keys are padding.

    "bidirectional": all True (n_pad must be 0).  "causal": j <= i.  "padding": all True but the padded keys.
    "cross": queries from one sequence, keys from another (n_keys may differ); the padded keys are hidden.
    The padded keys are the last n_pad (pad_side="right") or the first n_pad (pad_side="left").
    """
    check_choice("kind", kind, MASK_KINDS)
    check_choice("pad_side", pad_side, PAD_SIDES)
    check_positive_int("n_queries", n_queries)
    n_keys = n_queries if n_keys is None else n_keys
    check_positive_int("n_keys", n_keys)
    if kind != "cross" and n_keys != n_queries:
        raise ValueError(f"n_keys must equal n_queries={n_queries} for self-attention kind={kind!r}, got {n_keys}")
    _check_count("n_pad", n_pad, 0, n_keys - 1)  # at least one real key
    if kind == "bidirectional" and n_pad:
        raise ValueError(f"n_pad must be 0 for kind='bidirectional' (use kind='padding'), got {n_pad}")
    mask = causal_mask(n_queries) if kind == "causal" else torch.ones(n_queries, n_keys, dtype=torch.bool)
    return mask & ~pad_positions(n_keys, n_pad, pad_side)  # (Lq, Lk): a padded key is hidden from every query


def _check_tokens(name: str, tokens) -> None:
    """Raise TypeError unless tokens is a non-empty list (or tuple) of str."""
    if not isinstance(tokens, (list, tuple)) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise TypeError(f"{name} must be a non-empty list of str (one label per token), got {tokens!r}")


def _check_qk(name: str, t, tokens: Sequence[str], d: int | None = None) -> None:
    """Raise unless t is a float tensor (len(tokens), d)."""
    check_tensor(name, t, ndim=2, floating=True)
    if t.shape[0] != len(tokens) or (d is not None and t.shape[1] != d):
        want = f"({len(tokens)}, {d if d is not None else 'd'})"
        raise ValueError(f"{name} must have shape {want} (one row per token), got {tuple(t.shape)}")


def draw_mask_explorer(
    kind: str,
    tokens: Sequence[str],
    q: torch.Tensor | None = None,
    k: torch.Tensor | None = None,
    *,
    n_queries: int | None = None,
    n_keys: int | None = None,
    n_pad: int = 0,
    pad_side: str = "right",
    source_tokens: Sequence[str] | None = None,
    k_source: torch.Tensor | None = None,
    scale: float | None = None,
) -> plt.Figure:
    """Figure with the mask grid and, when q and k are given, the weights alpha = softmax(scale q k^T, mask).

    Queries are the first n_queries tokens (with q: (len(tokens), d)); keys are the first n_keys of the same
    tokens (k: (len(tokens), d)) or, for kind="cross", of source_tokens (k_source: (len(source_tokens), d)).
    Padded positions are labelled in red.
    """
    check_choice("kind", kind, MASK_KINDS)
    _check_tokens("tokens", tokens)
    cross = kind == "cross"
    if cross and source_tokens is None:
        raise ValueError("kind='cross' needs source_tokens (the encoder-side sentence), got None")
    if source_tokens is not None:
        _check_tokens("source_tokens", source_tokens)
    keys_all = list(source_tokens) if cross else list(tokens)
    n_queries = len(tokens) if n_queries is None else n_queries
    _check_count("n_queries", n_queries, 1, len(tokens))
    n_keys = (len(keys_all) if cross else n_queries) if n_keys is None else n_keys
    _check_count("n_keys", n_keys, 1, len(keys_all))
    if (q is None) != (k is None):
        raise ValueError("q and k must be given together (or both None for the mask alone)")
    if q is not None:
        _check_qk("q", q, tokens)
        _check_qk("k", k, tokens, q.shape[1])
        if cross and k_source is None:
            raise ValueError("kind='cross' with q needs k_source, the keys of source_tokens, got None")
        if cross:
            _check_qk("k_source", k_source, keys_all, q.shape[1])
    mask = build_mask(kind, n_queries, n_keys, n_pad, pad_side)  # (Lq, Lk)
    queries, keys = list(tokens[:n_queries]), keys_all[:n_keys]

    ncols = 1 if q is None else 2
    fig, axes = plt.subplots(1, ncols, figsize=(ncols * (0.3 * n_keys + 1.5), 0.3 * n_queries + 1.8), squeeze=False,
                             layout="constrained")
    mask_grid(mask, queries, keys, ax=axes[0, 0], title=f"mask: {kind}")
    if q is not None:
        keys_t = (k_source if cross else k)[:n_keys].detach()  # (Lk, d)
        _, alpha = scaled_dot_product_attention(q[:n_queries].detach(), keys_t, keys_t, mask=mask, scale=scale)
        attention_heatmap(alpha, queries, keys, ax=axes[0, 1], title="attention weights alpha (hidden = 0)")
    pad = pad_positions(n_keys, n_pad, pad_side)  # (Lk,) the padded keys (and queries, in self-attention)
    for ax in axes[0]:
        labels = ax.get_xticklabels() + ([] if cross else ax.get_yticklabels())
        for j, label in enumerate(labels):
            label.set_color("tab:red" if pad[j % n_keys] else "black")
    fig.suptitle(_DESCRIPTIONS[kind], fontsize=10)
    return fig


def figure_png(fig: plt.Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for an ipywidgets.Image); the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def attention_mask_explorer(
    tokens: Sequence[str],
    q: torch.Tensor | None = None,
    k: torch.Tensor | None = None,
    source_tokens: Sequence[str] | None = None,
    k_source: torch.Tensor | None = None,
    scale: float | None = None,
    *,
    kind: str = "causal",
    n_pad: int = 0,
) -> "ipywidgets.VBox":
    """Widget: pick the mask kind, the lengths and the padding; see the mask grid and the attention weights.

    "cross" is offered only when source_tokens is given (keys from that sentence, k_source its keys).
    kind and n_pad are the initial settings.
    """
    import ipywidgets as W

    for kd in {kind, "cross"} if source_tokens is not None else {kind}:  # validate before building any widget
        plt.close(draw_mask_explorer(kd, tokens, q, k, n_pad=n_pad if kd == kind else 0, source_tokens=source_tokens,
                                     k_source=k_source, scale=scale))
    n_src = len(source_tokens) if source_tokens is not None else len(tokens)
    kind_w = W.Dropdown(options=MASK_KINDS if source_tokens is not None else MASK_KINDS[:-1], value=kind,
                        description="mask")
    side_w = W.ToggleButtons(options=PAD_SIDES, value="right", description="pad side")
    n_q_w = W.IntSlider(value=len(tokens), min=1, max=len(tokens), description="queries")
    n_k_w = W.IntSlider(value=n_src, min=1, max=n_src, description="source keys")
    n_pad_w = W.IntSlider(value=n_pad, min=0, max=max(len(tokens), n_src) - 1, description="padded")
    image = W.Image(format="png")  # an Image, not an Output widget: no display capture, same in Lab, Colab, nbclient
    busy = [False]  # True while _update runs: the controls it changes must not redraw twice

    def _update(_=None) -> None:
        """Make the controls consistent with the mask kind, then redraw the figure."""
        if busy[0]:
            return
        busy[0] = True
        try:
            kind = kind_w.value
            n_keys = n_k_w.value if kind == "cross" else n_q_w.value  # self-attention: keys = queries
            n_k_w.disabled = kind != "cross"
            n_pad_w.max = 0 if kind == "bidirectional" else n_keys - 1  # at least one real key
            n_pad_w.disabled = side_w.disabled = kind == "bidirectional"
            fig = draw_mask_explorer(kind, tokens, q, k, n_queries=n_q_w.value, n_keys=n_keys, n_pad=n_pad_w.value,
                                     pad_side=side_w.value, source_tokens=source_tokens, k_source=k_source,
                                     scale=scale)
            image.value = figure_png(fig)
        finally:
            busy[0] = False

    for control in (kind_w, side_w, n_q_w, n_k_w, n_pad_w):
        control.observe(_update, names="value")
    _update()
    return W.VBox([W.HBox([kind_w, side_w]), W.HBox([n_q_w, n_k_w, n_pad_w]), image])
