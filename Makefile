# webfl: `make run` starts the app, `make test` runs the whole suite. Both set up whatever
# is missing first (virtualenv, pinned Python packages, vendored browser runtime, Chromium
# for the tests) and do no network work when everything is already in place.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The machines carry the CPU torch wheel in /opt/wheels; never let pip pick a CUDA build.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP := $(BIN)/pip install -q --disable-pip-version-check $(FIND_LINKS)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help run test bench setup vendor browser postgres datasets clean

help:
	@echo "make run    start webfl on http://127.0.0.1:$${WEBFL_PORT:-8000}/ (embedded SQLite, demo task)"
	@echo "make test   run the whole test suite (unit, API, headless Chromium)"
	@echo "make bench  run the benchmarks in tests/bench (not part of make test)"
	@echo "make clean  remove the virtualenv, caches and vendored files (keeps instance/ data)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'
	touch $@

vendor: $(VENV)/.installed
	@$(BIN)/python -m server.vendor --quiet

browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		echo "installing Debian's chromium and chromium-driver for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# The tests start their own throwaway PostgreSQL clusters from Debian's server binaries.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
		echo "installing Debian's postgresql for the PostgreSQL backend's tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; \
	fi

# Fashion-MNIST (the NIID-Bench reproduction and its tests) from Debian's package.
datasets:
	@if [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then \
		echo "installing Debian's dataset-fashion-mnist for the NIID-Bench config and its tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	fi

setup: $(VENV)/.installed vendor

run: setup
	$(BIN)/webfl run

test: setup browser postgres datasets
	$(BIN)/python -m pytest

bench: setup browser postgres datasets
	$(BIN)/python -m pytest tests/bench -p no:cacheprovider -s -o python_files='bench_*.py'

clean:
	rm -rf $(VENV) .cache www/vendor test-artifacts .pytest_cache
