# Mailharness developer commands. A fresh machine needs only Python 3.11+:
#   make run    create .venv, install, migrate, serve SMTP :2525 + HTTP :8025 (SQLite file)
#   make test   create/update .venv, lint, type-check, run the whole suite (SQLite + Postgres)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest openapi bench postgres tools clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e clients/python
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/mailharness migrate
	$(BIN)/mailharness serve

test: $(STAMP) lint typecheck postgres tools pytest

lint: $(STAMP)
	$(BIN)/ruff check app tests migrations clients/python $(wildcard bench)
	$(BIN)/ruff format --check app tests migrations clients/python $(wildcard bench)

typecheck: $(STAMP)
	$(BIN)/mypy
	cd clients/python && ../../$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

# The suite needs a Postgres on 127.0.0.1:5432 (user postgres, trust auth).
# Start the machine's cluster if it is installed but down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || { \
	  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then \
	    echo "starting PostgreSQL"; \
	    pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -n1) main start; \
	  else \
	    echo "PostgreSQL is not reachable on 127.0.0.1:5432; start one (e.g. docker compose up -d postgres)"; exit 1; \
	  fi; }

# Command-line SMTP clients and the headless browser some tests drive (Debian packages;
# installed when root), and the npm Mailpit client (tests/compat/node, from its lockfile).
# The web UI tests use the system chromium, never a downloaded one.
tools:
	@command -v swaks >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q swaks >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q swaks >/dev/null; }; \
	  else echo "swaks not installed: its tests are skipped (install the swaks package)"; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	  else echo "chromium not installed: the web UI browser tests are skipped (install the chromium package)"; fi; }
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/compat/node --no-audit --no-fund --silent; \
	else echo "npm not installed: the npm mailpit-api client test is skipped"; fi

openapi: $(STAMP)
	$(BIN)/mailharness openapi

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
