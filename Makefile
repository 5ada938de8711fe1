# One command each. `make run` and `make test` are the README's two commands.
PYTHON_BIN ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run install install-dev test lint format typecheck check bench fuzz clean

$(VENV)/.base: requirements/base.txt
	$(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/base.txt
	touch $@

$(VENV)/.dev: $(VENV)/.base requirements/dev.txt
	$(PY) -m pip install -q -r requirements/dev.txt
	touch $@

install: $(VENV)/.base
install-dev: $(VENV)/.dev

## Set up and run the hub on embedded defaults, with a demo account and batch.
run: install
	@$(PY) manage.py run_hub --host $(HOST) --port $(PORT)

## Set up and run the whole test suite (lint, types, tests).
test: install-dev lint typecheck
	$(PY) -m pytest

## Lint, format check, and bandit: no medium or high finding outside the tests (docs/security.md).
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -q -r accounts batches monitoring omtx_hub ratelimit -x '*/tests/*' --severity-level medium

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install-dev
	$(VENV)/bin/mypy .

## Fuzz the live API against its OpenAPI schema (Schemathesis, every check; docs/api.md, "Contract").
fuzz: install-dev
	PY=$(PY) .ci/fuzz

## Measure against the targets in docs/performance.md (the PostgreSQL ones need DATABASE_URL=postgres://…, the websocket one REDIS_URL too).
bench: install-dev
	$(PY) benchmarks/run.py
	@case "$$DATABASE_URL" in postgres*) \
	  $(PY) benchmarks/dispatch.py && $(PY) benchmarks/submit.py && $(PY) benchmarks/status_poll.py && \
	  $(PY) benchmarks/results.py && $(PY) benchmarks/export.py ;; \
	  *) echo "dispatch, submit, http, results and export benchmarks skipped: set DATABASE_URL to PostgreSQL" ;; esac
	@case "$$DATABASE_URL,$$REDIS_URL" in postgres*,redis*) $(PY) benchmarks/websockets.py ;; \
	  *) echo "websocket benchmark skipped: set DATABASE_URL to PostgreSQL and REDIS_URL" ;; esac

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
