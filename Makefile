# coursemart: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAKE ?= data/lake
WAREHOUSE ?= sqlite:///data/warehouse.db
COURSES ?=
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test lint format bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "coursemart needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

run: $(STAMP) ## Generate a catalog, load it into ./data/warehouse.db, serve it at http://127.0.0.1:8000
	$(BIN)/coursemart run $(if $(COURSES),--courses $(COURSES)) --lake $(LAKE) --warehouse $(WAREHOUSE)
	$(BIN)/coursemart status --lake $(LAKE) --warehouse $(WAREHOUSE)
	@echo "coursemart: open http://$(HOST):$(PORT)/ (API docs at /docs); Ctrl-C stops"
	$(BIN)/coursemart serve --warehouse $(WAREHOUSE) --host $(HOST) --port $(PORT)

SYSTEM_STAMP := $(VENV)/.installed-system
AZURITE := .cache/azurite/node_modules/.bin/azurite-blob
AXE := .cache/axe-core/node_modules/axe-core/axe.min.js
$(SYSTEM_STAMP): $(STAMP)
	scripts/system-packages.sh libpostgresql-jdbc-java libmariadb-java chromium
	@command -v npm >/dev/null 2>&1 && { test -x $(AZURITE) || npm install --silent --no-audit \
		--no-fund --prefix .cache/azurite azurite@3; } \
		|| echo "coursemart: npm missing: the Azure Blob (Azurite) tests will skip"
	@command -v npm >/dev/null 2>&1 && { test -f $(AXE) || npm install --silent --no-audit \
		--no-fund --prefix .cache/axe-core axe-core@4; } \
		|| echo "coursemart: npm missing: the page's accessibility test will skip"
	@touch $@

test: $(SYSTEM_STAMP) ## Run the whole test suite (real files, real databases, Spark, a browser)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint and format check) and mypy --strict
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP) ## Reformat the code with ruff
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	scripts/system-packages.sh libpostgresql-jdbc-java libmariadb-java wrk
	@touch $@

bench: $(BENCH_STAMP) ## Benchmarks against the named anchors; prints ratios
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/spark.py
	$(BIN)/python bench/api.py

clean: ## Remove the environment and the local data
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
