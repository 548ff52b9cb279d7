# Two commands on a fresh machine: `make run` (the whole stack) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit integration schemas clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: install, then start the embedded broker + PostgreSQL + every service
run: $(STAMP)
	$(BIN)/conveyor up

## test: lint, type-check, contract check, then every test (unit + integration)
test: $(STAMP) lint
	$(BIN)/python -m shared.schemas.export --check
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check shared services tests bench
	$(BIN)/ruff format --check shared services tests bench
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

## schemas: regenerate JSON Schema snapshots and the AsyncAPI document
schemas: $(STAMP)
	$(BIN)/python -m shared.schemas.export --write

clean:
	rm -rf .conveyor .pytest_cache .mypy_cache .ruff_cache
