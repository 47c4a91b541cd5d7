"""The explorers live in a real JupyterLab: run chapters 01 and 09 there in headless Chromium and move them.

    .venv/bin/python tests/browser/check_lab.py        (a step of `make test`, after the book check)

A JupyterLab server is started on 127.0.0.1 with a token, on copies of the two notebooks in a temporary folder (the
repository's files are never written). In each chapter every cell is run (Run All); then no output may be an error,
the exercises' solutions must be closed folds (JupyterLab renders their <details> as the book does), and each
explorer must respond: a slider moved changes its figure. The temperature explorer must also find its kernel
(the prompt box appears), read a new prompt typed into it, and sample continuations at the button. Screenshots of
the explorers go to _build/screenshots/lab-*.png, beside the static book's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from check_book import FOLDS_JS, closed_with_code  # tests/browser/check_book.py: the folds, checked as in the book

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ["01_attention.ipynb", "09_decoding.ipynb"]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "_build" / "screenshots"
RUN_TIMEOUT_S = 600  # Run All of one chapter, kernel start included
SETTINGS = {  # JupyterLab's user settings for the check
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the DOM, not only those in view
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},  # no pop-up
}
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"  # the chapter open now (an earlier one stays, hidden)

MOVE_SLIDER_JS = """(input) => {
    input.value = input.value === input.max ? input.min : input.max;
    input.dispatchEvent(new Event("input", {bubbles: true}));
}"""
DONE_JS = """() => {  // no cell queued or running ([*]), and some cell has run ([1])
    const prompts = [...document.querySelectorAll("%s .jp-InputPrompt")].map((p) => p.textContent);
    return !prompts.some((t) => t.includes("*")) && prompts.some((t) => /\\[\\d+\\]/.test(t));
}""" % SHOWN
ERRORS_JS = """() => [...document.querySelectorAll('%s [data-mime-type="application/vnd.jupyter.stderr"]')]
    .map((e) => e.textContent).filter((t) => /Traceback|Error/.test(t)).map((t) => t.slice(0, 300))""" % SHOWN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab on 127.0.0.1:port serving folder, its app exposed to the page (window.jupyterapp), SETTINGS."""
    for plugin, values in SETTINGS.items():
        path = folder / ".settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the inline backend draws the figures
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
               "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={folder / '.settings'}"]
    lab = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return lab
        except OSError:
            if lab.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {lab.stderr.read()[-2000:]}") from None
            time.sleep(0.5)
    lab.kill()
    raise RuntimeError("JupyterLab did not answer within 60 s")


def command(page: Page, name: str, args: dict | None = None) -> None:
    """Run a JupyterLab command in the page and wait for it (its result stays in the page)."""
    page.evaluate("([name, args]) => jupyterapp.commands.execute(name, args).then(() => null)", [name, args or {}])


def run_chapter(page: Page, name: str) -> list[str]:
    """Open a chapter, Run All, then move its explorers; what went wrong."""
    problems = []
    page.wait_for_function("() => window.jupyterapp", timeout=120_000)
    page.evaluate("() => jupyterapp.restored.then(() => true)")  # the layout restored, the commands registered
    command(page, "docmanager:open", {"path": name})
    page.wait_for_function("(path) => jupyterapp.shell.currentWidget?.context?.path === path"
                           " && jupyterapp.shell.currentWidget.content.widgets.length > 0", arg=name, timeout=120_000)
    page.wait_for_function("() => jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'",
                           timeout=120_000)
    command(page, "notebook:clear-all-cell-outputs")  # every prompt [ ] until run again
    command(page, "notebook:run-all-cells")
    page.wait_for_function(DONE_JS, timeout=RUN_TIMEOUT_S * 1000, polling=1000)
    problems += [f"{name}: error output: {text}" for text in page.evaluate(ERRORS_JS)]
    folds = page.evaluate(FOLDS_JS, f"{SHOWN} .jp-RenderedMarkdown")  # the solutions as JupyterLab renders them
    if not folds or not all(map(closed_with_code, folds)):
        problems.append(f"{name}: the solutions are not closed folds holding code: {folds}")
    explorers = page.locator(f"{SHOWN} .cu-explorer")
    if explorers.count() == 0:
        return problems + [f"{name}: no explorer rendered"]
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        before = explorer.locator(".cu-figure").inner_html()
        explorer.locator('input[type="range"]').first.evaluate(MOVE_SLIDER_JS)
        if explorer.locator(".cu-figure").inner_html() == before:
            problems.append(f"{name}: explorer {i}: moving a slider did not change the figure")
        if "cu-temperature" in (explorer.get_attribute("class") or ""):
            problems += use_the_kernel(explorer, f"{name}: explorer {i}")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        explorer.screenshot(path=SCREENSHOTS / f"lab-{Path(name).stem}-{i}.png")
    return problems


def use_the_kernel(explorer, where: str) -> list[str]:
    """The temperature explorer with a kernel: the prompt box appears, a typed prompt is read, the button samples."""
    live = explorer.locator(".cu-live input")
    try:
        live.wait_for(state="visible", timeout=20_000)
    except Exception:
        return [f"{where}: the kernel never answered (no prompt box)"]
    n_options = explorer.locator("select option").count()
    live.fill("Hamlet: What")
    live.press("Enter")
    explorer.page.wait_for_function("([el, n]) => el.querySelectorAll('select option').length > n",
                                    arg=[explorer.element_handle(), n_options], timeout=60_000)
    shown = explorer.get_attribute("data-prompt")
    problems = [] if shown == "Hamlet: What" else [f"{where}: the typed prompt is not shown ({shown!r})"]
    explorer.locator("button").click()
    try:
        explorer.locator(".cu-samples li").first.wait_for(timeout=120_000)
    except Exception:
        problems.append(f"{where}: the button sampled nothing")
    return problems


def main() -> int:
    """Run the chapters in JupyterLab; print what is wrong; 1 if anything is."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        folder = Path(tmp)
        for name in CHAPTERS:
            shutil.copy(ROOT / "notebooks" / name, folder / name)
        port, token = free_port(), os.urandom(16).hex()
        lab = start_lab(folder, port, token)
        problems = []
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab?token={token}")  # the token becomes a cookie
            page.on("pageerror", lambda e: problems.append(f"JavaScript exception: {e}"))
            for name in CHAPTERS:
                problems += run_chapter(page, name)
                page.evaluate("() => jupyterapp.shell.currentWidget.sessionContext.shutdown().then(() => null)")
            browser.close()
        finally:
            lab.terminate()
            lab.wait(timeout=30)
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"JupyterLab check of {', '.join(CHAPTERS)} in {time.perf_counter() - start:.0f} s: "
          f"{'explorers respond, no error' if not problems else f'{len(problems)} problems'}; screenshots in "
          f"{SCREENSHOTS.relative_to(ROOT)}/lab-*.png")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
