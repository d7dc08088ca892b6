# Every target bootstraps what it needs: a machine with python3, make and git is enough.
# uv comes from the PATH when present, otherwise it is installed into .uv/ (kept apart
# from .venv so that `uv sync` never uninstalls the tool that is running it).

SHELL := /bin/bash
# uv verifies TLS with its own bundled roots unless told otherwise; the platform's trust store
# is the one pip and curl use, and it holds any CA a site's proxy adds (a fresh clone in a
# bare environment could not download wheels without it).
export UV_NATIVE_TLS ?= 1
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .uv/bin/uv)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test test-postgres lint format bench clean

.uv/bin/uv:
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet uv

$(BIN)/ledgerline: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

install: $(BIN)/ledgerline ## set up .venv with the `ledgerline` command

run: install ## serve the API on the embedded default (SQLite, local queue and files)
	$(BIN)/ledgerline quickstart
	$(BIN)/ledgerline serve

test: install ## the whole suite; PostgreSQL/Redis/S3 parts run when configured (always in CI)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install ## benchmarks, never part of `make test`
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .uv .pytest_cache .mypy_cache .ruff_cache
