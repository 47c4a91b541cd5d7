"""Test-session environment: offline and headless, however pytest is started; the order of work on two workers.

`make test` already exports the offline settings; this file covers a bare `pytest tests` too. It runs before any
test module is imported, hence before huggingface_hub / transformers read their settings.

`make test` runs the tests and the notebooks (nbval) in one session on two workers (`-n 2 --dist loadfile
--no-loadscope-reorder`): each file is one unit of work (a notebook's cells share a kernel, so they must stay on one
worker, in order), handed out in the order below, longest first, so that neither worker waits long for the other.
"""
import importlib.util
import os

import matplotlib
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"          # nothing may download at run time
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# No display for the tests' figures. Set in this process only, not as MPLBACKEND: a notebook's kernel, started from
# here by nbval, must not inherit Agg (its inline backend would then show no figure).
matplotlib.use("Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n 2 (make test): one torch thread per worker, one per core
    import torch

    torch.set_num_threads(1)

SLOW_FIRST = "tests/test_pretrain_bart_beams.py"  # about 4 minutes on one thread: started first, beside the rest


def _order(item) -> int:
    """The beam test first, then the notebooks (a minute or so each), then the many short tests, which fill the gaps."""
    path = item.nodeid.split("::")[0]
    return 0 if path == SLOW_FIRST else 1 if path.endswith(".ipynb") else 2


def pytest_collection_modifyitems(items):
    """Longest work first (_order); stable, so that a notebook's cells keep their order."""
    items.sort(key=_order)


@pytest.fixture
def hide_package(monkeypatch):
    """hide_package(name): importlib.util.find_spec finds no package `name`, as where it is not installed."""
    find_spec = importlib.util.find_spec

    def hide(package: str) -> None:
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *args: None if name == package else find_spec(name, *args))

    return hide
