# Needs only a Python (3.11+) on PATH: every target builds its own virtualenv in $(VENV).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help test demo lint format clean bench

help:
	@echo "make test   run the test suite (SQLite; DATABASE_URL / REDIS_URL are honoured)"
	@echo "            PYTEST_ARGS='-x -k store' passes arguments to pytest"
	@echo "make demo   migrate and serve example_project on http://$(HOST):$(PORT)/ (login demo/demo)"
	@echo "make lint   ruff check, ruff format --check, mypy"
	@echo "make bench overhead against the bare SDK + history scale on PostgreSQL (~10 min);"
	@echo "            writes benchmarks/results/overhead.md and overhead.png; BENCH_ARGS=--quick"
	@echo "make clean  remove the virtualenv, caches and build artefacts"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per extra: reinstalled only when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$*]"
	@touch $@

test: $(VENV)/.installed-test
	$(BIN)/pytest $(PYTEST_ARGS)

demo: $(VENV)/.installed-example
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_user
	@echo "Serving http://$(HOST):$(PORT)/ (log in as demo / demo; Ctrl-C stops)"
	$(BIN)/python -m django_chatkit.daphne -b $(HOST) -p $(PORT) example_project.asgi:application

# Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/chatkit_bench).
bench: $(VENV)/.installed-test $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# build/ holds setuptools' copies of the sources after a wheel build (tox makes one).
lint: $(VENV)/.installed-test $(VENV)/.installed-lint
	$(BIN)/ruff check --extend-exclude build .
	$(BIN)/ruff format --check --extend-exclude build .
	$(BIN)/mypy django_chatkit tests example_project manage.py

clean:
	rm -rf $(VENV) .tox build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
