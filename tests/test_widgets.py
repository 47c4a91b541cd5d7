"""The two explorers: the masks and warpers behind them, the figures they are checked against, the numbers each
widget stores for the page, the kernel side (prompts, samples), their errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.attention import scaled_dot_product_attention  # noqa: E402
from course_utils.attention import build_mask, pad_positions  # noqa: E402
from course_utils.widgets import attention_mask_explorer, draw_mask_explorer  # noqa: E402

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
    assert len(fig.axes) == 3  # the mask (its legend on it), the weights and their colour bar
    assert fig.axes[0].get_title() == "mask: padding" and fig.axes[0].get_legend() is not None
    assert fig.axes[1].images[0].get_clim() == (0.0, 1.0) and fig.axes[2].get_ylabel() == r"$\alpha_{ij}$"
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


def test_widget_holds_the_numbers_the_page_computes_from(qk):
    """The page (explorers.js) draws from these traits; their arithmetic is checked in test_explorers_js.py."""
    from course_utils.widgets import MaskExplorer

    q, k, k_src = qk
    w = attention_mask_explorer(TOKENS, q, k, SOURCE, k_src, kind="padding", n_pad=1)
    assert isinstance(w, MaskExplorer) and w.explorer == "mask"
    assert (w.tokens, w.source_tokens, w.kind, w.n_pad, w.n_queries, w.n_keys) == (TOKENS, SOURCE, "padding", 1, 6, 4)
    assert torch.equal(torch.tensor(w.q), q) and torch.equal(torch.tensor(w.k_source), k_src)  # float32 -> exact
    assert w.scale == pytest.approx(0.5)  # 1 / sqrt(d), d = 4
    state = w.get_state()
    assert "export default" in state["_esm"] and state["k"] == k.tolist()  # what the notebook stores for the page
    with pytest.raises(Exception, match="kind"):
        w.kind = "diagonal"


def test_widget_without_source_has_no_cross_and_validates():
    w = attention_mask_explorer(TOKENS)
    assert w.source_tokens == [] and w.q == [] and w.n_keys == len(TOKENS)
    with pytest.raises(ValueError, match="n_pad"):
        attention_mask_explorer(TOKENS, kind="padding", n_pad=6)
    with pytest.raises(ValueError, match="source_tokens"):
        attention_mask_explorer(TOKENS, kind="cross")


# ---------------------------------------------------------------- the temperature explorer (chapter 09)

import math  # noqa: E402

from course_utils.data import BPE_SPECIAL_TOKENS, load_bpe  # noqa: E402
from course_utils.generation import apply_temperature, generate, top_k_filter, top_p_filter  # noqa: E402
from course_utils.models import Decoder  # noqa: E402
from course_utils.data import prompt_ids, token_labels  # noqa: E402
from course_utils.metrics import entropy  # noqa: E402
from course_utils.generation import next_token_logits  # noqa: E402
from course_utils.warpers import warp_distribution  # noqa: E402
from course_utils.widgets import draw_temperature_explorer, sample_continuations, temperature_explorer  # noqa: E402

PROMPT = "Hamlet: To be, or not"
EOS = BPE_SPECIAL_TOKENS.index("</s>")


@pytest.fixture(scope="module")
def bpe():
    return load_bpe()


@pytest.fixture
def lm():
    """A random tiny decoder over our BPE's 8000 ids, with a counter of its forward passes."""
    g = torch.Generator().manual_seed(0)
    model = Decoder(8000, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=48).eval()
    with torch.no_grad():
        model.tok.weight.copy_(torch.randn(8000, 16, generator=g))  # spread logits: a peaked distribution
    model.calls = 0

    def count(module, args, output):
        module.calls += 1

    model.register_forward_hook(count)
    return model


def z_of(n: int = 50, seed: int = 0, scale: float = 3.0) -> torch.Tensor:
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("temperature, top_k, top_p", [(0.7, 10, 0.8), (1.0, 5, 1.0), (2.0, 0, 0.5), (0.05, 0, 0.9),
                                                       (1.3, 40, 0.95)])
def test_warp_distribution_is_the_warper_chain(temperature, top_k, top_p):
    z = z_of()
    dist = warp_distribution(z, temperature, top_k, top_p)
    warped = apply_temperature(z, temperature)
    if top_k:
        warped = top_k_filter(warped, top_k)
    if top_p < 1:
        warped = top_p_filter(warped, top_p)
    assert torch.allclose(dist.after, warped.softmax(-1), atol=1e-7)
    assert torch.allclose(dist.before, z.softmax(-1))
    kept = warped.isfinite()
    assert set(dist.survivors.tolist()) == set(torch.nonzero(kept).flatten().tolist())
    assert (z[dist.survivors].diff() <= 0).all()  # most likely first
    assert not kept.all() or top_k == 0  # a filter removes something
    assert (dist.after[~kept] == 0).all() and math.isclose(float(dist.after.sum()), 1.0, abs_tol=1e-6)


def test_filters_off_keep_every_token_and_temperature_reshapes():
    z = z_of()
    dist = warp_distribution(z, 0.5)
    assert len(dist.survivors) == 50 and torch.allclose(dist.after, (2 * z).softmax(-1))
    assert torch.equal(dist.survivors, z.argsort(descending=True))
    same = warp_distribution(z)
    assert torch.allclose(same.after, same.before) and same.entropy_after == pytest.approx(same.entropy_before)


def test_survivors_of_the_specs_example():
    z = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    assert warp_distribution(z, top_p=0.75).survivors.tolist() == [0, 1]
    assert warp_distribution(z, top_p=0.9).survivors.tolist() == [0, 1, 2]
    assert warp_distribution(z, top_k=2, top_p=0.9).survivors.tolist() == [0, 1]
    assert torch.allclose(warp_distribution(z, top_p=0.75).after, torch.tensor([0.625, 0.375, 0, 0]))


def test_entropy_values():
    assert entropy(torch.full((8,), 1 / 8)) == pytest.approx(math.log(8))
    assert entropy(torch.tensor([0.0, 1.0, 0.0])) == 0.0  # 0 log 0 = 0, no NaN
    assert entropy(torch.tensor([0.5, 0.25, 0.25, 0.0])) == pytest.approx(1.5 * math.log(2))
    z = z_of()
    by_hand = -(z.softmax(-1) * z.log_softmax(-1)).sum()
    assert warp_distribution(z).entropy_before == pytest.approx(float(by_hand), rel=1e-5)


def test_entropy_grows_with_temperature_and_shrinks_with_filters():
    z = z_of(scale=2.0)
    h = [warp_distribution(z, t).entropy_after for t in (0.05, 0.3, 0.7, 1.0, 2.0, 5.0)]
    assert all(a < b for a, b in zip(h, h[1:]))
    assert h[0] < 1e-3 and h[-1] > 0.9 * math.log(50)  # near one-hot, near uniform
    assert warp_distribution(z, top_k=5).entropy_after < warp_distribution(z).entropy_after <= math.log(50)
    assert warp_distribution(z, top_k=1).entropy_after == 0.0


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        ((z_of(), 0.0), {}, ValueError, ["temperature", "> 0", "0.0"]),
        ((z_of(), -1.0), {}, ValueError, ["temperature", "-1.0"]),
        ((z_of(),), dict(top_k=-1), ValueError, ["top_k", ">= 0", "-1"]),
        ((z_of(),), dict(top_k=2.5), TypeError, ["top_k", "int", "2.5"]),
        ((z_of(),), dict(top_p=0.0), ValueError, ["top_p", "0.0"]),
        ((z_of(),), dict(top_p=1.5), ValueError, ["top_p", "(0, 1]", "1.5"]),
        ((z_of().view(5, 10),), {}, ValueError, ["logits", "1 dimensions", "(5, 10)"]),
        ((torch.arange(5),), {}, TypeError, ["logits", "floating"]),
    ],
)
def test_warp_distribution_bad_arguments(args, kwargs, error, words):
    with pytest.raises(error) as info:
        warp_distribution(*args, **kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_prompt_ids_keep_bos_and_drop_the_closing_eos(bpe):
    from transformers import PreTrainedTokenizerFast

    ids = prompt_ids(bpe, PROMPT)
    assert ids.tolist() == [[BPE_SPECIAL_TOKENS.index("<s>"), *bpe.encode(PROMPT, add_special_tokens=False).ids]]
    wrapped = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    assert torch.equal(prompt_ids(wrapped, PROMPT), ids)  # a transformers tokenizer gives the same
    assert prompt_ids(bpe, "").tolist() == [[0]]  # the start of a text
    with pytest.raises(TypeError, match="prompt must be a str"):
        prompt_ids(bpe, [1, 2])


def test_prompt_without_any_token_is_an_error(bpe):
    from tokenizers import Tokenizer, processors

    bare = Tokenizer.from_str(bpe.to_str())
    bare.post_processor = processors.TemplateProcessing(single="$A", special_tokens=[])
    with pytest.raises(ValueError, match="at least one token"):
        prompt_ids(bare, "")


def test_token_labels_show_spaces_newlines_and_specials(bpe):
    ids = bpe.encode(" the\n\t", add_special_tokens=False).ids + [EOS]
    assert token_labels(bpe, ids) == ["␣the", "⏎", "\\t", "</s>"]


def test_next_token_logits_is_one_pass_at_the_last_position(lm, bpe):
    ids = prompt_ids(bpe, PROMPT)
    z = next_token_logits(lm, ids)
    assert lm.calls == 1 and torch.equal(z, lm(ids, logits_to_keep=1).logits[0, -1])
    assert torch.allclose(z, lm(ids).logits[0, -1], atol=1e-5)  # the same row of a larger product
    with pytest.raises(ValueError, match="one prompt"):
        next_token_logits(lm, ids.expand(2, -1))


def test_figure_shows_both_distributions_and_the_removed_tokens(bpe):
    z = z_of(8000, seed=1)
    fig = draw_temperature_explorer(z, bpe, 0.8, 6, 0.9, n_top=12)
    dist, top = warp_distribution(z, 0.8, 6, 0.9), z.argsort(descending=True)[:12]
    bars = fig.axes[0].patches
    heights = torch.tensor([b.get_height() for b in bars], dtype=torch.float32)
    assert torch.allclose(heights[:12], dist.before[top]) and torch.allclose(heights[12:], dist.after[top])
    labels = fig.axes[0].get_xticklabels()
    assert [t.get_text() for t in labels] == token_labels(bpe, top)
    n = len(dist.survivors)
    assert 1 <= n <= 6 and [t.get_color() for t in labels] == ["black"] * n + ["tab:red"] * (12 - n)
    assert f"{n} of 8000 tokens survive" in fig.axes[0].get_title()
    assert f"{dist.entropy_after:.2f} nats" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="n_top"):
        draw_temperature_explorer(z, bpe, n_top=0)


def test_samples_are_seeded_and_leave_the_global_random_state_alone(lm, bpe):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = sample_continuations(lm, bpe, PROMPT, 1.5, 0, 1.0, n_samples=3, max_new_tokens=6, seed=7)
    assert torch.equal(torch.rand(3), expected_next)
    assert sample_continuations(lm, bpe, PROMPT, 1.5, 0, 1.0, n_samples=3, max_new_tokens=6, seed=7) == first
    assert sample_continuations(lm, bpe, PROMPT, 1.5, 0, 1.0, n_samples=3, max_new_tokens=6, seed=8) != first
    ids = prompt_ids(bpe, PROMPT)
    torch.manual_seed(7)
    out = generate(lm, ids.expand(3, -1), 6, do_sample=True, temperature=1.5, eos_token_id=EOS)
    assert first == [bpe.decode(row[ids.shape[1]:].tolist()) for row in out]
    greedy = bpe.decode(generate(lm, ids, 6)[0, ids.shape[1]:].tolist())
    assert sample_continuations(lm, bpe, PROMPT, top_k=1, n_samples=2, max_new_tokens=6) == [greedy] * 2


def test_widget_runs_the_model_once_per_prompt_and_stores_its_logits(lm, bpe):
    from course_utils.widgets import TemperatureExplorer

    w = temperature_explorer(lm, bpe, [PROMPT, "Ophelia:"], temperature=0.5, top_k=20)
    assert isinstance(w, TemperatureExplorer) and w.temperature_range == [0.05, 5.0]
    assert lm.calls == 2 and w.selected == 0 and [e["prompt"] for e in w.prompts] == [PROMPT, "Ophelia:"]
    for i, prompt in enumerate((PROMPT, "Ophelia:")):
        z = next_token_logits(lm, prompt_ids(bpe, prompt))
        assert torch.equal(w.logits(i), z)  # every one of the 8000 logits, exactly (float32 bytes)
        assert w.prompts[i]["labels"] == token_labels(bpe, z.argsort(descending=True, stable=True)[:20])
    lm.calls = 0
    w.temperature, w.top_k, w.top_p, w.selected = 2.0, 3, 0.5, 1  # what the page's controls change
    assert lm.calls == 0  # the page redraws from the stored logits
    with pytest.raises(ValueError, match="temperature"):
        w.temperature = 0.0
    with pytest.raises(ValueError, match="top_p"):
        w.top_p = 1.5


def test_the_page_learns_whether_a_kernel_answers(lm, bpe, monkeypatch):
    w = temperature_explorer(lm, bpe, PROMPT, n_samples=2, max_new_tokens=5)
    sent = []
    monkeypatch.setattr(w, "send", sent.append)
    w._on_msg(w, {"type": "hello"}, [])
    assert sent == [{"type": "live"}]  # with a kernel, the page shows the prompt box and the sample button
    lm.calls = 0
    w._on_msg(w, {"type": "prompt", "text": "Ophelia:"}, [])
    assert lm.calls == 1 and w.prompts[w.selected]["prompt"] == "Ophelia:" and w.status == ""


def test_widget_samples_with_the_next_seed(lm, bpe):
    w = temperature_explorer(lm, bpe, PROMPT, top_p=0.9, n_samples=2, max_new_tokens=5)
    w._on_msg(w, {"type": "sample"}, [])
    texts = sample_continuations(lm, bpe, PROMPT, 1.0, 0, 0.9, n_samples=2, max_new_tokens=5, seed=0)
    assert w.samples == [[PROMPT, text] for text in texts] and "seed 0" in w.status
    w.temperature = 3.0
    w.sample()
    texts = sample_continuations(lm, bpe, PROMPT, 3.0, 0, 0.9, n_samples=2, max_new_tokens=5, seed=1)
    assert w.samples == [[PROMPT, text] for text in texts] and "seed 1" in w.status and "T = 3.00" in w.status


def test_widget_reports_a_bad_prompt_and_validates_its_arguments(lm, bpe):
    w = temperature_explorer(lm, bpe, PROMPT, max_new_tokens=40)
    w._on_msg(w, {"type": "prompt", "text": "word " * 60}, [])  # longer than the model's 48 positions
    assert "max_len=48" in w.status and len(w.prompts) == 1
    w._on_msg(w, {"type": "sample"}, [])  # the prompt's 10 tokens + 40 new ones exceed the 48 positions
    assert "exceeds the model's 48 positions" in w.status and w.samples == []
    with pytest.raises(ValueError, match="temperature must lie in"):
        temperature_explorer(lm, bpe, PROMPT, temperature=10.0)
    with pytest.raises(ValueError, match="top_k"):
        temperature_explorer(lm, bpe, PROMPT, top_k=9000)
    with pytest.raises(ValueError, match="top_p"):
        temperature_explorer(lm, bpe, PROMPT, top_p=0.0)
    with pytest.raises(TypeError, match="prompts"):
        temperature_explorer(lm, bpe, [PROMPT, 3])
    lm.calls = 0
    with pytest.raises(TypeError, match="n_samples"):
        temperature_explorer(lm, bpe, PROMPT, n_samples=1.5)
    assert lm.calls == 0  # checked before the model runs


def test_the_shipped_tiny_gpt_is_marked_for_the_page_and_an_empty_prompt_is_refused(lm, bpe):
    from course_utils.checkpoints import load_tiny_gpt

    assert temperature_explorer(lm, bpe, PROMPT).page_model == ""  # another model: the page could not run it
    w = temperature_explorer(load_tiny_gpt(), bpe, PROMPT)
    assert w.page_model == "tiny_gpt" and w.max_new_tokens == 30
    assert w.prompts[0]["ids"] == prompt_ids(bpe, PROMPT)[0].tolist()  # the page's check compares its own with these
    w._on_msg(w, {"type": "prompt", "text": ""}, [])
    assert w.status == "prompt must hold some text, got an empty prompt" and len(w.prompts) == 1


def test_a_transformers_model_and_tokenizer_work_too(bpe):
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=8000, n_positions=48, n_embd=16, n_layer=1, n_head=2)).eval()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>")
    ids = prompt_ids(tokenizer, PROMPT)
    assert torch.equal(next_token_logits(hf, ids), hf(ids).logits[0, -1])
    texts = sample_continuations(hf, tokenizer, PROMPT, 0.8, 5, 0.9, n_samples=2, max_new_tokens=5, seed=3)
    torch.manual_seed(3)
    out = generate(hf, ids.expand(2, -1), 5, do_sample=True, temperature=0.8, top_k=5, top_p=0.9, eos_token_id=EOS)
    assert texts == [bpe.decode(row[ids.shape[1]:].tolist()) for row in out]
    w = temperature_explorer(hf, tokenizer, PROMPT)
    assert torch.equal(w.logits(), next_token_logits(hf, ids))
