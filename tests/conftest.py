"""Test-session environment: offline and headless, however pytest is started.

`make test` already exports these; this file covers a bare `pytest tests` too. It runs before any
test module is imported, hence before huggingface_hub / transformers read their settings.
"""
import os

os.environ["HF_HUB_OFFLINE"] = "1"          # nothing may download at run time
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")  # plain pytest process, no display

if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n 2 (make test): one torch thread per worker, one per core
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(items):
    """The 4-minute beam test first: on two workers (make test) it then runs beside all the others, not after them."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/test_pretrain_bart_beams.py"))
