# The two commands of the README: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo test test-unit lint devstack devstack-down scenarios bench clean sysdeps-demo sysdeps-test

# The OS packages (JDK, Maven, redis-server, chromium, ...): devstack/sysdeps.py, standard library
# only, so it runs before the virtualenv exists; installs with apt-get when root, otherwise one line
# per missing package and a non-zero exit. Listed first in `demo` and `test`: make builds
# prerequisites left to right, so nothing is downloaded before it passes.
sysdeps-demo sysdeps-test:
	$(PY) -m devstack.sysdeps $(@:sysdeps-%=%)

$(BIN)/tierstream: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/tierstream

devstack: setup
	$(BIN)/tierstream devstack up

devstack-down: setup
	$(BIN)/tierstream devstack down

demo: sysdeps-demo setup
	bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: sysdeps-test setup lint
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest -m "unit and not integration"

scenarios: setup
	$(BIN)/pytest -m scenario

bench: setup
	$(BIN)/python -m bench.replay_bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts
