"""The two explorers of the book, and the matplotlib figures they are checked against.

Each explorer is an anywidget: Python sends the numbers once (the q, k vectors of the example sentences; the full
next-token logits of each prompt), and explorers.js (the same file in JupyterLab, Colab and the static book) redraws
the figure for every control, so the controls respond in the published pages with no kernel. With a kernel the
temperature explorer also reads new prompts and samples continuations. The arithmetic in the JavaScript mirrors
attention.build_mask and warpers.warp_logits, which remain the reference (tests/browser/check_book.py compares them):
    draw_mask_explorer(kind, tokens, q, k, ...)           -> matplotlib Figure: mask grid + attention weights
    attention_mask_explorer(tokens, q, k, ...)            -> MaskExplorer (chapter 01)
    draw_temperature_explorer(logits, tokenizer, ...)     -> matplotlib Figure: the two distributions, top tokens
    sample_continuations(model, tokenizer, prompt, ...)   -> seeded samples under the same warpers
    temperature_explorer(model, tokenizer, prompts)       -> TemperatureExplorer (chapter 09); one forward pass a prompt
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Sequence

import anywidget
import matplotlib.pyplot as plt
import torch
import traitlets as t
from torch import nn

from ._validate import check_choice, check_finite, check_int, check_seed, check_strings, check_tensor, seeded
from .attention import MASK_KINDS, PAD_SIDES, build_mask, pad_positions, scaled_dot_product_attention
from .browser_gpt import PAGE_MODEL, runs_in_page
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


class _Explorer(anywidget.AnyWidget):
    """An explorer drawn by explorers.js: the figure is recomputed in the page for every control, kernel or not."""

    _esm = Path(__file__).with_name("explorers.js")
    _css = """
    .cu-explorer { font-size: 13px; }
    .cu-controls { display: flex; flex-wrap: wrap; gap: 0.4em 1.6em; align-items: center; margin: 0.3em 0; }
    .cu-control label { margin-right: 0.5em; white-space: nowrap; }
    .cu-control output { display: inline-block; min-width: 3em; margin-left: 0.4em; font-variant-numeric: tabular-nums; }
    .cu-caption, .cu-hint { margin: 0.3em 0; }
    .cu-hint { font-style: italic; opacity: 0.75; }
    .cu-samples li { white-space: pre-wrap; }
    .cu-figure { overflow-x: auto; }
    """
    explorer = t.Unicode().tag(sync=True)  # which of the two explorers.js draws: "mask" or "temperature"


class MaskExplorer(_Explorer):
    """Chapter 01's explorer: a mask kind, lengths and padding -> the mask grid and alpha = softmax(scale q k^T)."""

    explorer = t.Unicode("mask").tag(sync=True)
    tokens = t.List(t.Unicode()).tag(sync=True)  # the queries' sentence (and the keys', in self-attention)
    source_tokens = t.List(t.Unicode()).tag(sync=True)  # the keys' sentence of "cross" ([]: no cross)
    q = t.List(t.List(t.Float())).tag(sync=True)  # (len(tokens), d), or [] for the mask alone
    k = t.List(t.List(t.Float())).tag(sync=True)  # (len(tokens), d)
    k_source = t.List(t.List(t.Float())).tag(sync=True)  # (len(source_tokens), d)
    scale = t.Float(1.0).tag(sync=True)
    kind = t.Enum(MASK_KINDS, "causal").tag(sync=True)
    pad_side = t.Enum(PAD_SIDES, "right").tag(sync=True)
    n_queries = t.Int().tag(sync=True)
    n_keys = t.Int().tag(sync=True)  # read for "cross" only: self-attention has as many keys as queries
    n_pad = t.Int(0).tag(sync=True)

    def __repr__(self) -> str:
        return (f"MaskExplorer({len(self.tokens)} tokens, {len(self.source_tokens)} source tokens, kind={self.kind!r}, "
                f"n_pad={self.n_pad})")


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
) -> MaskExplorer:
    """Widget: pick the mask kind, the lengths and the padding; see the mask grid and the attention weights.

    "cross" is offered only when source_tokens is given (keys from that sentence, k_source its keys).
    kind and n_pad are the initial settings; the arguments are those of draw_mask_explorer, checked by it.
    """
    for kd in {kind, "cross"} if source_tokens is not None else {kind}:  # validate before building the widget
        plt.close(draw_mask_explorer(kd, tokens, q, k, n_pad=n_pad if kd == kind else 0, source_tokens=source_tokens,
                                     k_source=k_source, scale=scale))
    rows = lambda x: [] if x is None else x.detach().float().tolist()  # noqa: E731  (L, d) -> lists, exact
    d = q.shape[1] if q is not None else 1
    return MaskExplorer(tokens=list(tokens), source_tokens=list(source_tokens or []), q=rows(q), k=rows(k),
                        k_source=rows(k_source), scale=1.0 / math.sqrt(d) if scale is None else scale, kind=kind,
                        n_queries=len(tokens), n_keys=len(source_tokens or tokens), n_pad=n_pad)

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


class TemperatureExplorer(_Explorer):
    """Chapter 09's explorer: temperature, top-k and top-p over the full next-token distribution of stored prompts.

    Each prompt entry holds the model's logits (V,) as float32 bytes in base64, the labels of the n_top most
    likely tokens (the bars; their order does not depend on the settings) and the prompt's token ids. With a
    kernel, the page can add prompts (read(prompt), one forward pass each) and sample continuations (sample(),
    seeds 0, 1, 2, ...); with none, the page does both itself when page_model names a model it carries.
    """

    explorer = t.Unicode("temperature").tag(sync=True)
    prompts = t.List(t.Dict()).tag(sync=True)  # {"prompt", "logits", "labels"} per prompt read
    selected = t.Int(0).tag(sync=True)  # the prompt shown
    temperature = t.Float(1.0).tag(sync=True)
    top_k = t.Int(0).tag(sync=True)
    top_p = t.Float(1.0).tag(sync=True)
    n_top = t.Int(20).tag(sync=True)
    top_k_max = t.Int(100).tag(sync=True)  # the end of the top-k slider
    temperature_range = t.List(t.Float(), default_value=list(TEMPERATURE_RANGE)).tag(sync=True)
    n_samples = t.Int(3).tag(sync=True)
    max_new_tokens = t.Int(30).tag(sync=True)  # the length of a sample
    samples = t.List(t.List(t.Unicode())).tag(sync=True)  # [prompt, continuation] per sample
    page_model = t.Unicode("").tag(sync=True)  # "tiny_gpt": a page with no kernel runs the model itself
    status = t.Unicode("").tag(sync=True)  # the settings of the samples shown, or why a request failed

    def __init__(self, model: nn.Module, tokenizer, **traits):
        super().__init__(**traits)
        self._model, self._tokenizer, self._presses = model, tokenizer, 0
        self.on_msg(self._on_msg)

    def __repr__(self) -> str:
        return (f"TemperatureExplorer({len(self.prompts)} prompts, temperature={self.temperature:g}, top_k={self.top_k}, "
                f"top_p={self.top_p:g})")

    @t.validate("temperature", "top_k", "top_p")
    def _check_setting(self, proposal):
        settings = {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}
        settings[proposal["trait"].name] = proposal["value"]
        check_warpers(**settings)
        return proposal["value"]

    def read(self, prompt: str) -> None:
        """Run the model once on prompt and show its next-token distribution (a bad prompt raises ValueError)."""
        if prompt == "":
            raise ValueError("prompt must hold some text, got an empty prompt")
        ids = prompt_ids(self._tokenizer, prompt)  # (1, T)
        logits = next_token_logits(self._model, ids).float()  # (V,)
        check_int("n_top", self.n_top, 1, len(logits))
        top = logits.argsort(descending=True, stable=True)[: self.n_top]  # the ranking explorers.js uses
        entry = {"prompt": prompt, "logits": base64.b64encode(logits.numpy().tobytes()).decode(),
                 "labels": token_labels(self._tokenizer, top), "ids": ids[0].tolist()}
        self.prompts = [*self.prompts, entry]
        self.selected = len(self.prompts) - 1

    def logits(self, index: int | None = None) -> torch.Tensor:
        """The stored logits (V,) of prompt number index (default: the one shown), as the page decodes them."""
        return stored_logits(self.prompts[self.selected if index is None else index])

    def sample(self) -> None:
        """Sample n_samples continuations of the prompt shown with the current settings and the next seed."""
        seed, self._presses = self._presses, self._presses + 1
        prompt = self.prompts[self.selected]["prompt"]
        texts = sample_continuations(self._model, self._tokenizer, prompt, self.temperature, self.top_k, self.top_p,
                                     n_samples=self.n_samples, max_new_tokens=self.max_new_tokens, seed=seed)
        self.samples = [[prompt, text] for text in texts]
        self.status = f"T = {self.temperature:.2f}, top-k = {self.top_k}, top-p = {self.top_p:.2f}, seed {seed}:"

    def _on_msg(self, _, content: dict, buffers) -> None:
        """The page's requests: "hello" (is a kernel there?), "prompt" (read a new one), "sample"."""
        try:
            if content.get("type") == "hello":
                self.send({"type": "live"})
            elif content.get("type") == "prompt":
                self.read(str(content.get("text", "")))
                self.status = ""
            elif content.get("type") == "sample":
                self.sample()
        except ValueError as err:  # e.g. a prompt with no token, or longer than the model's positions
            self.status = str(err)


def stored_logits(entry: dict) -> torch.Tensor:
    """The logits (V,) of one stored prompt entry of a TemperatureExplorer's state (float32 bytes in base64)."""
    return torch.frombuffer(bytearray(base64.b64decode(entry["logits"])), dtype=torch.float32)


def temperature_explorer(
    model: nn.Module,
    tokenizer,
    prompts: str | Sequence[str],
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    n_top: int = 20,
    n_samples: int = 3,
    max_new_tokens: int = 30,
) -> TemperatureExplorer:
    """Widget: move temperature, top-k and top-p, see the next-token distribution change; sample continuations.

    The model reads each prompt once (its logits are stored in the widget, so the page redraws them without a
    kernel); the first prompt is shown. The button samples n_samples continuations with seed 0, then 1, 2, ...
    When the model is the shipped tiny GPT with its BPE, a page with no kernel (the book) reads new prompts and
    samples by itself (browser_gpt.js; its sampler is seeded too, but draws other numbers than torch's).
    """
    low, high = TEMPERATURE_RANGE
    check_warpers(temperature, top_k, top_p)
    if not low <= temperature <= high:
        raise ValueError(f"temperature must lie in [{low}, {high}] (the slider's range), got {temperature}")
    for name, value in (("n_top", n_top), ("n_samples", n_samples), ("max_new_tokens", max_new_tokens)):
        check_int(name, value, 1)
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    check_strings("prompts", prompts, nonempty=True, what="one prompt or a list of prompts")
    V = tokenizer_size(tokenizer)
    check_int("n_top", n_top, 1, V)
    check_int("top_k", top_k, 0, V)
    explorer = TemperatureExplorer(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature,
                                   top_k=top_k, top_p=top_p, n_top=n_top, n_samples=n_samples,
                                   top_k_max=min(V, max(100, top_k)),
                                   page_model=PAGE_MODEL if runs_in_page(model, tokenizer) else "")
    for prompt in prompts:
        explorer.read(prompt)
    explorer.selected = 0
    return explorer
