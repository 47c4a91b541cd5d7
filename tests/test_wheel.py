"""The installed package, as Colab and `pip install` get it: its wheel carries every module and asset of
course_utils that git tracks (checkpoints, tokenizers, results, the page's JavaScript) and nothing else."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_exactly_the_tracked_package_files(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info next to the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    tracked = subprocess.run(["git", "ls-files", "course_utils"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("course_utils-*.whl")
    files = {n for n in zipfile.ZipFile(wheel).namelist() if not n.startswith("course_utils-")}  # not dist-info
    assert files == set(tracked), {"tracked, not in the wheel": set(tracked) - files,
                                   "in the wheel, not tracked": files - set(tracked)}
    assert {"course_utils/assets/tiny_gpt.safetensors", "course_utils/assets/bpe.json",
            "course_utils/assets/finetune_results.json", "course_utils/browser_gpt.js"} <= files
