"""Shared pytest fixtures.

`db` runs a test on SQLite and on MariaDB (a fresh database per test session on the
local server; with CI=true an unreachable MariaDB fails the run instead of skipping).
Each test starts with empty tables. Chain fixtures (anvil) live in tests/chain.py.
"""
import contextlib
import os
import socket
import sys
import threading
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# Tests never read the developer's .env.
os.environ["ENV_FILE"] = os.path.join(ROOT, "tests", "no-such.env")

from lib import db as dbmod  # noqa: E402
from lib import env, migrate  # noqa: E402
from tests.client import Client  # noqa: E402

pytest_plugins = ["tests.chain", "tests.duties", "tests.schedule"]


class NoProcessDb:
    """The test process has no process-wide Db: the app gets its Db from make_app(db), lib
    code a test calls from the `db` fixture (dbmod.using). Without this, a stray get_db()
    (in a thread the test started, say) would open the developer's db/store.sqlite."""

    def __getattr__(self, name):
        raise AssertionError("the process-wide Db was used: pass the test's db on, build the app "
                             "with make_app(db) or call it inside dbmod.using(db)")


dbmod.set_db(NoProcessDb())

MYSQL_HOST = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("TEST_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("TEST_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("TEST_MYSQL_PASSWORD", "")
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what):
    """A missing real dependency fails under CI and skips elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: real services are required)")
    pytest.skip(what)


@pytest.fixture(autouse=True)
def cheap_password_hashing(request, monkeypatch):
    """Cheaper scrypt for the users tests create (each hash stores its parameters, so
    verification still works); tests/test_accounts.py hashes with the real ones."""
    if request.module.__name__ != "tests.test_accounts":
        from lib import users
        monkeypatch.setattr(users, "SCRYPT_N", 2 ** 10)


@pytest.fixture(scope="session")
def sqlite_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "test.sqlite"
    db = dbmod.Db(f"sqlite:{path}")
    migrate.init(db)
    return db


@contextlib.contextmanager
def scratch_mariadb(prefix):
    """A new, empty MariaDB database on the local server (its name unique to this process),
    dropped afterwards."""
    import pymysql
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER,
                                password=MYSQL_PASSWORD, connect_timeout=5, autocommit=True)
    except Exception as e:
        missing(f"MariaDB not reachable at {MYSQL_HOST}:{MYSQL_PORT}: {e}")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    db = dbmod.Db(f"mysql:host={MYSQL_HOST};port={MYSQL_PORT};dbname={name};charset=utf8mb4",
                  MYSQL_USER, MYSQL_PASSWORD)
    try:
        yield db
    finally:
        db.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(scope="session")
def mariadb_db():
    with scratch_mariadb("mkt_test") as db:
        migrate.init(db)
        yield db


@pytest.fixture(params=["sqlite", "mariadb"])
def bare_db(request, tmp_path):
    """An empty database without any schema, on each database in turn (upgrade tests
    build an older release's schema in it); lib code the test calls gets it from get_db()."""
    if request.param == "sqlite":
        db = dbmod.Db(f"sqlite:{tmp_path / 'bare.sqlite'}")
        with dbmod.using(db):
            yield db
        db.close()
        return
    with scratch_mariadb("mkt_bare") as db, dbmod.using(db):
        yield db


def empty_tables(db):
    tables = [t for t in db.tables() if t != "schema_migrations"]
    if db.is_sqlite:
        db.execute("PRAGMA foreign_keys=OFF")
        for t in tables:
            db.execute(f"DELETE FROM {t}")
        db.execute("PRAGMA foreign_keys=ON")
    else:
        db.execute("SET FOREIGN_KEY_CHECKS=0")
        for t in tables:
            db.execute(f"DELETE FROM {t}")
        db.execute("SET FOREIGN_KEY_CHECKS=1")
    migrate.seed_defaults(db)


@pytest.fixture(params=["sqlite", "mariadb"])
def db(request):
    """A Db with the whole schema and empty tables, on each database in turn. Lib code the
    test calls outside a request that asks get_db() gets it too (this thread only: a thread
    the test starts passes `db` on or goes through the app)."""
    the_db = request.getfixturevalue(f"{request.param}_db")
    empty_tables(the_db)
    with dbmod.using(the_db):
        yield the_db


@pytest.fixture
def settings():
    """The settings of the test's application (wsgi.make_app): keys the web process may
    read, over the environment. A module or a test overrides this fixture; lib code the test
    calls outside a request reads them too (`app_settings`)."""
    return {}


@pytest.fixture(autouse=True)
def app_settings(settings):
    with env.overriding(settings):
        yield


@pytest.fixture
def app(db, settings):
    """The application built over the test's database with the test's settings (wsgi.make_app)."""
    from wsgi import make_app
    return make_app(db, settings)


@pytest.fixture
def client(app):
    """A test client of `app`, through wsgiref.validate.validator."""
    return Client(app)


@pytest.fixture
def make_client(db, settings):
    """make_client(more) -> a Client of an app over the test's database with the test's
    settings and `more` over them (a None value unsets a key): for a test that changes
    a setting half-way, as an operator would."""
    from wsgi import make_app
    return lambda more=None, **kw: Client(make_app(db, dict(settings, **(more or {}))), **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_port():
    """The port live_server listens on (known before the app is built, for SITE_URL)."""
    return free_port()


@pytest.fixture
def live_server(app, live_port):
    """The app on a real threaded HTTP server (for concurrency tests); yields its base URL."""
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True
        request_queue_size = 256

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    port = live_port
    server = make_server("127.0.0.1", port, app, server_class=Server, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()
