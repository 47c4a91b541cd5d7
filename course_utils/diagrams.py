"""The lecture's architecture figures (1, 3, 8, 14, 17, 18) drawn by code, in one style.

Data flows upwards, inputs at the bottom. Each function returns a white figure of its own, or draws into `ax` (to
put several side by side). Each block shows the lecture's name and equation, and below it, in grey
monospace, the course_utils code that builds it (tests/test_diagrams.py checks that each name exists). The
figures have a white background, so they read the same in the book's light and dark modes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ._validate import check_choice

COLOURS = {"attention": "#fdd49e", "cross": "#fcbba1", "ffn": "#c6dbef", "norm": "#e5e5e5", "embed": "#c7e9c0",
           "head": "#dadaeb"}
PLACEMENTS = ("lecture", "post", "pre")
W, H = 3.6, 0.62  # a block's width and height, in data units


def _canvas(title: str, ax: plt.Axes | None) -> tuple[plt.Figure, plt.Axes]:
    """A white figure (or the given axes of one, drawn into side by side) with room for the title."""
    if ax is None:
        _, ax = plt.subplots(facecolor="white")
        ax.figure.fit_to_drawing = True  # _finish sizes a figure of its own, never one it was given axes of
    fig = ax.figure
    fig.set_facecolor("white")
    fig.course_code = getattr(fig, "course_code", [])  # the course_utils names it shows (tests/test_diagrams.py)
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    return fig, ax


def _block(ax: plt.Axes, x: float, y: float, text: str, kind: str, code: str = "", width: float = W) -> tuple:
    """A rounded block centred on (x, y): text in black, the code that builds it in grey; returns its centre."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - H / 2), width, H, boxstyle="round,pad=0.02,rounding_size=0.12",
                                facecolor=COLOURS[kind], edgecolor="#444444", linewidth=1))
    ax.text(x, y + (0.09 if code else 0), text, ha="center", va="center", fontsize=8.5, color="black")
    if code:
        ax.text(x, y - 0.17, code, ha="center", va="center", fontsize=6.5, color="#555555", family="monospace")
        ax.figure.course_code.append(code)
    return x, y


def _caption(ax: plt.Axes, x: float, text: str, code: str) -> None:
    """The code that builds the whole figure, in grey monospace under it (text: how it is written there)."""
    ax.text(x, -0.55, text, ha="center", fontsize=7, family="monospace", color="#555555")
    ax.figure.course_code.append(code)


def _add(ax: plt.Axes, x: float, y: float, label: str = "") -> tuple:
    """The skip connection's sum: a circled plus, with the equation it belongs to."""
    ax.add_patch(plt.Circle((x, y), 0.16, facecolor="white", edgecolor="#444444", linewidth=1))
    ax.text(x, y, "+", ha="center", va="center", fontsize=10)
    if label:
        ax.text(x + 0.25, y, label, ha="left", va="center", fontsize=7, color="#555555")
    return x, y


def _arrow(ax: plt.Axes, a: tuple, b: tuple, *, gap_a: float = H / 2, gap_b: float = H / 2,
           colour: str = "#222222") -> None:
    """An arrow from block a to block b (gaps: how far from the centres it starts and ends)."""
    (xa, ya), (xb, yb) = a, b
    start = (xa, ya + gap_a) if xa == xb or abs(yb - ya) > abs(xb - xa) else (xa + (gap_a if xb > xa else -gap_a), ya)
    end = (xb, yb - gap_b) if xa == xb or abs(yb - ya) > abs(xb - xa) else (xb - (gap_b if xb > xa else -gap_b), yb)
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=colour, linewidth=1))


def _skip(ax: plt.Axes, a: tuple, plus: tuple, side: float = -1.0) -> None:
    """The residual path: from a around the side of the sub-layer into the sum."""
    x = a[0] + side * (W / 2 + 0.35)
    ax.plot([a[0], x, x], [a[1], a[1], plus[1]], color="#222222", linewidth=1)
    ax.add_patch(FancyArrowPatch((x, plus[1]), (plus[0] + side * 0.16, plus[1]), arrowstyle="-|>",
                                 mutation_scale=9, color="#222222", linewidth=1))


def _sublayer(ax: plt.Axes, x: float, y: float, inp: tuple, block: tuple, norm: str, gap: float) -> tuple:
    """One sub-layer with its skip connection, in the placement `norm`, above inp (whose top is gap above its
    centre); returns its output, the gap above that output's centre, and where the next sub-layer starts.

    lecture (eq. 4): x + LN(F(x)); post (BERT, BART): LN(x + F(x)); pre (GPT-2): x + F(LN(x)).
    """
    text, kind, code = block
    branch = (x, inp[1] + gap + 0.12)  # where the residual path leaves the main one
    steps = [("LayerNorm, eq. (3)", "norm", "LayerNorm"), block] if norm == "pre" else [block]
    if norm == "lecture":
        steps.append(("LayerNorm, eq. (3)", "norm", "LayerNorm(affine=False)"))
    previous, previous_gap = inp, gap
    for text, kind, code in steps:
        y += 1
        current = _block(ax, x, y, text, kind, code)
        _arrow(ax, previous, current, gap_a=previous_gap)
        previous, previous_gap = current, H / 2
    plus = _add(ax, x, y + 0.8, "eq. (4)")
    _arrow(ax, previous, plus, gap_b=0.16)
    _skip(ax, branch, plus)
    if norm != "post":
        return plus, 0.16, y + 0.8
    ln = _block(ax, x, y + 1.6, "LayerNorm, eq. (3)", "norm", "LayerNorm")
    _arrow(ax, plus, ln, gap_a=0.16)
    return ln, H / 2, y + 1.6


def _io(ax: plt.Axes, x: float, y: float, text: str) -> tuple:
    ax.text(x, y, text, ha="center", va="center", fontsize=9)
    return x, y


def _finish(fig: plt.Figure, ax: plt.Axes, xlim: tuple, ylim: tuple) -> plt.Figure:
    """Fit a figure of its own to the drawing: 0.55 inch per unit of the data, so that every figure has one scale."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    if getattr(fig, "fit_to_drawing", False):
        fig.set_size_inches(0.55 * (xlim[1] - xlim[0]), 0.55 * (ylim[1] - ylim[0]) + 0.45)
        fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - 0.45 / fig.get_size_inches()[1])
    return fig


ATTENTION = ("self-attention, eq. (1)", "attention", "MultiHeadAttention")
FFN = ("feed-forward, eq. (2)", "ffn", "FeedForward")


def transformer_layer(norm: str = "lecture", ax: plt.Axes | None = None) -> plt.Figure:
    """Figure 1: one transformer layer, attention then the feed-forward, with the LayerNorm placed as `norm` says."""
    check_choice("norm", norm, PLACEMENTS)
    name = {"lecture": "the lecture, eq. (4)", "post": "post-LN (BERT, BART)", "pre": "pre-LN (GPT-2)"}[norm]
    fig, ax = _canvas(f"Figure 1: a transformer layer\n{name}", ax)
    x = _io(ax, 0, 0, r"$\mathbf{x}_1, \dots, \mathbf{x}_L$")
    out, gap, y = _sublayer(ax, 0, 0, x, ATTENTION, norm, 0.2)
    out, gap, y = _sublayer(ax, 0, y + 0.3, out, FFN, norm, gap)
    top = _io(ax, 0, y + 1.1, r"$\mathbf{y}_1, \dots, \mathbf{y}_L$")
    _arrow(ax, out, top, gap_a=gap, gap_b=0.2)
    _caption(ax, 0, f'TransformerLayer(norm="{norm}")', "TransformerLayer")
    return _finish(fig, ax, (-2.6, 2.6), (-0.8, y + 1.5))


def encoder_stack(ax: plt.Axes | None = None) -> plt.Figure:
    """Figure 3 (and 4): embeddings, then N layers; the outputs are deep contextualised word embeddings."""
    fig, ax = _canvas("Figure 3: a stack of transformer layers", ax)
    x = _io(ax, 0, 0, r"tokens $w_1, \dots, w_L$")
    e = _block(ax, 0, 1, "embeddings: token + position", "embed", "Embeddings")
    _arrow(ax, x, e, gap_a=0.2)
    layers = [_block(ax, 0, 2 + k, f"transformer layer {k + 1}", "attention", "TransformerLayer") for k in range(2)]
    dots = _io(ax, 0, 3.75, r"$\vdots$   (N layers)")
    last = _block(ax, 0, 4.5, "transformer layer N", "attention", "TransformerLayer")
    for a, b in ((e, layers[0]), (layers[0], layers[1])):
        _arrow(ax, a, b)
    _arrow(ax, layers[1], dots, gap_b=0.25)
    _arrow(ax, dots, last, gap_a=0.2)
    top = _io(ax, 0, 5.55, r"$\mathbf{y}_1, \dots, \mathbf{y}_L$: contextual embeddings (figure 4)")
    _arrow(ax, last, top, gap_b=0.2)
    _caption(ax, 0, "Encoder", "Encoder")
    return _finish(fig, ax, (-2.8, 2.8), (-0.8, 5.9))


def fine_tuning(ax: plt.Axes | None = None) -> plt.Figure:
    """Figure 8: the same encoder under the pre-training heads (MLM, NSP) and under a new classifier."""
    fig, ax = _canvas("Figure 8: from pre-training to fine-tuning", ax)
    for x, title, code in ((0, "pre-training", "EncoderForPreTraining"),
                           (5, "fine-tuning", "EncoderForClassification")):
        inp = _io(ax, x, 0, r"[CLS] $s_1$ [SEP] $s_2$ [SEP]" if x == 0 else r"[CLS] $x$ [SEP]")
        enc = _block(ax, x, 1.2, "encoder (BERT)", "attention", "Encoder")
        _arrow(ax, inp, enc, gap_a=0.2)
        _caption(ax, x, f"{title}: {code}", code)
        if x == 0:
            mlm = _block(ax, x - 0.9, 2.7, r"MLM: $P_\theta(w \mid \tilde{x})$", "head", "MLMHead", width=2.1)
            pool = _block(ax, x + 1.2, 2.7, "pooler, [CLS]", "head", "Pooler", width=1.9)
            nsp = _block(ax, x + 1.2, 3.9, "NSP, eq. (5)", "head", "EncoderForPreTraining.nsp", width=1.9)
            _arrow(ax, (x - 0.9, 1.2), mlm)
            _arrow(ax, (x + 1.2, 1.2), pool)
            _arrow(ax, pool, nsp)
        else:
            pool = _block(ax, x, 2.7, "pooler, [CLS] (kept)", "head", "Pooler")
            cls = _block(ax, x, 3.9, r"new classifier: $P_\theta(y \mid x)$, eq. (6)", "cross",
                         "EncoderForClassification.classifier", width=3.9)
            _arrow(ax, enc, pool)
            _arrow(ax, pool, cls)
    _arrow(ax, (1.85, 1.2), (3.15, 1.2), gap_a=0, gap_b=0)
    ax.text(2.5, 1.45, "same weights", ha="center", fontsize=7, color="#555555")
    ax.text(0, 4.75, "both heads dropped", ha="center", fontsize=7, color="#555555")
    return _finish(fig, ax, (-2.3, 7.3), (-0.9, 5.0))


def decoder(ax: plt.Axes | None = None) -> plt.Figure:
    """Figure 14: the causal decoder, GPT-like: token i sees the tokens j <= i and predicts token i + 1."""
    fig, ax = _canvas("Figure 14: the decoder (GPT-2)", ax)
    inp = _io(ax, 0, 0, r"$x_1, \dots, x_i$")
    e = _block(ax, 0, 1, "embeddings: token + position", "embed", "Decoder.tok, Decoder.pos", width=4.2)
    layer = _block(ax, 0, 2.2, "N layers, causal self-attention", "attention",
                   'TransformerLayer(norm="pre"), causal_mask', width=4.2)
    norm = _block(ax, 0, 3.4, "final LayerNorm", "norm", "Decoder.norm")
    head = _block(ax, 0, 4.6, "LM head, tied to the embeddings", "head", "Decoder.tok.weight.T", width=4.2)
    top = _io(ax, 0, 5.6, r"$P_\theta(x_{i+1} \mid x_{\leq i})$ for every $i$")
    for a, b in ((inp, e), (e, layer), (layer, norm), (norm, head), (head, top)):
        _arrow(ax, a, b, gap_a=0.2 if a is inp else H / 2, gap_b=0.2 if b is top else H / 2)
    _caption(ax, 0, "Decoder", "Decoder")
    return _finish(fig, ax, (-2.6, 2.6), (-0.8, 6.0))


def encoder_decoder(ax: plt.Axes | None = None) -> plt.Figure:
    """Figures 15 and 17: the encoder reads the source once; every decoder layer reads h^enc by cross-attention."""
    fig, ax = _canvas("Figure 17: an encoder-decoder with cross-attention (BART)", ax)
    src = _io(ax, 0, 0, r"source $x_1, \dots, x_{L_{enc}}$")
    tgt = _io(ax, 6, 0, r"target so far, shifted right: $z_1, \dots, z_i$")
    enc = [_block(ax, 0, 1.2 + 1.2 * k, f"encoder layer {k + 1}", "attention", "TransformerLayer: bidirectional")
           for k in range(2)]
    dec = [_block(ax, 6, 1.2 + 1.2 * k, f"decoder layer {k + 1}", "cross", "DecoderLayer: causal + cross")
           for k in range(2)]
    h = _io(ax, 0, 3.6, r"$\mathbf{h}^{enc}_1, \dots, \mathbf{h}^{enc}_{L_{enc}}$")
    head = _block(ax, 6, 3.6, "LM head (tied)", "head", "EncoderDecoder.decode")
    top = _io(ax, 6, 4.6, r"$P_\theta(y_{i+1} \mid y_{\leq i}, x)$")
    _arrow(ax, src, enc[0], gap_a=0.2)
    _arrow(ax, enc[0], enc[1])
    _arrow(ax, enc[1], h, gap_b=0.2)
    _arrow(ax, tgt, dec[0], gap_a=0.2)
    _arrow(ax, dec[0], dec[1])
    _arrow(ax, dec[1], head)
    _arrow(ax, head, top, gap_b=0.2)
    ax.plot([1.6, 3.3, 3.3], [3.6, 3.6, dec[0][1]], color="#b2182b", linewidth=1)  # from h^enc down the side
    for layer in dec:  # ...into the cross-attention of every decoder layer
        _arrow(ax, (3.3, layer[1]), layer, gap_a=0, gap_b=W / 2, colour="#b2182b")
    ax.text(1.7, 3.75, r"$\mathbf{K}, \mathbf{V}$ read $\mathbf{h}^{enc}$", fontsize=7, color="#b2182b")
    _caption(ax, 0, "EncoderDecoder.encode", "EncoderDecoder.encode")
    return _finish(fig, ax, (-2.3, 8.9), (-0.8, 5.0))


def decoder_layer(ax: plt.Axes | None = None) -> plt.Figure:
    """Figure 18: the decoder layer of an encoder-decoder: causal self-attention, cross-attention, feed-forward."""
    fig, ax = _canvas("Figure 18: a decoder layer with cross-attention\n(post-LN, as BART)", ax)
    z = _io(ax, 0, 0, r"$\mathbf{z}_1, \dots, \mathbf{z}_i$")
    blocks = [("causal self-attention, eq. (1)", "attention", "DecoderLayer.self_attn"),
              (r"cross-attention: $\mathbf{k}_j, \mathbf{v}_j$ from $\mathbf{h}^{enc}_j$", "cross",
               "DecoderLayer.cross_attn(z, context=h_enc)"), FFN]
    out, gap, y = z, 0.2, 0.0
    cross_y = None
    for k, block in enumerate(blocks):
        out, gap, y = _sublayer(ax, 0, y if k == 0 else y + 0.3, out, block, "post", gap)
        cross_y = y - 1.6 if k == 1 else cross_y
    top = _io(ax, 0, y + 1.1, "to the next decoder layer")
    _arrow(ax, out, top, gap_a=gap, gap_b=0.2)
    h = _io(ax, 3.6, cross_y, r"$\mathbf{h}^{enc}$")
    _arrow(ax, h, (0, cross_y), gap_a=0.4, gap_b=W / 2, colour="#b2182b")
    _caption(ax, 0, "DecoderLayer", "DecoderLayer")
    return _finish(fig, ax, (-2.6, 4.2), (-0.8, y + 1.5))
