"""How soon chapter 09's page shows its first distribution and runs the tiny GPT, in headless Chromium, alone.

    .venv/bin/python bench/page_load.py [_build/html]      (after `make book`)

The page is opened REPEATS times from a local server (text gzipped, as a static host sends it) and as file://, one
tab at a time. The explorer writes into its root element when it drew its first figure (data-first-draw-ms) and
when the model it loads after that was ready (data-model-ready-ms), in ms since the page began to load; the page's
own load event and the bytes it loaded (over http) come from the Performance API. A benchmark: no assertions (the browser check
of `make test` reports the same numbers, measured while other pages and tests run beside it).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))
from check_book import CHROMIUM, FLAGS, LOADED_BYTES_JS, serve  # noqa: E402  the browser check's server and flags

PAGE, REPEATS = "notebooks/09_decoding.html", 3
LOAD_JS = "() => Math.round(performance.getEntriesByType('navigation')[0].loadEventEnd)"


def measure(browser, url: str) -> tuple[int, int, int, int]:
    """(first figure, model ready, load event) in ms, and the bytes loaded, for one fresh tab on url."""
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector(".cu-temperature[data-model-ready-ms]", timeout=60_000)
    root = page.locator(".cu-temperature[data-model-ready-ms]").first
    result = (int(root.get_attribute("data-first-draw-ms")), int(root.get_attribute("data-model-ready-ms")),
              page.evaluate(LOAD_JS), page.evaluate(LOADED_BYTES_JS))
    page.close()
    return result


def main(argv: list[str]) -> None:
    root = Path(argv[0] if argv else "_build/html")
    if not (root / PAGE).is_file():
        raise SystemExit(f"{root / PAGE} is missing: run `make book` first")
    with serve(root) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        print(f"{'opened':>8} {'first figure (ms)':>17} {'model ready (ms)':>16} {'load event (ms)':>15} {'MB':>5}")
        for how, url in (("http", base + PAGE), ("file://", (root / PAGE).resolve().as_uri())):
            runs = [measure(browser, url) for _ in range(REPEATS)]
            first, ready, load, loaded = (statistics.median(column) for column in zip(*runs))
            size = f"{loaded / 1e6:5.1f}" if how == "http" else "    -"  # file:// reports no sizes
            print(f"{how:>8} {first:17.0f} {ready:16.0f} {load:15.0f} {size}   (median of {REPEATS})")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
