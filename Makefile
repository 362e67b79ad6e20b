# Two commands do all set-up on a fresh machine: `make demo` and `make test` (both run `make install`).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export TOKENIZERS_PARALLELISM := false

# A Python 3.12 found without help: $PYTHON312, python3.12 on PATH, then pyenv's versions (whose
# shim fails unless PYENV_VERSION is set), then the usual system locations.
PYTHON312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 \
	/root/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	if $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; then echo $$p; break; fi; done)

.PHONY: install test test-all lint demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON312)" ]; then echo "error: no Python 3.12 found; set PYTHON312=/path/to/python3.12" >&2; exit 1; fi
	@if [ ! -x $(PY) ]; then echo "creating $(VENV) with $(PYTHON312)"; $(PYTHON312) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not slow and not gpu and not trt and not libero"

test-all: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# The main job. Until a trained embedded teacher is shipped (README, Status) it stops with that message, exit 1.
demo: install
	$(VENV)/bin/snapflow-demo

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache *.egg-info
