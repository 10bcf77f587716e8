# Sysadmin and developer entry points. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: install install-test db-init db-migrate env serve run cron test bench create-admin \
	deploy-deps install-prod bench-web browser-deps demo demo-pay bench-cron

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

# The server, with the cron loop (a run every 60 s) beside it; stopping the server
# (Ctrl-C) stops the loop too.
run: install .env db-init
	$(PY) -m lib.users first-admin
	@$(PY) cron/cron.py --loop 60 & cron_pid=$$!; \
	trap 'kill $$cron_pid 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	$(PY) wsgi.py

# An admin account: `make create-admin ADMIN_USER=alice`; the password comes from
# $$ADMIN_PASSWORD or a prompt. An existing user of that name becomes admin with it.
ADMIN_USER ?= admin
create-admin: install .env db-init
	$(PY) -m lib.users create-admin $(ADMIN_USER)

cron: install .env
	$(PY) cron/cron.py

# The auditor: every escrow's chain balance and history against the database
# (cron/audit.py); exit 1 and a staff flag per discrepancy. AUDIT_ARGS="--chain 1" for one chain.
.PHONY: audit
audit: install .env
	$(PY) cron/audit.py $(AUDIT_ARGS)

# Backups (cron/backup.py): `make backup` writes one into BACKUP_DIR (db/backups) and prints
# its path (SQLite online backup API; MariaDB mariadb-dump --single-transaction).
# `make restore BACKUP=db/backups/store-....sqlite [RESTORE_DSN=...]` loads it into a new or
# empty database (default DB_DSN; never one with tables) and applies newer migrations.
.PHONY: backup restore
backup: install .env
	$(PY) cron/backup.py

restore: install .env
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=FILE [RESTORE_DSN=DSN]"; exit 2; }
	$(PY) cron/backup.py restore "$(BACKUP)" $(if $(RESTORE_DSN),--to "$(RESTORE_DSN)")

# Cron figures: escrow derivations per second; one cron cycle with 10,000 PENDING
# escrows against a fresh anvil, batched and one request per escrow.
bench-cron: install
	$(PY) bench/cron_poll.py

# Two workers (pytest-xdist), a test file to a worker: a file's tests share its module
# fixtures (nginx/uwsgi stacks, MariaDB pairs); each worker has its own anvil and databases.
test: install-test deploy-deps browser-deps
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15

# Debian's Chromium for the browser tests (tests/browser, Playwright for Python with
# executable_path=/usr/bin/chromium). Playwright's own browser download is never used.
browser-deps:
	@test -x /usr/bin/chromium || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# A local demo: anvil, the dev chain and ETH, a seeded vendor, items and buyer, the web
# server on http://127.0.0.1:8000 and the cron loop (demo/run.py; Ctrl-C stops it).
# In another terminal, `make demo-pay ORDER=<uuid>` pays an order from anvil's account 1.
demo: install
	$(PY) -m demo.run

demo-pay: $(VENV)/.installed
	$(PY) -m demo.pay "$(ORDER)"

# The MCP server for agent hosts (agent_mcp/server.py), a client of the JSON API acting as
# the user of MARKETPLACE_API_KEY on MARKETPLACE_URL (default http://127.0.0.1:8000).
# stdio by default; `make mcp MCP_TRANSPORT=http MCP_PORT=8765` serves streamable HTTP at
# http://127.0.0.1:8765/mcp (MCP_HOST to bind elsewhere). An agent host that spawns it over
# stdio should run `make -s --no-print-directory -C <repo> mcp` (nothing else on stdout).
MCP_TRANSPORT ?= stdio
MCP_PORT ?= 8765
.PHONY: mcp
mcp: $(VENV)/.installed
	@$(PY) -m agent_mcp.server --transport $(MCP_TRANSPORT) --port $(MCP_PORT)

bench: install
	$(PY) bench/views.py

# nginx and openssl (Debian packages) and uwsgi (requirements-prod.txt, built into .venv)
# for tests/test_deploy.py, which runs the real nginx -> uwsgi -> app. Quick when present.
deploy-deps: $(VENV)/.installed
	@sh deploy/deps.sh

# Production install as root: users, secrets split, uwsgi, nginx, cron (README, Deployment).
# Settings in the environment: sudo SERVER_NAME=shop.example.com make install-prod
install-prod:
	bash deploy/install-prod.sh

# Web requests per second through nginx -> uwsgi (wrk from Debian when it can be installed).
bench-web: $(VENV)/.installed
	@sh deploy/deps.sh wrk || true
	$(PY) bench/web.py
