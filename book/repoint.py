"""Point the book at another repository (a fork): every link to the book's own repository changes at once.

    python book/repoint.py https://github.com/YOU/YOUR-FORK

_config.yml's `repository.url` is the one place that names the repository (tests/test_book.py checks that no other
file names another); this script replaces it there and in every file that links to it: pyproject.toml, README.md,
book/*.md and each notebook's Colab badge and install cell. Then build and commit as usual.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
URL = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")
FILES = ["_config.yml", "pyproject.toml", "README.md", "book/*.md", "notebooks/*.ipynb"]


def current(root: Path) -> str:
    """OWNER/NAME of the repository named in _config.yml."""
    url = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    return "/".join(URL.match(url).groups())


def repoint(root: Path, new_url: str) -> list[Path]:
    """Replace the repository in every file that links to it; the files changed."""
    match = URL.match(new_url.rstrip("/"))
    if not match:
        raise ValueError(f"new_url must look like https://github.com/OWNER/NAME, got {new_url!r}")
    old, new = current(root), "/".join(match.groups())
    link = re.compile(r"(github\.com/|colab\.research\.google\.com/github/)" + re.escape(old) + r"(?![\w.-])")
    changed = []
    for path in sorted(p for pattern in FILES for p in root.glob(pattern)):
        text = path.read_text(encoding="utf-8")
        if link.search(text):
            path.write_text(link.sub(lambda m: m.group(1) + new, text), encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for path in repoint(ROOT, sys.argv[1]):
        print(f"changed {path.relative_to(ROOT)}")
