# coursemart: `make help` lists the targets and the variables.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PYTHON ?= python3## Python 3.11 or newer that creates .venv
LAKE ?= data/lake## make run: the lake (a folder or an fsspec URL)
WAREHOUSE ?= sqlite:///data/warehouse.db## make run: the warehouse (a SQLAlchemy URL)
COURSES ?=## make run: generate this many more courses (none: 100,000 into an empty lake only)
HOST ?= 127.0.0.1## make run: the address to serve on
PORT ?= 8000## make run: the port to serve on
PYTEST_ARGS ?=## make test: arguments for pytest (e.g. -k load -x)
BENCH_ARGS ?=## make bench: arguments for every benchmark (e.g. --quick)
SCALE_ARGS ?=## make bench-scale: --huge adds 10^8 courses

.DEFAULT_GOAL := help
.PHONY: help run test lint format bench bench-quick bench-scale clean

help: ## List the targets and the variables
	@echo "targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "variables (make run PORT=8001 COURSES=50000):"
	@grep -hE '^[A-Z_]+ \?=[^#]*## ' $(MAKEFILE_LIST) \
		| awk -F ' \\?=|## ' '{gsub(/^ +| +$$/, "", $$2); printf "  %-12s %s (default: %s)\n", $$1, $$3, ($$2 == "" ? "none" : $$2)}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "coursemart needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# make run needs only what running needs: the runtime dependencies (an environment that make test
# made, with the development set, serves as well). --no-compile: Python compiles, on first use, only
# the modules coursemart imports, instead of pip compiling every module of every package (57 MB).
$(RUN_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "coursemart needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then exit 0; fi; \
		test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
		echo "coursemart: installing what running needs into $(VENV)"; \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -e .
	@touch $@

run: $(RUN_STAMP) ## Generate a catalog (once), load it into ./data/warehouse.db, serve it at http://HOST:PORT
	@$(BIN)/coursemart serve --check --warehouse $(WAREHOUSE) --host $(HOST) --port $(PORT)
	$(BIN)/coursemart run $(if $(COURSES),--courses $(COURSES)) --lake $(LAKE) --warehouse $(WAREHOUSE)
	$(BIN)/coursemart status --lake $(LAKE) --warehouse $(WAREHOUSE)
	@echo "coursemart: open http://$(HOST):$(PORT)/ (API docs at /docs); Ctrl-C stops"
	$(BIN)/coursemart serve --warehouse $(WAREHOUSE) --host $(HOST) --port $(PORT)

SYSTEM_STAMP := $(VENV)/.installed-system
AZURITE := .cache/azurite/node_modules/.bin/azurite-blob
AXE := .cache/axe-core/node_modules/axe-core/axe.min.js
$(SYSTEM_STAMP): $(STAMP)
	scripts/system-packages.sh libpostgresql-jdbc-java libmariadb-java mariadb-server-core chromium
	scripts/system-packages.sh podman runc netavark aardvark-dns iptables debootstrap
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
	scripts/system-packages.sh libpostgresql-jdbc-java libmariadb-java mariadb-client-core wrk time
	@touch $@

bench: $(BENCH_STAMP) ## Benchmarks against the named anchors; prints ratios, writes docs/benchmarks.md
	$(BIN)/python bench/startup.py $(BENCH_ARGS)
	$(BIN)/python bench/generate.py $(BENCH_ARGS)
	$(BIN)/python bench/load.py $(BENCH_ARGS)
	$(BIN)/python bench/delta.py $(BENCH_ARGS)
	$(BIN)/python bench/spark.py $(BENCH_ARGS)
	$(BIN)/python bench/api.py $(BENCH_ARGS)
	$(BIN)/python bench/attacks.py $(BENCH_ARGS)
	$(BIN)/python bench/scale.py $(BENCH_ARGS)
	$(BIN)/python bench/follow.py $(BENCH_ARGS)
	$(BIN)/python bench/report.py $(BENCH_ARGS)

bench-quick: ## The benchmarks at small sizes (a few minutes); report in bench/results/quick/
	$(MAKE) bench BENCH_ARGS=--quick

bench-scale: $(BENCH_STAMP) ## 10^5 to 10^7 courses on PostgreSQL (SCALE_ARGS=--huge adds 10^8)
	$(BIN)/python bench/scale.py $(SCALE_ARGS)
	$(BIN)/python bench/report.py

clean: ## Remove the environment, the local data and everything the targets made
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis .cache \
		bench/results/quick
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
