"""The production deployment for tests: nginx -> uwsgi -> the app (deploy/localstack.py),
as child processes on free loopback ports, over a database of the test.

    @pytest.fixture(scope="module", params=["sqlite", "mariadb"])
    def stack(request):
        with started(request, "mkt-x-") as ([s], db):
            yield s, db

The test process shares the stack's salts only through the settings it is given (SALTS):
nothing here changes the test process's environment or its process-wide Db.
"""
import contextlib
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from deploy.localstack import ROOT, Stack, StackError, find_nginx, find_uwsgi
from lib import db as dbmod
from lib import migrate
from tests.conftest import empty_tables, missing

# The stacks' salts (sessions and CSRF tokens are HMACs of them).
SALTS = {"SESSION_SALT": "s" * 32, "COOKIE_ENCRYPTION_SALT": "c" * 32, "CSRF_SALT": "x" * 32}


def need_stack_tools():
    if not find_nginx() or not find_uwsgi() or not shutil.which("openssl"):
        # What `make deploy-deps` (part of `make test`) does: nginx and openssl from the
        # machine's packages, uwsgi built into .venv.
        subprocess.run(["sh", os.path.join(ROOT, "deploy", "deps.sh")], cwd=ROOT, timeout=900)
    if not find_nginx() or not find_uwsgi() or not shutil.which("openssl"):
        missing("nginx, openssl or .venv/bin/uwsgi is not installed (run `make deploy-deps`)")


def stack_db(request, tmp, database=None):
    """The database the stacks serve: a new SQLite file in `tmp`, or the session's MariaDB
    emptied; `database` ("sqlite" or "mariadb") or else the fixture's param chooses."""
    if (database or request.param) == "sqlite":
        db = dbmod.Db(f"sqlite:{tmp}/web.sqlite")
        migrate.init(db)
        return db
    db = request.getfixturevalue("mariadb_db")
    empty_tables(db)
    return db


@contextlib.contextmanager
def started(request, prefix, count=1, database=None, env=None, env_file=None, **options):
    """`count` Stacks over one database, each with SITE_URL its own https address; yields
    (stacks, db) and stops them and removes their files after. `env` is added to the stacks'
    settings, `env_file` is the text of the .env file the web process reads, `options` go
    to Stack (processes, threads, nodes)."""
    need_stack_tools()
    tmp = tempfile.mkdtemp(prefix=prefix)
    stacks = []
    try:
        db = stack_db(request, tmp, database)
        settings = dict(SALTS, ENV_FILE=os.path.join(tmp, "none.env"), DB_DSN=db.dsn, DB_USER=db.user or "",
                        DB_PASSWORD=db.password or "", LOG_LEVEL="WARNING", **(env or {}))
        if env_file is not None:
            settings["ENV_FILE"] = os.path.join(tmp, "web.env")
            with open(settings["ENV_FILE"], "w") as f:
                f.write(env_file)
        for n in range(count):
            s = Stack(env=settings, tmp=tmp if count == 1 else os.path.join(tmp, f"stack{n}"), **options)
            os.makedirs(s.tmp, exist_ok=True)
            s.env["SITE_URL"] = s.base_url      # https: Secure session cookies
            s.start()
            stacks.append(s)
        yield stacks, db
    except StackError as e:
        pytest.fail(str(e))
    finally:
        for s in stacks:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def settled_request_count(s):
    """Requests uwsgi has served (it counts a request just after answering it)."""
    last = None
    while True:
        count = sum(w["requests"] for w in s.stats()["workers"])
        if count == last:
            return count
        last = count
        time.sleep(0.2)
