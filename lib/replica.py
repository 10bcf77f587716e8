"""Read replica routing: which database a read-only request reads.

With DB_REPLICA_DSN set, the public catalog pages and listings (scripts that call
`read_db(request)` instead of `get_db()`) read a MariaDB replica. Everything else -
writes, sessions, accounts, orders - uses the primary (`lib.db.get_db()`), and so do
these pages when:

- the client wrote recently: every non-GET request sets a short-lived cookie
  (`READ_PRIMARY_COOKIE`, DB_REPLICA_STICKY_SECONDS, default 10) and reads carrying it
  go to the primary, so a vendor sees the item they just saved (read your writes);
  API clients keep no cookies, so a request with an API key always reads the primary;
- the replica lags: `SHOW SLAVE STATUS` says Seconds_Behind_Master is above
  DB_REPLICA_MAX_LAG (seconds, default 5) or NULL (replication stopped or broken);
- the replica cannot be reached or its status cannot be read; a statement that fails
  because the replica went away since the last check runs on the primary instead.

The replica's state is checked at most every DB_REPLICA_CHECK_SECONDS (default 2) per
process, so a scrape of pages costs one status query per interval, not per request.
The replica user needs SELECT and the REPLICA MONITOR (or REPLICATION CLIENT) privilege.
"""
import logging
import threading
import time

from lib import env
from lib.db import Db, get_db

log = logging.getLogger("replica")

READ_PRIMARY_COOKIE = "read_primary"


def _int_setting(name, default):
    raw = (env.get(name) or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else default


def sticky_seconds():
    return _int_setting("DB_REPLICA_STICKY_SECONDS", 10)


class ReplicaDb(Db):
    """The replica's Db: a statement that fails because the replica went away between two
    health checks is run on the primary instead (and the replica is skipped from then on
    until a check finds it healthy), so a page never fails for the replica's sake."""

    def __init__(self, replica, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.replica = replica

    def _run(self, sql, params=(), retry=True):
        import pymysql
        try:
            return super()._run(sql, params, retry)
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as e:
            if self.in_transaction:
                raise
            self.close()
            self.replica.mark_failed(e)
            return get_db()._run(sql, params)


class Replica:
    """A replica Db and its last known health (per process; threads share it)."""

    def __init__(self, dsn, user=None, password=None, max_lag=5, check_seconds=2):
        # A dead replica must not hold a page for connect_timeout's default 10 s.
        self.db = ReplicaDb(self, dsn, user, password, connect_timeout=2)
        # The health check's own connection: its failures must not fall back.
        self.check_db = Db(dsn, user, password, connect_timeout=2)
        self.max_lag = max_lag
        self.check_seconds = check_seconds
        self._checked_at = None
        self._healthy = False
        self._lock = threading.Lock()

    def lag(self):
        """Seconds_Behind_Master, or None when replication is not running."""
        row = self.check_db.one("SHOW SLAVE STATUS")
        if not row:
            return None
        value = row.get("Seconds_Behind_Master")
        return None if value is None else int(value)

    def mark_failed(self, error):
        with self._lock:
            self._healthy = False
            self._checked_at = time.monotonic()
        log.warning("replica not used: %s: %s", type(error).__name__, error)

    def healthy(self):
        now = time.monotonic()
        with self._lock:
            if self._checked_at is not None and now - self._checked_at < self.check_seconds:
                return self._healthy
            try:
                lag = self.lag()
                self._healthy = lag is not None and lag <= self.max_lag
                if not self._healthy:
                    log.warning("replica not used: %s", "replication stopped" if lag is None
                                else "%d s behind (DB_REPLICA_MAX_LAG %d)" % (lag, self.max_lag))
            except Exception as e:
                self.check_db.close()
                self._healthy = False
                log.warning("replica not used: %s: %s", type(e).__name__, e)
            self._checked_at = now
            return self._healthy


_replica = None
_replica_dsn = None
_replica_lock = threading.Lock()


def replica():
    """The process's Replica from DB_REPLICA_*, or None when DB_REPLICA_DSN is empty."""
    global _replica, _replica_dsn
    dsn = (env.get("DB_REPLICA_DSN") or "").strip()
    if not dsn:
        return None
    with _replica_lock:
        if _replica is None or _replica_dsn != dsn:
            _replica = Replica(dsn, env.get("DB_REPLICA_USER") or env.get("DB_USER"),
                               env.get("DB_REPLICA_PASSWORD") or env.get("DB_PASSWORD"),
                               max_lag=_int_setting("DB_REPLICA_MAX_LAG", 5),
                               check_seconds=_int_setting("DB_REPLICA_CHECK_SECONDS", 2))
            _replica_dsn = dsn
        return _replica


def wrote_recently(request):
    return request.cookies.get(READ_PRIMARY_COOKIE) == "1"


def _api_key(request):
    """API clients keep no cookies: a request with a key always reads the primary, so a
    client sees what it just wrote."""
    return bool(request.headers.get("authorization") or request.headers.get("x-api-key")
                or "token" in request.query)


def read_db(request):
    """The Db a read-only page that needs no fresh data reads: the replica when it is
    set, healthy and the client did not write in the last DB_REPLICA_STICKY_SECONDS."""
    if request.method not in ("GET", "HEAD") or wrote_recently(request) or _api_key(request):
        return get_db()
    db = replica_or_primary()
    request.read_replica = db is not get_db()
    return db


def replica_or_primary():
    """The replica when it is set and healthy, else the primary: what a read that nothing
    ties to the primary uses (read_db; the guests' catalog cache checks its entries there)."""
    rep = replica()
    if rep is None or not rep.healthy():
        return get_db()
    return rep.db


def mark_write(request, response):
    """After a non-GET request: send the read-your-writes cookie (only when a replica
    is configured; without one there is nothing to stick to)."""
    if request is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if not (env.get("DB_REPLICA_DSN") or "").strip():
        return
    response.set_cookie(READ_PRIMARY_COOKIE, "1", max_age=sticky_seconds(),
                        secure=(env.get("SITE_URL") or "").startswith("https:"))
