"""The exercises' solutions: kept in course_utils.exercises.solutions, shown only folded in every host (a `<details>`
block that JupyterLab, Colab and the book all render closed), never as code in plain view, and each passes its check.
The checks refuse what an exercise says not to use."""

import importlib
import inspect
import json
import re
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.exercises import ch02, ch03, ch04, ch09

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb"))


def folded(fn: types.FunctionType) -> str:
    """The markdown cell that shows a solution: closed until the student opens it, its code exactly fn's source."""
    return (f'<details class="solution"><summary>Solution</summary>\n\n```python\n{inspect.getsource(fn).rstrip()}\n'
            "```\n\n</details>")


def chapter(path: Path) -> types.ModuleType:
    """The solutions module of a notebook (notebooks/01_attention.ipynb -> solutions.ch01)."""
    return importlib.import_module(f"course_utils.exercises.solutions.ch{path.name[:2]}")


def solutions_of(path: Path) -> list[types.FunctionType]:
    module = chapter(path)
    return [fn for _, fn in inspect.getmembers(module, inspect.isfunction) if fn.__module__ == module.__name__]


def cells(path: Path, kind: str) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == kind]


def code_lines(source: str) -> list[str]:
    """The statements of some code, one per line, without comments or indentation (blank lines dropped)."""
    lines = (re.sub(r"\s+#.*$|^\s*#.*$", "", line).strip() for line in source.splitlines())
    return [line for line in lines if line]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_solution_is_in_plain_view_and_each_is_folded_once(path):
    """A code cell never holds a solution's body; each solution is one closed <details> block, its code verbatim."""
    markdown = cells(path, "markdown")
    code = [set(code_lines(source)) for source in cells(path, "code")]
    assert solutions_of(path), f"{path.name}: no solutions module"
    for fn in solutions_of(path):
        body = code_lines(inspect.getsource(fn))[1:]  # the def line is the stub's too
        shown = [i for i, lines in enumerate(code) if set(body) <= lines]
        assert not shown, f"{path.name}: the solution {fn.__name__} is in plain view in code cell(s) {shown}"
        assert markdown.count(folded(fn)) == 1, (
            f"{path.name}: the solution {fn.__name__} must be folded exactly once, as this markdown cell:\n{folded(fn)}")
    for source in markdown:
        if "<details" in source:
            assert "<details open" not in source and "</details>" in source, f"{path.name}: an open or unclosed fold"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_solution_is_run_through_its_check_in_the_chapter(path):
    """The chapter's last exercise cell runs each folded solution through its check (nbval then executes it)."""
    runs = "\n".join(source for source in cells(path, "code") if "solutions import" in source)
    checked = set(re.findall(r"assert ch\d\d\.check_\w+\(solutions\.(\w+)\)", runs))
    assert checked == {fn.__name__ for fn in solutions_of(path)}, (path.name, checked)


# ---------------------------------------------------------------- what an exercise says not to use


def layer_norm_with_torch(x, gain, bias, eps):
    return F.layer_norm(x, x.shape[-1:], gain, bias, eps)


def layer_norm_with_module(x, gain, bias, eps):
    norm = nn.LayerNorm(x.shape[-1], eps=eps)
    norm.weight.data, norm.bias.data = gain, bias
    return norm(x)


def softmax_with_temperature_by_torch(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)


def softmax_with_temperature_by_method(logits, temperature):
    return (logits / temperature).softmax(-1)


def softmax_with_temperature_in_a_lambda(logits, temperature):
    probs = lambda z: F.softmax(z, dim=-1)  # noqa: E731 (a nested use is found too)
    return probs(logits / temperature)


def mlm_loss_with_cross_entropy(logits, labels):
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)


def input_embeddings_with_modules(input_ids, token_type_ids, tok, pos, typ, gain, bias, eps):
    positions = torch.arange(input_ids.shape[1])
    x = F.embedding(input_ids, tok) + F.embedding(positions, pos) + F.embedding(token_type_ids, typ)
    return F.layer_norm(x, x.shape[-1:], gain, bias, eps)


@pytest.mark.parametrize("check, fn, named", [
    (ch02.check_layer_norm, layer_norm_with_torch, "`layer_norm`"),
    (ch02.check_layer_norm, layer_norm_with_module, "`LayerNorm`"),
    (ch09.check_softmax_with_temperature, softmax_with_temperature_by_torch, "`softmax`"),
    (ch09.check_softmax_with_temperature, softmax_with_temperature_by_method, "`softmax`"),
    (ch09.check_softmax_with_temperature, softmax_with_temperature_in_a_lambda, "`softmax`"),
    (ch03.check_mlm_loss, mlm_loss_with_cross_entropy, "`cross_entropy`"),
    (ch04.check_input_embeddings, input_embeddings_with_modules, "`embedding`, `layer_norm`"),
], ids=lambda x: getattr(x, "__name__", None))
def test_a_right_answer_by_a_forbidden_function_is_refused(check, fn, named):
    with pytest.raises(AssertionError, match=f"your function uses {named}, which this exercise asks you to write"):
        check(fn)


def test_the_folded_solutions_use_nothing_their_exercise_forbids():
    """The same checks pass the reference solutions: they do the work by hand (and say so by passing)."""
    from course_utils.exercises.solutions import ch02 as s02, ch03 as s03, ch04 as s04, ch09 as s09

    for check, fn in ((ch02.check_layer_norm, s02.layer_norm), (ch02.check_feed_forward, s02.feed_forward),
                      (ch03.check_subsample, s03.subsample), (ch03.check_mlm_loss, s03.mlm_loss_by_hand),
                      (ch04.check_input_embeddings, s04.input_embeddings),
                      (ch09.check_softmax_with_temperature, s09.softmax_with_temperature)):
        assert check(fn) is True, fn.__name__
