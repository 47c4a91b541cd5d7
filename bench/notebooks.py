"""Time every notebook and measure its kernel's peak memory, against the course's budget.

Usage:
    .venv/bin/python bench/notebooks.py                      # every notebooks/*.ipynb
    .venv/bin/python bench/notebooks.py notebooks/01_attention.ipynb ...
    .venv/bin/python bench/notebooks.py --outdir /tmp/executed  # keep the executed copies there

A benchmark that prints, never asserts: a notebook over budget is reported as OVER and the exit
status stays 0; the exit status is 1 only when a notebook fails to execute.
Nothing is written into notebooks/: executed copies go to a temporary directory.

How it measures
---------------
Each notebook runs in its own fresh child Python (this file, re-invoked with ``--child``), which
executes it with nbclient (same kernel ``python3``, cwd = the notebook's folder, as nbval and
``jupyter nbconvert --execute`` do). The kernel is a direct child of that driver.

* Wall time: the driver's ``time.perf_counter()`` around ``NotebookClient.execute()``, i.e. kernel
  start, every cell, kernel shutdown: what a student waits for with "Restart & Run All".

* Peak memory: ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by the driver after the
  kernel has exited and been reaped (jupyter_client waits on it at shutdown). The kernel itself
  records its high-water RSS, so this is the exact peak, however brief; sampling RSS with psutil
  every few tens of milliseconds can miss a short spike (a large temporary in one matmul).
  Two consequences of this choice:
    - one driver per notebook is required, because RUSAGE_CHILDREN is the maximum over every
      child ever reaped by the process;
    - it is the peak of the single largest descendant (the kernel), not of the sum of a process
      tree. Course notebooks run in one process (no DataLoader workers); if one ever spawns
      worker processes, their memory is not added in.
  ``ru_maxrss`` is in KiB on Linux and in bytes on macOS; it is converted to MB (10^6 bytes would
  be misleading next to a 2048 budget, so MB here means MiB).

Environment of the children: HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1, HF_DATASETS_OFFLINE=1,
TOKENIZERS_PARALLELISM=false, PYTHONHASHSEED=0, and MPLBACKEND removed: in a kernel, an
MPLBACKEND=Agg would replace ipykernel's inline backend, figures would never be drawn, and the
benchmark would under-count the real cost of the notebook.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 60.0  # chapters 01-05 (foundation and pre-training issues)
BUDGET_S_FROM_06 = 90.0  # chapters 06-09: generation and inference train or decode live (issues 4 and 5)
BUDGET_MB = 2048.0
CELL_TIMEOUT_S = 600

CHILD_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONHASHSEED": "0",
}


def _maxrss_children_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def _child(notebook: str, out_nb: str, out_json: str) -> int:
    """Execute one notebook (driver process); write {"wall_s", "peak_mb", "error"} to out_json."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(notebook)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(path.parent)}},
    )
    error = None
    t0 = time.perf_counter()
    try:
        client.execute()
    except Exception as exc:  # CellExecutionError, timeouts, dead kernel: all reported, not raised
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # drop ANSI colours
        error = f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}"
    wall = time.perf_counter() - t0
    nbformat.write(nb, out_nb)
    Path(out_json).write_text(json.dumps({"wall_s": wall, "peak_mb": _maxrss_children_mb(), "error": error}))
    return 1 if error else 0


def budget_s(notebook: Path) -> float:
    """The wall-time budget of a notebook: 90 s from chapter 06 on, 60 s before."""
    number = notebook.name.split("_")[0]
    return BUDGET_S_FROM_06 if number.isdigit() and int(number) >= 6 else BUDGET_S


def _notebooks(args: list[str]) -> list[Path]:
    if args:
        return [Path(a) for a in args]
    return sorted(p for p in (ROOT / "notebooks").glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--outdir", help="where to write the executed copies (default: a new temp dir)")
    opts = parser.parse_args(argv)

    notebooks = _notebooks(opts.notebooks)
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        print(f"bench: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not notebooks:
        print("bench: no notebooks in notebooks/, nothing to measure")
        return 0

    outdir = Path(opts.outdir) if opts.outdir else Path(tempfile.mkdtemp(prefix="bench-notebooks-"))
    outdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(CHILD_ENV)

    rows, failed = [], []
    for nb in notebooks:
        out_nb, out_json = outdir / nb.name, outdir / (nb.stem + ".json")
        print(f"running {nb} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(nb.resolve()), str(out_nb), str(out_json)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            res = json.loads(out_json.read_text())
        except (OSError, ValueError):
            res = {"wall_s": float("nan"), "peak_mb": float("nan"),
                   "error": f"driver exited with {proc.returncode}: {proc.stdout.strip()[-300:]}"}
        if res["error"]:
            status = "FAIL"
            failed.append((nb, res["error"]))
        elif res["wall_s"] > budget_s(nb) or res["peak_mb"] > BUDGET_MB:
            status = "OVER"
        else:
            status = "OK"
        rows.append((nb.name, res["wall_s"], budget_s(nb), res["peak_mb"], status))

    w = max(len("notebook"), *(len(r[0]) for r in rows))
    print(f"\n{'notebook':<{w}}  {'wall (s)':>8}  {'budget (s)':>10}  {'peak RSS (MB)':>13}  status")
    print(f"{'-' * w}  {'-' * 8}  {'-' * 10}  {'-' * 13}  ------")
    for name, wall, budget, peak, status in rows:
        print(f"{name:<{w}}  {wall:8.1f}  {budget:10.0f}  {peak:13.0f}  {status}")
    print(f"memory budget: {BUDGET_MB:.0f} MB per notebook")
    print(f"\nwall: kernel start to shutdown; peak RSS: the kernel process (getrusage, exact).")
    print(f"executed copies: {outdir}")
    for nb, err in failed:
        print(f"FAILED {nb}: {err}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        sys.exit(_child(*sys.argv[2:]))
    sys.exit(main())
