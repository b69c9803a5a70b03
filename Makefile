# Portail Famille — the two commands of the README, and a few more.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint up clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## make run: the whole suite with demo data at http://127.0.0.1:8000 (embedded mode)
run: $(STAMP)
	$(BIN)/portail dev

## make test: linters, the architecture contract, the dependency audit, the test suite and
## every benchmark scenario at CI scale (correctness only)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python .ci/audit.py
	$(BIN)/python -m pytest
	$(BIN)/python -m bench all --quick --out var/bench-quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## make up: the distributed topology (needs DATABASE_URL and AMQP_URL)
up: $(STAMP)
	$(BIN)/portail up

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
