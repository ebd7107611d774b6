# Dynamics–Marketo Sync: every target does its own set-up on a fresh clone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help setup infra-tools test lint typecheck unit integration bench demo clean

help:
	@echo "make test   - set up, then ruff, mypy --strict and the whole pytest suite"
	@echo "make demo   - seed the emulators and run a full sync end to end"
	@echo "make bench  - run the benchmarks, write bench/results/latest.json"

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Infra checks (tests/infra): checkov + pycep-parser in their own venv, so their dependency trees
# never meet the app's pins, and the Kusto language service (npm) for the KQL files.
VENV_INFRA := .venv-infra
KQL_TOOLS := infra/tools/kql

infra-tools: $(VENV_INFRA)/.installed $(KQL_TOOLS)/node_modules/.installed

$(VENV_INFRA)/.installed: requirements-infra.txt
	test -x $(VENV_INFRA)/bin/python || $(PYTHON) -m venv $(VENV_INFRA)
	$(VENV_INFRA)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

$(KQL_TOOLS)/node_modules/.installed: $(KQL_TOOLS)/package.json $(KQL_TOOLS)/package-lock.json
	npm ci --prefix $(KQL_TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy shared functions emulators dmsync function_app.py

test: lint typecheck infra-tools
	$(PY) -m pytest $(PYTEST_ARGS)

unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: setup
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

# Benchmarks (never part of `make test`): the real host against Azurite and both emulators, then
# the emulator and governor benchmarks; writes bench/results/latest.json and the README table.
# Flags: make bench BENCH_ARGS="--contacts 5000 --changes 50 --change-minutes 2" (see --help).
BENCH_ARGS ?=
bench: setup
	$(PY) -m bench.syncbench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(VENV_INFRA) $(KQL_TOOLS)/node_modules node_modules .mypy_cache .pytest_cache .ruff_cache

# The README's first command: sets up, then runs the whole product end to end (dmsync/demo/).
demo: setup
	$(VENV)/bin/dmsync demo
