# Two entry points (see README): `make demo` and `make test`. Both are idempotent:
# system packages are installed only where missing, the virtualenv is rebuilt only
# when pyproject.toml changes.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= fix,dolphindb,ml,test
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup system-deps demo test bench clean

system-deps:
	@bash scripts/system_deps.sh

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

setup: system-deps $(STAMP)

demo: setup
	$(VENV)/bin/pyplatform demo

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/pyplatform bench --help

clean:
	rm -rf $(VENV) data .pytest_cache
