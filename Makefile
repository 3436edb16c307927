# Bootstrap: a virtual environment in .venv with the package and its dev extras.
# Works on a fresh machine with nothing but Python >= 3.11 and the package registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-lowest conduit bench lint typecheck complexity docs check clean

# The first install takes a few minutes: say so, and let pip show each package it fetches.
$(STAMP): pyproject.toml
	@echo "==> creating the virtual environment $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip"
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "==> installing viveka-db with its dev extras into $(VENV) (a few minutes the first time)"
	@$(PY) -m pip install --progress-bar on -e ".[dev]"
	@echo "==> $(VENV) is ready"
	@touch $(STAMP)

demo: $(STAMP)
	@echo "==> running viveka-db demo"
	$(VENV)/bin/viveka-db demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The SQLite suite with the lowest versions pyproject.toml allows (a venv of its own).
test-lowest:
	bash .ci/lowest.sh $(PYTEST_ARGS)

# The RealWorld API suite (its Postman collection, run by newman, which npm installs into
# build/newman) against examples/conduit, on a fresh database of each kind.
CONDUIT_DATABASES ?= postgresql sqlite mariadb

conduit: $(STAMP)
	$(PY) examples/conduit/run_newman.py $(CONDUIT_DATABASES)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check viveka_db tests benchmarks examples
	$(VENV)/bin/ruff format --check viveka_db
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy tests/typing
	$(VENV)/bin/pyright

# No function above cyclomatic complexity 20 (radon rank C at most); xenon exits non-zero.
complexity: $(STAMP)
	$(VENV)/bin/xenon --max-absolute C viveka_db

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

check: lint typecheck complexity docs

clean:
	rm -rf $(VENV) build site .mypy_cache .ruff_cache viveka.db viveka.db-*
