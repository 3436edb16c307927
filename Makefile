# Bootstrap: a virtual environment in .venv with the package and its dev extras.
# Works on a fresh machine with nothing but Python >= 3.11 and the package registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint typecheck docs check clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/viveka-db demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check viveka_db tests benchmarks examples
	$(VENV)/bin/ruff format --check viveka_db

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy tests/typing
	$(VENV)/bin/pyright

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

check: lint typecheck docs

clean:
	rm -rf $(VENV) build site .mypy_cache .ruff_cache viveka.db viveka.db-*
