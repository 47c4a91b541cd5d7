"""Open every page of the built book in headless Chromium and check what a reader sees, with no network.

    .venv/bin/python tests/browser/check_book.py _build/html       (the last step of `make test`)

Every page is served by a local HTTP server on 127.0.0.1 and checked for: no JavaScript error in the console;
no request leaving 127.0.0.1 (each one is aborted and reported); every formula rendered by MathJax (no raw `$$`
or `\\begin` left in the text); every image loaded; every widget view rendered (its slider or dropdown exists);
every internal link pointing at a file and an anchor that exist. The explorers (course_utils/explorers.js) must
respond with no kernel: each is moved through several settings, and what it shows (mask, alpha; survivors, entropies,
top probabilities) is read back and compared with the Python reference; the pages with explorers are checked again
opened as file://. Where the temperature explorer carries the tiny GPT (_static/tiny_gpt.js), the page must run it:
typed prompts give Python's token ids and PyTorch's probabilities, top-k = 1 gives generate's greedy texts, bad
prompts get a message; no page may load more than 15 MB. A screenshot of each chapter (notebooks/*.html)
goes to _build/screenshots/. The browser is Debian's chromium (`make setup` installs it), driven by Playwright.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import torch
from playwright.sync_api import Error, Locator, Page, Route, sync_playwright

from course_utils.attention import build_mask, scaled_dot_product_attention
from course_utils.warpers import warp_distribution
from course_utils.widgets import stored_logits

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path("_build/screenshots")
TABS = 3  # pages loading at once: Chromium lays out and typesets the next ones while one is being checked
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
REDIRECT = re.compile(r'<meta http-equiv="refresh"', re.IGNORECASE)  # Sphinx's index.html for a book in book/
CONTROLS = ".widget-slider, .widget-dropdown, .cu-explorer svg"  # what a rendered view of this book's widgets contains

# Text outside code and outside MathJax's output that still looks like LaTeX: a formula MathJax did not render.
RAW_MATH_JS = r"""() => {
    const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "TEXTAREA", "MJX-CONTAINER"]);
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode(node) {
        for (let el = node.parentElement; el; el = el.parentElement)
            if (skip.has(el.tagName)) return NodeFilter.FILTER_REJECT;
        return /\$\$|\\begin|\\\(|\\\[/.test(node.data) ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT;
    }});
    const raw = [];
    while (walker.nextNode()) raw.push(walker.currentNode.data.trim().slice(0, 80));
    const unrendered = [...document.querySelectorAll(".math")].filter(el => !el.querySelector("mjx-container")).length;
    const errors = [...document.querySelectorAll("mjx-merror")]
        .map(e => e.getAttribute("data-mjx-error") || e.textContent);
    return {raw, unrendered, errors};
}"""

# Load every image now (lazy ones included) and list those that did not load.
BROKEN_IMAGES_JS = """async () => {
    const images = [...document.images];
    images.forEach(img => { img.loading = "eager"; });
    const settled = img => img.complete ? null : new Promise(done => {
        img.addEventListener("load", done); img.addEventListener("error", done); setTimeout(done, 10000);
    });
    await Promise.all(images.map(settled));
    return images.filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.currentSrc || img.src);
}"""

# Bytes the page has loaded: the document and every file it fetched, as sent (gzipped text, from the test server).
LOADED_BYTES_JS = """() => [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
    .reduce((sum, entry) => sum + (entry.encodedBodySize || 0), 0)"""

# The exercises' solutions under `scope` (a CSS selector, "" for the page): each a <details class="solution">
# holding code, closed, so that its code takes no room. check_lab.py reads JupyterLab's rendering with it too.
FOLDS_JS = """(scope) => [...document.querySelectorAll(`${scope} details.solution`)].map(fold => ({
    open: fold.open, code: fold.querySelectorAll("pre").length,
    shown: [...fold.querySelectorAll("pre")].some(pre => pre.checkVisibility())}))"""


def closed_with_code(fold: dict) -> bool:
    """A fold as FOLDS_JS reads it is right: closed, its code rendered as code and hidden."""
    return not fold["open"] and not fold["shown"] and fold["code"] > 0

VIEWS_RENDERED_JS = f"""() => [...document.querySelectorAll('{WIDGET_VIEW}')]
    .every(view => view.parentElement.querySelector('{CONTROLS}'))"""


COMPRESSED = {".html", ".js", ".css", ".json", ".svg", ".txt", ".map"}  # what a static host (GitHub Pages) gzips


@functools.cache
def gzipped(path: Path, mtime: float) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=6)


class QuietHandler(SimpleHTTPRequestHandler):
    """Serve files without logging every request; text gzipped when the browser accepts it, as a static host does,
    so that the bytes a page loads are those a reader of the published book downloads."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if path.suffix not in COMPRESSED or "gzip" not in self.headers.get("Accept-Encoding", "") or not path.is_file():
            return super().do_GET()
        body = gzipped(path, path.stat().st_mtime)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve `root` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def html_pages(root: Path) -> list[Path]:
    """Every HTML page of the built book, outside Sphinx's asset folders."""
    assets = {"_static", "_sources", "_images"}
    return sorted(p for p in root.rglob("*.html") if not assets & set(p.relative_to(root).parts))


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    """The ids a link's #fragment may point at in an HTML file."""
    return frozenset(re.findall(r'\b(?:id|name)="([^"]+)"', path.read_text(encoding="utf-8")))


def broken_links(root: Path, base: str, hrefs: list[str]) -> list[str]:
    """The internal links (under `base`) whose file or #anchor does not exist in `root`."""
    broken = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base):
            continue  # another site (GitHub, Colab, Binder, a paper): a link, not a request
        url, fragment = urldefrag(href)
        target = root / unquote(urlsplit(url).path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href}: no such file")
        elif fragment and target.suffix == ".html" and unquote(fragment) not in anchors(target):
            broken.append(f"{href}: no such anchor")
    return broken


def check_page(page: Page, root: Path, base: str, name: str, widget_timeout_s: float) -> list[str]:
    """What is wrong with page `name`, loading in `page` (its listeners add console errors and failed requests)."""
    if REDIRECT.search((root / name).read_text(encoding="utf-8")):  # index.html: its target is checked on its own
        page.wait_for_url(lambda landed: landed != base + name)
        page.wait_for_load_state("load")
        return [] if page.title() else [f"{page.url} shows no page"]
    page.wait_for_load_state("load")
    page.evaluate("async () => { if (window.MathJax?.startup?.promise) await MathJax.startup.promise; }")
    math = page.evaluate(RAW_MATH_JS)
    problems = [f"raw LaTeX left in the text: {math['raw'][:3]}"] if math["raw"] else []
    if math["unrendered"]:
        problems.append(f"{math['unrendered']} formulas not rendered by MathJax")
    problems += [f"MathJax error: {error}" for error in math["errors"]]
    problems += [f"image not loaded: {src}" for src in page.evaluate(BROKEN_IMAGES_JS)]
    for k, fold in enumerate(page.evaluate(FOLDS_JS, "")):
        if not closed_with_code(fold):
            problems.append(f"solution {k + 1} is not a closed fold holding code: {fold}")
    if page.locator(WIDGET_VIEW).count():
        try:
            page.wait_for_function(VIEWS_RENDERED_JS, timeout=widget_timeout_s * 1000)
            problems += check_explorers(page)
        except Error:
            problems.append(f"widget views not rendered (no slider or dropdown) after {widget_timeout_s:.0f} s")
    loaded = page.evaluate(LOADED_BYTES_JS)
    if loaded > MAX_PAGE_BYTES:
        problems.append(f"the page loads {loaded / 1e6:.1f} MB, over {MAX_PAGE_BYTES / 1e6:.0f} MB")
    if page.locator("script[data-page-model]").count():  # the explorer loaded its model
        REPORT.append(f"{name}: {loaded / 1e6:.1f} MB loaded, the tiny GPT included")
    hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    return problems + [f"broken link {link}" for link in broken_links(root, base, hrefs)]


# ---------------------------------------------------------------- the explorers respond with no kernel

EXPLORER = ".cu-explorer"
TOLERANCE = 1e-4  # the page computes in float64 from the stored float32 numbers, Python in float32
SET_INPUT_JS = """(input, value) => {
    input.value = value;
    input.dispatchEvent(new Event("input", {bubbles: true}));
}"""


def explorer_models(page: Page) -> list[tuple[dict, Locator]]:
    """(the stored widget state, the rendered root element) of every explorer of the page, in page order."""
    states = {}
    for script in page.locator('script[type="application/vnd.jupyter.widget-state+json"]').all():
        states |= json.loads(script.text_content())["state"]
    found = []
    for view in page.locator(WIDGET_VIEW).all():
        state = states[json.loads(view.text_content())["model_id"]]["state"]
        if state.get("explorer"):
            found.append((state, view.locator("xpath=..").locator(EXPLORER).first))
    return found


def control(root: Locator, label: str) -> Locator:
    """The input or select that the label `label` names (its for= attribute)."""
    return root.locator("#" + root.locator(f'label:text-is("{label}")').get_attribute("for"))


def set_controls(root: Locator, settings: dict, what: str) -> tuple[dict, list[str]]:
    """Move each labelled control to its value, as a reader does (input events); the settings the page reports, and
    a problem if its figure did not change."""
    before = root.inner_html()
    for label, value in settings.items():
        control(root, label).evaluate(SET_INPUT_JS, str(value))
    unchanged = [f"{what}: the figure did not change for {settings}"] if root.inner_html() == before else []
    return json.loads(root.get_attribute("data-settings")), unchanged


def check_mask_explorer(state: dict, root: Locator) -> list[str]:
    """Three settings of the mask explorer: the mask and alpha shown equal build_mask + eq. (1) in Python."""
    problems = []
    n = len(state["tokens"])
    combos = [{"mask": "padding", "pad side": "left", "queries": n - 1, "padded": 2},
              {"mask": "causal", "pad side": "right", "queries": n, "padded": 1},
              {"mask": "cross" if state["source_tokens"] else "bidirectional", "queries": 3, "source keys": 4,
               "padded": 1}]
    for combo in combos:
        s, unchanged = set_controls(root, combo, "mask explorer")
        problems += unchanged
        mask = build_mask(s["kind"], s["n_queries"], s["n_keys"], s["n_pad"], s["pad_side"])
        shown = root.get_attribute("data-mask")
        if shown != "/".join("".join(str(int(v)) for v in row) for row in mask.tolist()):
            problems.append(f"mask explorer {s}: the page shows the mask {shown}, Python's is {mask.int().tolist()}")
        if state["q"]:
            keys = torch.tensor(state["k_source" if s["kind"] == "cross" else "k"])[: s["n_keys"]]
            _, alpha = scaled_dot_product_attention(torch.tensor(state["q"])[: s["n_queries"]], keys, keys, mask=mask,
                                                    scale=state["scale"])
            gap = (torch.tensor(json.loads(root.get_attribute("data-alpha"))) - alpha).abs().max().item()
            if gap > TOLERANCE:
                problems.append(f"mask explorer {s}: alpha differs from Python's by {gap:.2e}")
    return problems


def check_temperature_explorer(state: dict, root: Locator) -> list[str]:
    """Three settings and every stored prompt: survivors, entropies and top probabilities equal warp_distribution."""
    problems = []
    combos = [{"temperature": math.log10(0.7), "top-k (0 = off)": 0, "top-p (1 = off)": 0.9},
              {"temperature": math.log10(1.5), "top-k (0 = off)": 10, "top-p (1 = off)": 1},
              {"temperature": math.log10(0.3), "top-k (0 = off)": 5, "top-p (1 = off)": 0.5}]
    slider = control(root, "temperature")
    before = root.get_attribute("data-settings")
    slider.focus()
    slider.press("ArrowRight")  # the keyboard moves it too
    if root.get_attribute("data-settings") == before:
        problems.append("temperature explorer: the arrow key did not move the temperature slider")
    for index, entry in enumerate(state["prompts"]):
        control(root, "prompt").evaluate(SET_INPUT_JS, str(index))
        z = stored_logits(entry)
        for combo in combos:
            s, unchanged = set_controls(root, combo, "temperature explorer")
            problems += unchanged
            ref = warp_distribution(z, s["temperature"], s["top_k"], s["top_p"])
            where = f"temperature explorer, prompt {entry['prompt']!r}, {s}"
            if int(root.get_attribute("data-survivors")) != len(ref.survivors):
                problems.append(f"{where}: {root.get_attribute('data-survivors')} survivors, Python {len(ref.survivors)}")
            for name, value in (("data-entropy-before", ref.entropy_before), ("data-entropy-after", ref.entropy_after)):
                if abs(float(root.get_attribute(name)) - value) > TOLERANCE:
                    problems.append(f"{where}: {name} {root.get_attribute(name)}, Python {value:.6f}")
            top = json.loads(root.get_attribute("data-top"))
            order = z.argsort(descending=True, stable=True)[: len(top)].tolist()
            gap = max(abs(p - ref.after[i].item()) for i, p in top)
            if [i for i, _ in top] != order or gap > TOLERANCE:
                problems.append(f"{where}: the top tokens or their probabilities differ from Python's ({gap:.2e})")
    return problems


# ---------------------------------------------------------------- the tiny GPT runs in the page

# A prompt of one token, two plain ones, one in other scripts, one of more than 100 tokens (a sample of it would
# not fit the 128 positions: the page must say so).
PAGE_PROMPTS = ["Ay", "To be, or not to be", "Ophelia: My lord,",
                "Hamlet: café, naïve, Ελληνικά, 東京, 😀 -- « ay »",
                " ".join(["ROMEO: But soft, what light through yonder window breaks?"] * 7)]
PAGE_REFUSED = {"": "empty prompt", "word " * 200: "must fit the model's 128 positions"}  # typed prompt -> message
N_TOP = 20
MAX_PAGE_BYTES = 15_000_000  # a page with its model and runtime, everything it loads
REPORT: list[str] = []  # what the check measured, printed at the end (no timed assertion)


@functools.cache
def tiny_gpt():
    """The shipped tiny GPT and its BPE, which the page must reproduce (imported here: torch starts once)."""
    from course_utils.checkpoints import load_tiny_gpt
    from course_utils.data import load_bpe

    return load_tiny_gpt(), load_bpe()


STATUS_JS = "(el) => el.querySelector('.cu-status')?.textContent || ''"
IDLE_JS = f"(el) => !/^(reading|sampling)/.test(({STATUS_JS})(el))"  # the page has answered (it says what it does)


def answer(root: Locator, act) -> str:
    """Do act() (type a prompt, press a button), wait for the page's answer; the status it shows then."""
    act()  # the page sets its status ("reading the prompt...", "sampling...") at once, then works
    root.page.wait_for_function(IDLE_JS, arg=root.element_handle(), timeout=60_000)
    return root.evaluate(STATUS_JS)


def type_prompt(root: Locator, text: str) -> str:
    """Type text into the explorer's prompt box and press Enter; the status shown once the page has answered."""
    box = root.locator('input[type="text"]')
    box.fill(text)
    return answer(root, lambda: box.press("Enter"))


def check_page_model(state: dict, root: Locator) -> list[str]:
    """The page runs the tiny GPT: typed prompts give Python's token ids and PyTorch's top-20 probabilities (within
    1e-4); at top-k = 1 the sampled continuations are generate's greedy ones; bad prompts get a message."""
    from course_utils.data import prompt_ids
    from course_utils.generation import generate

    model, tokenizer = tiny_gpt()
    problems, where = [], "tiny GPT in the page"
    try:
        root.locator('input[type="text"]').wait_for(state="visible", timeout=30_000)
    except Error:
        return [f"{where}: the prompt box never appeared (is _static/tiny_gpt.js loaded?)"]
    REPORT.append(f"{root.page.url}: the first distribution drawn {root.get_attribute('data-first-draw-ms')} ms "
                  f"after the page began to load, the tiny GPT ready at {root.get_attribute('data-model-ready-ms')} ms")
    for prompt in PAGE_PROMPTS:
        message = type_prompt(root, prompt)
        ids = prompt_ids(tokenizer, prompt)  # (1, T)
        s, _ = set_controls(root, {"temperature": 0, "top-k (0 = off)": 0, "top-p (1 = off)": 1}, where)  # T ~ 1
        if message or root.get_attribute("data-prompt") != prompt:
            problems.append(f"{where}: prompt {prompt[:40]!r} not read ({message!r})")
            continue
        if json.loads(root.get_attribute("data-ids")) != ids[0].tolist():
            problems.append(f"{where}: prompt {prompt[:40]!r}: the page's token ids differ from the BPE's")
        with torch.no_grad():
            z = model(ids).logits[0, -1]  # (V,)
        p = warp_distribution(z, s["temperature"], s["top_k"], s["top_p"]).after  # at the slider's T (0.998)
        top = json.loads(root.get_attribute("data-top"))[:N_TOP]
        gap = max(abs(q - p[i].item()) for i, q in top)
        if [i for i, _ in top] != z.argsort(descending=True, stable=True)[:N_TOP].tolist() or gap > TOLERANCE:
            problems.append(f"{where}: prompt {prompt[:40]!r}: top-{N_TOP} differs from PyTorch's ({gap:.2e})")
        set_controls(root, {"top-k (0 = off)": 1}, where)  # one survivor: sampling is greedy decoding
        message = answer(root, root.get_by_role("button").click)
        n_new = state["max_new_tokens"]
        if ids.shape[1] + n_new > model.config.max_len:  # no room for a sample: the page must say so
            if "exceeds the model's 128 positions" not in message:
                problems.append(f"{where}: a sample beyond 128 positions was not refused with a message")
            continue
        greedy = generate(model, ids, n_new, eos_token_id=tokenizer.token_to_id("</s>"))[0, ids.shape[1]:].tolist()
        shown = [json.loads(li.get_attribute("data-ids")) for li in root.locator(".cu-samples li").all()]
        if shown != [greedy] * state["n_samples"]:
            problems.append(f"{where}: prompt {prompt[:40]!r}: greedy continuations differ from generate's")
    for prompt, expected in PAGE_REFUSED.items():
        message = type_prompt(root, prompt)
        if expected not in message:
            problems.append(f"{where}: the prompt {prompt[:20]!r} got the message {message!r}, not {expected!r}")
    return problems


def check_explorers(page: Page) -> list[str]:
    """Every explorer of the page, moved through its settings and read back against Python."""
    problems = []
    for state, root in explorer_models(page):
        check = check_mask_explorer if state["explorer"] == "mask" else check_temperature_explorer
        problems += check(state, root)
        if state.get("page_model"):
            problems += check_page_model(state, root)
    return problems


def screenshot(page: Page, folder: Path, name: str) -> None:
    """The top of the page, and the first widget as rendered if there is one."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    page.screenshot(path=folder / f"{stem}.png")
    if page.locator(WIDGET_VIEW).count():  # the output area that holds the view
        page.locator(WIDGET_VIEW).first.locator("xpath=..").screenshot(path=folder / f"{stem}-widget.png")


def check_site(
    root: Path, screenshots: Path | None = SCREENSHOTS, widget_timeout_s: float = 20.0
) -> dict[str, list[str]]:
    """Check every page of the site in `root`; returns {page: problems}. Chapters are screenshot into `screenshots`."""
    if not (root / "index.html").is_file():
        raise ValueError(f"root must be a built site with an index.html, got {root}")
    names = [path.relative_to(root).as_posix() for path in html_pages(root)]
    problems: dict[str, list[str]] = {name: [] for name in names}
    owner: dict[Page, str] = {}  # the page each tab shows, for the problems its listeners report

    with serve(root) as base, sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        local = urlsplit(base).netloc

        def stay_local(route: Route) -> None:
            url = route.request.url
            if urlsplit(url).scheme in ("data", "blob", "file") or urlsplit(url).netloc == local:
                route.continue_()
            else:
                problems[owner[route.request.frame.page]].append(f"request left the machine (aborted): {url}")
                route.abort()

        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1280, "height": 900}
        )
        context.route("**/*", stay_local)
        for first in range(0, len(names), TABS):
            tabs = []
            for name in names[first : first + TABS]:  # these load together while the check reads them one by one
                page = context.new_page()
                owner[page], found = name, problems[name]
                page.on("console", lambda m, f=found: m.type == "error" and f.append(f"console error: {m.text}"))
                page.on("pageerror", lambda e, f=found: f.append(f"JavaScript exception: {e}"))
                page.on("response", lambda r, f=found: r.status >= 400 and f.append(f"HTTP {r.status}: {r.url}"))
                page.goto(base + name, wait_until="commit")
                tabs.append((name, page))
            for name, page in tabs:
                problems[name] += check_page(page, root, base, name, widget_timeout_s)
                if screenshots is not None and name.startswith("notebooks/"):
                    screenshot(page, screenshots, name)
                page.close()
        for name in names:  # the explorers again, from the files themselves (a reader who opens the built book)
            if EXPLORER[1:] in (root / name).read_text(encoding="utf-8"):
                page = context.new_page()
                owner[page], found = name, problems[name]
                page.on("pageerror", lambda e, f=found: f.append(f"JavaScript exception (file://): {e}"))
                page.goto((root / name).resolve().as_uri())
                page.wait_for_function(VIEWS_RENDERED_JS, timeout=widget_timeout_s * 1000)
                found += [f"{problem} (file://)" for problem in check_explorers(page)]
                page.close()
        context.close()
    return problems


def main(argv: list[str]) -> int:
    """Check the site in argv[0] (default _build/html), print one line per page; 1 if anything is wrong."""
    root = Path(argv[0] if argv else "_build/html")
    start = time.perf_counter()
    problems = check_site(root)
    for page, found in problems.items():
        print(f"{'FAIL' if found else 'ok  '} {page}")
        for problem in found:
            print(f"       {problem}")
    for line in REPORT:
        print(line)
    n_bad = sum(bool(found) for found in problems.values())
    print(f"browser check of {len(problems)} pages in {time.perf_counter() - start:.1f} s: "
          f"{'all pages fine' if not n_bad else f'{n_bad} with problems'}; screenshots in {SCREENSHOTS}/")
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
