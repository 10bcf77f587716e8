#!/usr/bin/env python3
"""Backups of the marketplace database, and their restore into a fresh database.

    python cron/backup.py                        back up DB_DSN into BACKUP_DIR; prints the file
    python cron/backup.py restore FILE           restore FILE into DB_DSN (must be new or empty)
    python cron/backup.py restore FILE --to DSN  ... into another database

- SQLite: the online backup API of sqlite3 (a consistent copy while the app and cron
  keep writing), checked with PRAGMA integrity_check; the file is
  `store-YYYYMMDD-HHMMSS.sqlite`.
- MariaDB: `mariadb-dump --single-transaction` (one consistent snapshot, no table
  locks; mysqldump where mariadb-dump is not installed), without CREATE DATABASE so
  it restores into a database of any name; the file is `store-YYYYMMDD-HHMMSS.sql`.
  The password goes to the tools in their environment (MYSQL_PWD), never on a
  command line.

A file is written as `.part` and renamed when complete, so a backup that dies leaves
no file that looks whole. Restore refuses a database that already has tables (it
never overwrites), loads the file, then applies the migrations newer than the backup
(lib/migrate.py), so an old backup comes back at the current schema.

Settings: DB_DSN, DB_USER, DB_PASSWORD (the database, as for the app); BACKUP_DIR
(default db/backups, relative to the repository). Exit status 0 done, 2 refused or failed.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

import argparse  # noqa: E402
import datetime  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402

from lib import db as dbmod  # noqa: E402
from lib import migrate  # noqa: E402


class BackupError(Exception):
    pass


def backup_dir(env):
    path = env.get("BACKUP_DIR") or os.path.join("db", "backups")
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def _stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")


def _tool(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise BackupError("none of %s is installed (Debian: apt-get install mariadb-client)" % ", ".join(names))


def _mysql_args(db):
    p = db.params
    return ["--host=%s" % p.get("host", "127.0.0.1"), "--port=%s" % p.get("port", "3306"),
            "--user=%s" % (db.user or "root"), "--default-character-set=%s" % p.get("charset", "utf8mb4")]


def _mysql_env(db):
    env = dict(os.environ)
    env["MYSQL_PWD"] = db.password or ""
    return env


def _unique(directory, suffix):
    base = os.path.join(directory, "store-%s" % _stamp())
    path, n = base + suffix, 1
    while os.path.exists(path):
        n += 1
        path = "%s-%d%s" % (base, n, suffix)
    return path


def backup(db, directory):
    """Write a backup of `db` into `directory`; returns its path."""
    os.makedirs(directory, exist_ok=True)
    if db.is_sqlite:
        path = _unique(directory, ".sqlite")
        part = path + ".part"
        src = sqlite3.connect(db.params["path"])
        dst = sqlite3.connect(part)
        try:
            src.backup(dst)
            ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
            src.close()
        if ok != "ok":
            os.unlink(part)
            raise BackupError("the copy failed its integrity check: %s" % ok)
    else:
        path = _unique(directory, ".sql")
        part = path + ".part"
        dump = _tool("mariadb-dump", "mysqldump")
        with open(part, "wb") as out:
            proc = subprocess.run([dump, *_mysql_args(db), "--single-transaction", "--quick", "--hex-blob",
                                   "--routines", "--triggers", "--no-tablespaces", db.params["dbname"]],
                                  stdout=out, stderr=subprocess.PIPE, env=_mysql_env(db))
        if proc.returncode != 0:
            os.unlink(part)
            raise BackupError("%s failed: %s" % (os.path.basename(dump), proc.stderr.decode("utf-8", "replace").strip()))
    os.chmod(part, 0o600)
    os.replace(part, path)
    return path


def restore(path, db):
    """Load the backup at `path` into the fresh database `db`, then migrate it; returns
    the migrations applied after the load."""
    if not os.path.isfile(path):
        raise BackupError("no backup file %s" % path)
    sqlite_file = path.endswith(".sqlite")
    if sqlite_file != db.is_sqlite:
        raise BackupError("%s is a %s backup; the target database is %s"
                          % (path, "SQLite" if sqlite_file else "MariaDB", "SQLite" if db.is_sqlite else "MariaDB"))
    if db.is_sqlite:
        target = db.params["path"]
        if os.path.exists(target) and os.path.getsize(target) > 0:
            raise BackupError("refusing to restore over %s: it exists and is not empty" % target)
        src = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    else:
        _create_mariadb_database(db)
        if db.tables():
            raise BackupError("refusing to restore into %s: it already has tables" % db.params["dbname"])
        client = _tool("mariadb", "mysql")
        with open(path, "rb") as f:
            proc = subprocess.run([client, *_mysql_args(db), db.params["dbname"]], stdin=f,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_mysql_env(db))
        if proc.returncode != 0:
            raise BackupError("%s failed: %s" % (os.path.basename(client), proc.stderr.decode("utf-8", "replace").strip()))
        db.close()
    return migrate.init(db)


def _create_mariadb_database(db):
    import pymysql
    p = db.params
    name = p.get("dbname")
    if not name or "`" in name:
        raise BackupError("the target DSN names no usable database (dbname=...)")
    conn = pymysql.connect(host=p.get("host", "127.0.0.1"), port=int(p.get("port", 3306)), user=db.user or "root",
                           password=db.password or "", connect_timeout=10, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" % name)
    finally:
        conn.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Back up the marketplace database, or restore a backup.")
    sub = parser.add_subparsers(dest="command")
    r = sub.add_parser("restore", help="restore a backup into a new (or empty) database")
    r.add_argument("file")
    r.add_argument("--to", metavar="DSN", help="the target database (default: DB_DSN)")
    args = parser.parse_args(argv)
    from cron import env as cron_env
    try:
        env = cron_env.load()
        db = dbmod.from_env()
        if args.command == "restore":
            target = dbmod.Db(args.to, db.user, db.password) if args.to else db
            applied = restore(os.path.abspath(args.file), target)
            print("restored %s into %s%s" % (args.file, target.dsn,
                                            "; migrations applied: %s" % applied if applied else ""), flush=True)
        else:
            print(backup(db, backup_dir(env)), flush=True)
    except BackupError as e:
        print("backup: %s" % e, file=sys.stderr, flush=True)
        return 2
    except Exception as e:          # the database unreachable, a disk full and the like
        print("backup: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
