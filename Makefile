# The two commands a newcomer needs are `make run` and `make test`; the rest are their parts.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck pytest install clean

$(BIN)/stockyard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=25.1"
	# torch first and pinned: the CPU wheel, not a multi-GB CUDA build pulled in by a looser range.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[all]" --group dev
	touch $@

install: $(BIN)/stockyard

## Install everything, start (embedded) PostgreSQL and Redis, materialize every asset, open the UIs.
run: install
	$(BIN)/stockyard run

## Lint, type-check and run the test suite against real PostgreSQL and Redis.
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
