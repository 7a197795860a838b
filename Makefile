# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# `make test` also builds the documentation site strictly (`make docs`).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# tests run in two processes (pytest-xdist), a test file each: most tests wait on subprocesses,
# loopback servers and disk, so two halves overlap even on CI's 2 cores
TEST_WORKERS ?= 2

.PHONY: install test test-all demo bench lint docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,bench,ml]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) docs
	$(PY) -m pytest -q -x --timeout=600 -n $(TEST_WORKERS) --dist loadfile

test-all: $(STAMP)
	M3LEO_SLOW=1 $(PY) -m pytest -q --timeout=1800 -n $(TEST_WORKERS) --dist loadfile

demo: $(STAMP)
	$(PY) -m m3leo_tiles.demo

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# the documentation site, strict: a broken link or reference fails the build (and `make test`)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) demo/out bench-out build/site .pytest_cache .mypy_cache
