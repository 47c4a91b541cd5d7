"""The installed package, as Colab and `pip install` get it: its wheel carries every module and asset of
course_utils that git tracks (checkpoints, tokenizers, results, the page's JavaScript) and nothing else."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


def test_the_floor_environment_pins_every_lower_bound_but_torchs(tmp_path):
    """tests/compat/floor.py: make test-compat's oldest environment is pyproject's bounds, made exact."""
    sys.path.insert(0, str(ROOT / "tests" / "compat"))
    try:
        from floor import floor_pins
    finally:
        sys.path.pop(0)
    pins = floor_pins()
    assert "transformers==4.57.1" in pins and "gguf==0.16" in pins and "jupyterlab==4" in pins
    assert not any(pin.startswith("torch==") for pin in pins)
    unbounded = tmp_path / "pyproject.toml"  # a requirement with no floor would leave its oldest release untested
    unbounded.write_text('[project]\ndependencies = ["numpy"]\n[project.optional-dependencies]\ncourse = []\n')
    with pytest.raises(ValueError, match="requirement 'numpy' is not of the form name>=version"):
        floor_pins(unbounded)
