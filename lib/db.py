"""The hand-written `Db` class: one API over SQLite and MariaDB.

- SQL uses `?` placeholders on both; for MariaDB they become `%s`.
- Rows come back as dicts.
- `with db.transaction():` commits or rolls back (nested blocks join the outer one).
  SQLite transactions start with BEGIN IMMEDIATE, so two writers queue on the
  busy timeout instead of failing later on a lock upgrade.
- One connection per thread; a MariaDB connection that went away is reopened.
- Dialect translation (documented in README): `AUTOINCREMENT` becomes
  `AUTO_INCREMENT` and CREATE TABLE gets InnoDB/utf8mb4_bin on MariaDB;
  ` FOR UPDATE` is dropped on SQLite (its write lock covers the whole database).

DSNs as in the original's .env: `sqlite:db/store.sqlite`,
`mysql:host=127.0.0.1;port=3306;dbname=store;charset=utf8mb4`.
"""
import contextlib
import contextvars
import datetime
import os
import re
import sqlite3
import threading

from lib import env

ROOT = env.ROOT


class DbError(Exception):
    pass


class IntegrityError(DbError):
    """A unique or foreign key constraint refused the write."""


TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # every time is stored as UTC text in this form


def utc_now():
    return format_time(datetime.datetime.now(datetime.timezone.utc))


def parse_time(stamp):
    """A stored time as an aware UTC datetime."""
    return datetime.datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)


def format_time(moment):
    return moment.strftime(TIME_FORMAT)


def shift_time(stamp, **delta):
    """A stored time moved by timedelta(**delta) (negative to go back), as stored text."""
    return format_time(parse_time(stamp) + datetime.timedelta(**delta))


def age_seconds(stamp):
    """Seconds from a stored time until now."""
    return (datetime.datetime.now(datetime.timezone.utc) - parse_time(stamp)).total_seconds()


def like_pattern(text):
    """A LIKE pattern matching `text` anywhere, literally and in lower case; use it with
    `LIKE ? ESCAPE '!'` (both databases)."""
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def parse_dsn(dsn):
    """'mysql:host=..;port=..;dbname=..' -> ('mysql', {...}); 'sqlite:path' -> ('sqlite', {'path':..})."""
    if ":" not in dsn:
        raise DbError(f"malformed DB_DSN {dsn!r}")
    kind, rest = dsn.split(":", 1)
    if kind == "sqlite":
        path = rest or ":memory:"
        if path != ":memory:" and not os.path.isabs(path):
            path = os.path.join(ROOT, path)
        return "sqlite", {"path": path}
    if kind in ("mysql", "mariadb"):
        params = {}
        for part in rest.split(";"):
            if part.strip():
                if "=" not in part:
                    raise DbError(f"malformed DB_DSN part {part!r}")
                k, v = part.split("=", 1)
                params[k.strip()] = v.strip()
        return "mysql", params
    raise DbError(f"unknown database driver {kind!r}")


SQLITE_MMAP_BYTES = 2 ** 31


class Db:
    def __init__(self, dsn, user=None, password=None, connect_timeout=10):
        self.driver, self.params = parse_dsn(dsn)
        self.connect_timeout = connect_timeout
        self.dsn = dsn
        self.user = user
        self.password = password or ""
        self._local = threading.local()
        if self.driver == "sqlite" and self.params["path"] != ":memory:":
            os.makedirs(os.path.dirname(self.params["path"]), exist_ok=True)

    @property
    def is_sqlite(self):
        return self.driver == "sqlite"

    # -- connections -----------------------------------------------------
    def _connect(self):
        if self.is_sqlite:
            conn = sqlite3.connect(self.params["path"], timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Pages read through a memory map of the file rather than one read() each:
            # at a million orders a page of them touches thousands of scattered pages.
            conn.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            return conn
        import pymysql
        p = self.params
        return pymysql.connect(
            host=p.get("host", "127.0.0.1"), port=int(p.get("port", 3306)),
            user=self.user or "root", password=self.password, database=p.get("dbname"),
            charset=p.get("charset", "utf8mb4"), autocommit=True,
            cursorclass=pymysql.cursors.DictCursor, connect_timeout=self.connect_timeout)

    def connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.depth = 0
        return conn

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- SQL -------------------------------------------------------------
    def translate(self, sql):
        if self.is_sqlite:
            return sql.replace(" FOR UPDATE", "")
        return sql.replace("%", "%%").replace("?", "%s")

    def concat(self, *parts):
        """SQL joining the text of `parts` (expressions): SQLite's || is MariaDB's OR."""
        return " || ".join(parts) if self.is_sqlite else "CONCAT(" + ", ".join(parts) + ")"

    def _run(self, sql, params=(), retry=True):
        conn = self.connection()
        try:
            if self.is_sqlite:
                cur = conn.execute(self.translate(sql), tuple(params))
            else:
                cur = conn.cursor()
                cur.execute(self.translate(sql), tuple(params))
            return cur
        except sqlite3.IntegrityError as e:
            raise IntegrityError(str(e)) from e
        except Exception as e:
            import pymysql
            if isinstance(e, pymysql.err.IntegrityError):
                raise IntegrityError(str(e)) from e
            gone = isinstance(e, pymysql.err.InterfaceError) or (
                isinstance(e, pymysql.err.OperationalError) and e.args and e.args[0] in (2006, 2013, 2055))
            if gone and retry and self._local.depth == 0:
                # MariaDB dropped the connection (wait_timeout, restart): reopen once.
                # Only outside a transaction, where nothing half-done can be lost.
                self.close()
                return self._run(sql, params, retry=False)
            raise

    def query(self, sql, params=()):
        """All rows as a list of dicts."""
        cur = self._run(sql, params)
        rows = cur.fetchall()
        if not self.is_sqlite:
            return list(rows)             # DictCursor: already a new dict per row
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in rows]   # 3x faster than dict(sqlite3.Row)

    def one(self, sql, params=()):
        """The first row as a dict, or None."""
        cur = self._run(sql, params)
        row = cur.fetchone()
        cur.fetchall()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row)) if self.is_sqlite else row

    def value(self, sql, params=(), default=None):
        row = self.one(sql, params)
        if row is None:
            return default
        return next(iter(row.values()))

    def execute(self, sql, params=()):
        """Run a write; return the number of rows it changed."""
        return self._run(sql, params).rowcount

    def insert(self, table, values):
        """INSERT one row from a dict; return its id."""
        cols = list(values)
        sql = "INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(cols), ", ".join("?" * len(cols)))
        return self._run(sql, [values[c] for c in cols]).lastrowid

    def upsert(self, table, keys, values):
        """Insert a row or update `values` where the unique `keys` already exist."""
        cols = list(keys) + list(values)
        params = [keys[c] for c in keys] + [values[c] for c in values]
        sql = "INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(cols), ", ".join("?" * len(cols)))
        if self.is_sqlite:
            sets = ", ".join(f"{c} = excluded.{c}" for c in values)
            sql += " ON CONFLICT(%s) DO UPDATE SET %s" % (", ".join(keys), sets)
        else:
            sets = ", ".join(f"{c} = VALUES({c})" for c in values)
            sql += " ON DUPLICATE KEY UPDATE " + sets
        self._run(sql, params)

    @contextlib.contextmanager
    def transaction(self):
        """Commit on success, roll back on any exception; nested blocks join the outer one."""
        conn = self.connection()
        if self._local.depth > 0:
            self._local.depth += 1
            try:
                yield self
            finally:
                self._local.depth -= 1
            return
        if self.is_sqlite:
            conn.execute("BEGIN IMMEDIATE")
        else:
            conn.begin()
        self._local.depth = 1
        try:
            yield self
        except BaseException:
            self._local.depth = 0
            conn.rollback()
            raise
        self._local.depth = 0
        conn.commit()

    @property
    def in_transaction(self):
        return getattr(self._local, "depth", 0) > 0

    # -- schema ----------------------------------------------------------
    def schema_statements(self, text):
        """Split schema text into statements and apply the dialect translation."""
        text = re.sub(r"--[^\n]*", "", text)
        out = []
        for stmt in text.split(";"):
            stmt = stmt.strip()
            if not stmt:
                continue
            if not self.is_sqlite:
                stmt = stmt.replace("AUTOINCREMENT", "AUTO_INCREMENT")
                if stmt.upper().startswith("CREATE TABLE"):
                    stmt += " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
            out.append(stmt)
        return out

    def run_script(self, text):
        for stmt in self.schema_statements(text):
            self._run(stmt)

    def tables(self):
        if self.is_sqlite:
            rows = self.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        else:
            rows = self.query("SELECT table_name AS name FROM information_schema.tables "
                              "WHERE table_schema = DATABASE() AND table_type='BASE TABLE'")
        return sorted(r["name"] for r in rows)


_db = None
_db_lock = threading.Lock()


def from_env():
    """A new Db from DB_DSN / DB_USER / DB_PASSWORD (DB_DRIVER picks the default DSN)."""
    driver = env.get("DB_DRIVER", "sqlite")
    default = "sqlite:db/store.sqlite" if driver == "sqlite" else \
        "mysql:host=127.0.0.1;port=3306;dbname=store;charset=utf8mb4"
    return Db(env.get("DB_DSN") or default, env.get("DB_USER"), env.get("DB_PASSWORD"))


# The Db of the application serving the current request (wsgi.make_app), if it was given one.
_app_db = contextvars.ContextVar("app_db", default=None)


@contextlib.contextmanager
def using(db):
    """get_db() is `db` inside the block (this thread or task only); None leaves it alone."""
    if db is None:
        yield
        return
    token = _app_db.set(db)
    try:
        yield
    finally:
        _app_db.reset(token)


def get_db():
    """The Db of the application serving this request, else the process-wide one
    (connections are per thread inside it)."""
    app_db = _app_db.get()
    if app_db is not None:
        return app_db
    global _db
    if _db is None:
        with _db_lock:
            if _db is None:
                _db = from_env()
    return _db


def set_db(db):
    """Replace the process-wide Db (tests and cron use this)."""
    global _db
    _db = db
