"""Interactive widgets for the notebooks (plain ipywidgets + matplotlib: JupyterLab, Colab, no custom JS).

Each widget only wires controls (via `observe`) to a pure function that can be tested and called for a static
figure, and shows the figure as a PNG in an `ipywidgets.Image`; the computations live beside what they compute
(attention.build_mask, warpers.warp_distribution):
    draw_mask_explorer(kind, tokens, q, k, ...)           -> matplotlib Figure: mask grid + attention weights
    attention_mask_explorer(tokens, q, k, ...)            -> the widget (chapter 01)
    draw_temperature_explorer(logits, tokenizer, ...)     -> matplotlib Figure: the two distributions, top tokens
    sample_continuations(model, tokenizer, prompt, ...)   -> seeded samples under the same warpers
    temperature_explorer(model, tokenizer, prompt)        -> the widget (chapter 09); the model runs once per prompt
"""

from __future__ import annotations

import html
import io
import math
from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import torch
from torch import nn

if TYPE_CHECKING:  # imported lazily inside the widget functions
    import ipywidgets

from ._validate import check_choice, check_finite, check_int, check_seed, check_strings, check_tensor, seeded
from .attention import MASK_KINDS, PAD_SIDES, build_mask, pad_positions, scaled_dot_product_attention
from .data import eos_id, prompt_ids, token_labels, tokenizer_size
from .generation import generate, next_token_logits
from .plots import attention_heatmap, mask_grid
from .metrics import entropy  # noqa: F401  re-exported for one release (as build_mask, prompt_ids, ...)
from .warpers import WarpedDistribution, check_warpers, warp_distribution  # noqa: F401

_DESCRIPTIONS = {
    "bidirectional": "every token sees every token (BERT)",
    "causal": "token i sees tokens j <= i (GPT)",
    "padding": "nobody sees the padded keys",
    "cross": "decoder queries see every real encoder key",
}


def _check_qk(name: str, t, tokens: Sequence[str], d: int | None = None) -> None:
    """Raise unless t is a float tensor (len(tokens), d)."""
    check_tensor(name, t, ndim=2, floating=True)
    check_finite(name, t)
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
    check_strings("tokens", tokens, nonempty=True, what="one label per token")
    cross = kind == "cross"
    if cross and source_tokens is None:
        raise ValueError("kind='cross' needs source_tokens (the encoder-side sentence), got None")
    if source_tokens is not None:
        check_strings("source_tokens", source_tokens, nonempty=True, what="one label per token")
    keys_all = list(source_tokens) if cross else list(tokens)
    n_queries = len(tokens) if n_queries is None else n_queries
    check_int("n_queries", n_queries, 1, len(tokens))
    n_keys = (len(keys_all) if cross else n_queries) if n_keys is None else n_keys
    check_int("n_keys", n_keys, 1, len(keys_all))
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


# ---------------------------------------------------------------- chapter 09: temperature, top-k, top-p

TEMPERATURE_RANGE = (0.05, 5.0)  # the ends of the widget's logarithmic temperature slider


def draw_temperature_explorer(
    logits: torch.Tensor,
    tokenizer,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    *,
    n_top: int = 20,
) -> plt.Figure:
    """Bars of the n_top most likely next tokens: p at T = 1 (grey) and after the warpers (blue; removed = red label).

    The title gives the settings, how many tokens survive the filters, and both entropies.
    """
    if isinstance(logits, torch.Tensor) and logits.dim() == 1 and len(logits) > tokenizer_size(tokenizer):
        raise ValueError(f"logits must have one score per token of the tokenizer ({tokenizer_size(tokenizer)}), "
                         f"got {len(logits)}")
    dist = warp_distribution(logits, temperature, top_k, top_p)
    check_int("n_top", n_top, 1, logits.shape[0])
    top = logits.argsort(descending=True, stable=True)[:n_top]  # (n_top,) the ranking warp_distribution uses
    kept = torch.zeros(logits.shape[0], dtype=torch.bool)
    kept[dist.survivors] = True
    x = torch.arange(n_top).float()
    fig, ax = plt.subplots(figsize=(0.42 * n_top + 2.0, 4.0), layout="constrained")
    ax.bar(x - 0.2, dist.before[top].numpy(), width=0.4, color="0.7", label="model, T = 1")
    ax.bar(x + 0.2, dist.after[top].numpy(), width=0.4, color="tab:blue", label="after the warpers (sampled from)")
    ax.set_xticks(x.tolist(), token_labels(tokenizer, top), rotation=60, ha="right", rotation_mode="anchor")
    for label, keep in zip(ax.get_xticklabels(), kept[top].tolist()):
        label.set_color("black" if keep else "tab:red")
    ax.set_ylabel("P(next token)")
    ax.legend(loc="upper right", fontsize=8)
    settings = f"T = {temperature:.3g}, top-k = {top_k or 'off'}, top-p = {top_p if top_p < 1 else 'off'}"
    ax.set_title(
        f"{settings}: {len(dist.survivors)} of {logits.shape[0]} tokens survive (red: removed)\n"
        f"entropy {dist.entropy_before:.2f} -> {dist.entropy_after:.2f} nats "
        f"(as many choices as {math.exp(dist.entropy_before):.1f} -> {math.exp(dist.entropy_after):.1f} equal tokens); "
        f"mass beyond the top {n_top}: {float(dist.before.sum() - dist.before[top].sum()):.2f} -> "
        f"{float(dist.after.sum() - dist.after[top].sum()):.2f}",
        fontsize=9,
    )
    return fig


def sample_continuations(
    model: nn.Module,
    tokenizer,
    prompt: str,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    *,
    n_samples: int = 3,
    max_new_tokens: int = 30,
    seed: int = 0,
) -> list[str]:
    """n_samples continuations of prompt, generate(do_sample=True) after torch.manual_seed(seed), up to the text's end.

    The same seed gives the same texts; the global random state is left as it was.
    """
    check_warpers(temperature, top_k, top_p)
    check_int("n_samples", n_samples, 1)
    check_seed("seed", seed)
    ids = prompt_ids(tokenizer, prompt)  # (1, T)
    with seeded(seed):
        out = generate(model, ids.expand(n_samples, -1), max_new_tokens, do_sample=True, temperature=temperature,
                       top_k=top_k, top_p=top_p, eos_token_id=eos_id(tokenizer))  # (n_samples, T + n)
    return [tokenizer.decode(row[ids.shape[1]:].tolist(), skip_special_tokens=True) for row in out]  # no eos, no pad


def temperature_explorer(
    model: nn.Module,
    tokenizer,
    prompt: str,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    n_top: int = 20,
    n_samples: int = 3,
    max_new_tokens: int = 30,
) -> "ipywidgets.VBox":
    """Widget: move temperature, top-k and top-p, see the next-token distribution change; sample continuations.

    The model reads each prompt once (its logits are kept): the sliders only redraw. The button samples
    n_samples continuations with seed 0, then 1, 2, ... at each press.
    """
    import ipywidgets as W

    low, high = TEMPERATURE_RANGE
    check_warpers(temperature, top_k, top_p)
    if not low <= temperature <= high:
        raise ValueError(f"temperature must lie in [{low}, {high}] (the slider's range), got {temperature}")
    for name, value in (("n_top", n_top), ("n_samples", n_samples), ("max_new_tokens", max_new_tokens)):
        check_int(name, value, 1)
    logits = {prompt: next_token_logits(model, prompt_ids(tokenizer, prompt))}  # (V,) per prompt read
    V = logits[prompt].shape[0]
    check_int("n_top", n_top, 1, V)
    check_int("top_k", top_k, 0, V)

    prompt_w = W.Text(value=prompt, description="prompt", continuous_update=False, layout=W.Layout(width="90%"))
    t_w = W.FloatLogSlider(value=temperature, base=10, min=math.log10(low), max=math.log10(high), step=0.01,
                           description="temperature", readout_format=".2f", continuous_update=False)
    k_w = W.IntSlider(value=top_k, min=0, max=min(V, max(100, top_k)), description="top-k (0 off)",
                      continuous_update=False)
    p_w = W.FloatSlider(value=top_p, min=0.01, max=1.0, step=0.01, description="top-p (1 off)",
                        continuous_update=False)
    button = W.Button(description=f"sample {n_samples} continuations")
    image = W.Image(format="png")  # an Image, not an Output widget: no display capture, same in Lab, Colab, nbclient
    hint = "<i>Press the button to sample continuations with these settings.</i>"
    samples = W.HTML(hint)
    presses = [0]

    def _update(_=None) -> None:
        """Redraw the figure from the kept logits of the prompt."""
        fig = draw_temperature_explorer(logits[prompt_w.value], tokenizer, t_w.value, k_w.value, p_w.value,
                                        n_top=n_top)
        image.value = figure_png(fig)

    def _read(_=None) -> None:
        """A new prompt: one forward pass (its logits are kept), then redraw; a bad prompt is reported, not drawn."""
        if prompt_w.value not in logits:
            try:
                logits[prompt_w.value] = next_token_logits(model, prompt_ids(tokenizer, prompt_w.value))
            except ValueError as err:
                samples.value = f"<b>{html.escape(str(err))}</b>"
                return
        samples.value = hint
        _update()

    def _sample(_=None) -> None:
        """Sample continuations with the current settings and the next seed."""
        if prompt_w.value not in logits:  # a bad prompt: its error stays on display
            return
        seed, presses[0] = presses[0], presses[0] + 1
        try:
            texts = sample_continuations(model, tokenizer, prompt_w.value, t_w.value, k_w.value, p_w.value,
                                         n_samples=n_samples, max_new_tokens=max_new_tokens, seed=seed)
        except ValueError as err:  # e.g. the prompt + max_new_tokens exceed the model's positions
            samples.value = f"<b>{html.escape(str(err))}</b>"
            return
        items = "".join(f"<li style='white-space: pre-wrap'>{html.escape(prompt_w.value)}<b>{html.escape(t)}</b></li>"
                        for t in texts)
        samples.value = (f"T = {t_w.value:.2f}, top-k = {k_w.value}, top-p = {p_w.value:.2f}, seed {seed}:"
                         f"<ol>{items}</ol>")

    prompt_w.observe(_read, names="value")
    for control in (t_w, k_w, p_w):
        control.observe(_update, names="value")
    button.on_click(_sample)
    _update()
    return W.VBox([prompt_w, W.HBox([t_w, k_w, p_w]), image, W.HBox([button]), samples])
