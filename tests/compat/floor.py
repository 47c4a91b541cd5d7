"""The floor environment's pins: every lower bound in pyproject.toml (the dependencies and the [course] extra) made
exact, so that tests/compat/run.sh installs the oldest releases the package claims to support. torch is left out:
every environment takes the CPU build run.sh installs first.

    python3 tests/compat/floor.py      ->  transformers==4.57.0 tokenizers==0.22.0 ...
"""

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def floor_pins(pyproject: Path = PYPROJECT) -> list[str]:
    """`name==X` for each `name>=X` requirement of the package and its [course] extra, torch excepted."""
    project = tomllib.loads(pyproject.read_text())["project"]
    pins = []
    for requirement in project["dependencies"] + project["optional-dependencies"]["course"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", requirement)
        if match is None:
            raise ValueError(f"{pyproject}: requirement {requirement!r} is not of the form name>=version, "
                             "so it has no floor to pin")
        name, version = match.groups()
        if name != "torch":
            pins.append(f"{name}=={version}")
    return pins


if __name__ == "__main__":
    print(" ".join(floor_pins(Path(sys.argv[1]) if len(sys.argv) > 1 else PYPROJECT)))
