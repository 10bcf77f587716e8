"""Backups: `make backup` and the documented restore.

On both databases: cron/backup.py writes a backup (SQLite online backup API, MariaDB
mariadb-dump --single-transaction), it is restored into a fresh database, and the web
app started on that database serves the store page with the backed-up data. Restore
never overwrites a database with tables, and an older backup comes back migrated.
"""
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid as uuidlib

import pytest

from lib import db as dbmod
from lib import migrate
from tests.conftest import MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, free_port
from tests.cron_support import make_order, make_store, make_user

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKUP = os.path.join(ROOT, "cron", "backup.py")


def child_env(db, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
    env.update({"ENV_FILE": os.path.join(ROOT, "tests", "no-such.env"), "DB_DSN": db.dsn,
                "DB_DRIVER": "sqlite" if db.is_sqlite else "mysql", "DB_USER": db.user or "",
                "DB_PASSWORD": db.password or "", "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


def run_backup(db, *args, **extra):
    return subprocess.run([sys.executable, BACKUP, *args], cwd=ROOT, env=child_env(db, **extra),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def new_database(db, tmp_path):
    """Makes Dbs for databases that do not exist yet, of the same kind as `db`; dropped after."""
    made = []

    def make(label):
        if db.is_sqlite:
            target = dbmod.Db("sqlite:%s" % (tmp_path / ("%s.sqlite" % label)))
        else:
            name = "mkt_h17_%s_%d_%s" % (label, os.getpid(), uuidlib.uuid4().hex[:6])
            target = dbmod.Db("mysql:host=%s;port=%d;dbname=%s;charset=utf8mb4" % (MYSQL_HOST, MYSQL_PORT, name),
                              MYSQL_USER, MYSQL_PASSWORD)
        made.append(target)
        return target

    yield make
    if db.is_sqlite:
        return
    import pymysql
    admin = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD,
                            autocommit=True)
    with admin.cursor() as cur:
        for target in made:
            target.close()
            cur.execute("DROP DATABASE IF EXISTS `%s`" % target.params["dbname"])
    admin.close()


@pytest.fixture
def fresh(new_database):
    return new_database("restored")


def create(target):
    """Create the (MariaDB) database itself, empty."""
    if target.is_sqlite:
        return
    import pymysql
    admin = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password=MYSQL_PASSWORD,
                            autocommit=True)
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" % target.params["dbname"])
    admin.close()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def serve(db):
    """`python wsgi.py` on `db`; (process, base url) once it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=child_env(db, PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = "http://127.0.0.1:%d" % port
    deadline = time.time() + 30
    while True:
        try:
            if get(url + "/")[0] == 200:
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError("server did not start: %s" % proc.stderr.read().decode()[-2000:])
        time.sleep(0.1)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


TABLES = ("users", "stores", "items", "packages", "transactions", "evm_transactions", "schema_migrations", "config")


def test_backup_restore_into_a_fresh_database_and_the_app_serves_it(db, fresh, tmp_path):
    vendor = make_user(db, "vendor", role="vendor")
    store = make_store(db, vendor, name="restoredshop")
    buyer = make_user(db, "buyer")
    make_order(db, buyer, store, 10 ** 18)
    db.execute("UPDATE items SET name = 'Backed-up lamp' WHERE store_uuid = ?", (store["uuid"],))
    counts = {t: db.value("SELECT COUNT(*) FROM %s" % t) for t in TABLES}

    out = run_backup(db, BACKUP_DIR=str(tmp_path / "backups"))
    assert out.returncode == 0, out.stderr
    path = out.stdout.strip()
    assert os.path.dirname(path) == str(tmp_path / "backups")
    assert path.endswith(".sqlite" if db.is_sqlite else ".sql") and os.path.getsize(path) > 0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [n for n in os.listdir(tmp_path / "backups") if n.endswith(".part")] == []
    if not db.is_sqlite:
        text = open(path, encoding="utf-8").read()
        assert "CREATE DATABASE" not in text and "restoredshop" in text

    restored = run_backup(db, "restore", path, "--to", fresh.dsn)
    assert restored.returncode == 0, restored.stderr
    assert "restored %s into %s" % (path, fresh.dsn) in restored.stdout
    assert {t: fresh.value("SELECT COUNT(*) FROM %s" % t) for t in TABLES} == counts
    fresh.close()

    proc, url = serve(fresh)
    try:
        status, body = get(url + "/store.php?uuid=" + store["uuid"])
        assert status == 200, body[:500]
        assert "restoredshop" in body and "Backed-up lamp" in body
        status, body = get(url + "/store.php?uuid=" + str(uuidlib.uuid4()))
        assert status == 404
    finally:
        stop(proc)


def test_restore_never_overwrites_a_database_with_tables(db, tmp_path):
    make_user(db, "keeper")
    out = run_backup(db, BACKUP_DIR=str(tmp_path / "b"))
    assert out.returncode == 0, out.stderr
    users = db.value("SELECT COUNT(*) FROM users")
    again = run_backup(db, "restore", out.stdout.strip())          # into DB_DSN itself
    assert again.returncode == 2
    assert "refusing to restore" in again.stderr and "Traceback" not in again.stderr
    assert db.value("SELECT COUNT(*) FROM users") == users


def test_restore_refuses_a_missing_file_and_the_other_engine(db, fresh, tmp_path):
    missing = run_backup(db, "restore", str(tmp_path / "nope.sql"), "--to", fresh.dsn)
    assert missing.returncode == 2 and "no backup file" in missing.stderr
    other = tmp_path / ("x.sql" if db.is_sqlite else "x.sqlite")
    other.write_text("-- not this engine\n")
    wrong = run_backup(db, "restore", str(other), "--to", fresh.dsn)
    assert wrong.returncode == 2 and "backup; the target database is" in wrong.stderr


def test_an_older_backup_is_migrated_on_restore(new_database, fresh, tmp_path, monkeypatch):
    """A backup of a database from before migration 013 comes back with 013 applied."""
    old = new_database("old")
    create(old)
    every = migrate.migration_files()
    monkeypatch.setattr(migrate, "migration_files", lambda: [(v, p) for v, p in every if v < 13])
    migrate.init(old)
    monkeypatch.undo()
    assert "cron_leases" not in old.tables()
    out = run_backup(old, BACKUP_DIR=str(tmp_path / "old"))
    assert out.returncode == 0, out.stderr
    restored = run_backup(old, "restore", out.stdout.strip(), "--to", fresh.dsn)
    assert restored.returncode == 0, restored.stderr
    assert "migrations applied: [13" in restored.stdout
    assert "cron_leases" in fresh.tables()
