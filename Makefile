PYTHON ?= python
PYTEST_WORKERS ?= 2

.PHONY: install lint format type test test-fast bench

install:
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e ".[test]"

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format:
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

type:
	$(PYTHON) -m mypy zoo envs agents hub

test:
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS)

test-fast:
	$(PYTHON) -m pytest -n $(PYTEST_WORKERS) -m "not slow"

bench:
	$(PYTHON) benchmarks/env_throughput.py
