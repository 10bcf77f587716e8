# Sysadmin and developer entry points. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: install install-test db-init db-migrate env serve run cron test bench create-admin

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

# anvil (the local Ethereum node for tests and the demo) comes from npm.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

install-test: install $(VENV)/.installed-test

.env:
	$(PY) -m lib.env --init

env: .env

db-init: install .env
	$(PY) -m lib.migrate

db-migrate: db-init

serve: install .env
	$(PY) wsgi.py

run: install .env db-init
	$(PY) wsgi.py

cron: install .env
	$(PY) cron/cron.py

test: install-test
	$(PY) -m pytest -q

bench: install
	$(PY) bench/views.py
