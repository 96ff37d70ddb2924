# Needs a Python (3.11+) on PATH: every target builds its own virtualenv in $(VENV). make lint
# also needs Node.js and npm, for Biome (the JavaScript linter, installed into node_modules).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NPM ?= npm
NODE_BIN := node_modules/.bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
BENCH_ARGS ?=
BENCH_ADMIN_ARGS ?=
# make sdk-conformance: where the SDK's sdist and tests go, and the PostgreSQL it also runs on.
SDK_CONFORMANCE_DIR ?= .sdk-conformance
SDK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres

.DEFAULT_GOAL := help
.PHONY: help test sdk-conformance demo lint format clean bench bench-admin bench-purge bench-live \
	newcomer

help:
	@echo "make test   run the test suite (SQLite; DATABASE_URL / REDIS_URL are honoured)"
	@echo "            PYTEST_ARGS='-x -k store' passes arguments to pytest"
	@echo "make sdk-conformance  OpenAI's own store and server tests (from the installed SDK's"
	@echo "            sdist on PyPI) against DjangoStore, on SQLite and on SDK_DATABASE_URL"
	@echo "make newcomer  README's Quickstart, verbatim, on a new startproject site in a new venv,"
	@echo "            served by runserver, uvicorn and daphne, chatted with in Chromium (~2 min)"
	@echo "make demo   migrate and serve example_project on http://$(HOST):$(PORT)/ (login demo/demo)"
	@echo "make lint   ruff check, ruff format --check, mypy; Biome on the JavaScript (needs npm);"
	@echo "            builds the sdist and wheel into dist/: twine check, check-wheel-contents"
	@echo "make bench overhead against the bare SDK + history scale on PostgreSQL (~10 min);"
	@echo "            writes benchmarks/results/overhead.md and overhead.png; BENCH_ARGS=--quick"
	@echo "make bench-admin  the admin at 10k and 1M threads on PostgreSQL (first run loads ~5M"
	@echo "            items); writes benchmarks/results/admin_scale.md; BENCH_ADMIN_ARGS=--quick"
	@echo "make bench-purge  chatkit_purge of 10k and 100k threads (1M items) on PostgreSQL, on"
	@echo "            copies of its own databases; writes benchmarks/results/purge_scale.md"
	@echo "make bench-live  notice latency across two ASGI servers (daphne, uvicorn) sharing"
	@echo "            PostgreSQL and Redis, memory per open websocket (~3 min); writes"
	@echo "            benchmarks/results/live_scale.md; BENCH_LIVE_ARGS=--quick"
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

# The SDK's sdist ships tests/test_store.py and tests/test_chatkit_server.py: downloaded for the
# installed version (never committed), run with our stand-ins for the helpers it leaves out.
# The deliberate differences are in tests/sdk_conformance/expected_differences.txt.
SDK_PYTEST = $(BIN)/python -m pytest -p no:asyncio -p tests.sdk_conformance.plugin -q -rxX \
	--disable-warnings $(PYTEST_ARGS)
sdk-conformance: $(VENV)/.installed-test
	@sdk_tests=$$($(BIN)/python -m tests.sdk_conformance.fetch $(SDK_CONFORMANCE_DIR)) && \
	echo "== OpenAI's SDK tests ($$sdk_tests) on SQLite" && \
	env -u DATABASE_URL $(SDK_PYTEST) $$sdk_tests && \
	echo "== OpenAI's SDK tests ($$sdk_tests) on PostgreSQL ($(SDK_DATABASE_URL))" && \
	env DATABASE_URL=$(SDK_DATABASE_URL) $(SDK_PYTEST) $$sdk_tests

# tests/newcomer.py: the Quickstart's snippets come from README.md itself. NEWCOMER_ARGS:
# --python python3.13 (the new site's interpreter), --readme COPY, --keep.
NEWCOMER_ARGS ?=
newcomer: $(VENV)/.installed-test
	$(BIN)/python -m tests.newcomer $(NEWCOMER_ARGS)

demo: $(VENV)/.installed-example
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_user
	@echo "Serving http://$(HOST):$(PORT)/ (log in as demo / demo; Ctrl-C stops)"
	$(BIN)/python -m django_chatkit.daphne -b $(HOST) -p $(PORT) example_project.asgi:application

# Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/chatkit_bench).
bench: $(VENV)/.installed-test $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# Not part of bench: its first run fills a database of 1M threads (benchmarks/README.md).
bench-admin: $(VENV)/.installed-test $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks.admin_scale $(BENCH_ADMIN_ARGS)

# Not part of bench: fills two databases of its own (chatkit_bench_purge_*) on its first run.
BENCH_PURGE_ARGS ?=
bench-purge: $(VENV)/.installed-test $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks.purge_scale $(BENCH_PURGE_ARGS)

# Not part of bench: needs Redis too (BENCH_LIVE_ARGS="--redis-url redis://HOST:6379/9").
BENCH_LIVE_ARGS ?=
bench-live: $(VENV)/.installed-test $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks.live_scale $(BENCH_LIVE_ARGS)

# The JavaScript tools, at the versions package-lock.json pins: reinstalled only when it changes.
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

# build/ holds setuptools' copies of the sources after a wheel build (tox makes one).
# biome ci: lint and formatting of the JavaScript (which files: biome.json), changing nothing.
# dist/ (git-ignored, rebuilt each time): the sdist, then the wheel built from it, as pip builds
# one, so a file the sdist leaves out is missing from the wheel too. twine check: the metadata and
# the README as PyPI renders them; check-wheel-contents: [tool.check-wheel-contents] in
# pyproject.toml (the wheel holds django_chatkit and every file of its tree).
lint: $(VENV)/.installed-test $(VENV)/.installed-lint node_modules/.installed
	$(BIN)/ruff check --extend-exclude build .
	$(BIN)/ruff format --check --extend-exclude build .
	$(BIN)/mypy django_chatkit tests example_project benchmarks manage.py
	$(NODE_BIN)/biome ci
	rm -rf dist
	$(BIN)/python -m build --quiet --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/check-wheel-contents dist/*.whl

clean:
	rm -rf $(VENV) .tox build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis \
		$(SDK_CONFORMANCE_DIR) node_modules
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
