"""Database leases: which cron host runs which duty for which chain (table cron_leases).

A lease is one row per (duty, chain_id); chain_id 0 names the duties not bound to a
chain. Its holder owns it while `expires_at` lies in the future, measured on the
database's clock (so hosts with drifting clocks still agree). A holder renews its
leases while it works (a thread, every third of CRON_LEASE_SECONDS); a host killed in
the middle of a duty simply stops renewing, and another host takes the lease once it
has expired.

Every change is one conditional statement whose row count decides; nothing is read
first and written after:

- acquire: UPDATE the rows of a duty's chains that have expired (a new random token
  each time), INSERT the rows not there yet; an unexpired row makes the UPDATE pass it
  by and the INSERT fail on the primary key, so of two hosts exactly one gets it.
- renew and release: UPDATE ... WHERE token = ours. A host whose lease expired and was
  taken by another changes nothing and learns it lost the lease.

A holder that finds at renewal that it lost a lease ends its process at once (exit 3):
another host may be running that duty now, and the payout engine is built to be killed
at any point (SPEC section 7), so stopping is always safe, carrying on is not.
"""
import os
import secrets
import sys
import threading

from lib.db import IntegrityError

DEFAULT_SECONDS = 120
GLOBAL = 0          # chain_id of the duties that are not bound to a chain
LOST_EXIT = 3


def lease_seconds(env):
    """CRON_LEASE_SECONDS: how long a lease outlives its holder's last renewal (>= 3)."""
    text = (env.get("CRON_LEASE_SECONDS") or "").strip()
    if not text:
        return DEFAULT_SECONDS
    try:
        value = int(text)
    except ValueError:
        raise ValueError("CRON_LEASE_SECONDS must be a whole number of seconds, not %r" % text)
    if value < 3:
        raise ValueError("CRON_LEASE_SECONDS must be at least 3, not %d" % value)
    return value


def _now_sql(db):
    """The database clock in whole seconds since the epoch."""
    return "CAST(strftime('%s', 'now') AS INTEGER)" if db.is_sqlite else "UNIX_TIMESTAMP()"


def db_now(db):
    return int(db.value("SELECT %s AS now" % _now_sql(db)))


class Leases:
    """The leases one cron process holds; renewed by a thread while any is held."""

    def __init__(self, db, holder, seconds=DEFAULT_SECONDS, on_lost=None):
        self.db = db
        self.holder = holder[:128]
        self.seconds = int(seconds)
        self.held = {}                      # (duty, chain_id) -> token
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self.on_lost = on_lost or _exit_lost

    # -- taking and giving back --------------------------------------------------------
    def acquire(self, duty, chain_id=GLOBAL):
        """True when this process now holds (duty, chain_id) until renewed or released."""
        return bool(self.acquire_many(duty, [chain_id]))

    def acquire_many(self, duty, chain_ids):
        """The chains of `chain_ids` whose `duty` lease this process now holds.

        One UPDATE takes every expired lease among them under a new token (its row count
        decides); the rows carrying that token afterwards are ours. A chain without a row
        yet is taken by an INSERT, which the primary key refuses when another host
        inserted it first.
        """
        chain_ids = sorted({int(c) for c in chain_ids})
        if not chain_ids:
            return []
        token = secrets.token_hex(16)
        now = _now_sql(self.db)
        marks = ", ".join("?" * len(chain_ids))
        n = self.db.execute(
            "UPDATE cron_leases SET holder = ?, token = ?, acquired_at = {now}, expires_at = {now} + ?, "
            "renewals = 0 WHERE duty = ? AND chain_id IN ({marks}) AND expires_at <= {now}".format(now=now, marks=marks),
            (self.holder, token, self.seconds, duty, *chain_ids))
        got = set(chain_ids) if n == len(chain_ids) else set()
        if n != len(chain_ids):
            rows = self.db.query("SELECT chain_id, token FROM cron_leases WHERE duty = ? AND chain_id IN (%s)" % marks,
                                 (duty, *chain_ids))
            got = {int(r["chain_id"]) for r in rows if r["token"] == token}
            for chain_id in sorted(set(chain_ids) - {int(r["chain_id"]) for r in rows}):
                try:
                    self.db.execute(
                        "INSERT INTO cron_leases (duty, chain_id, holder, token, acquired_at, expires_at, renewals) "
                        "VALUES (?, ?, ?, ?, {now}, {now} + ?, 0)".format(now=now),
                        (duty, chain_id, self.holder, token, self.seconds))
                    got.add(chain_id)
                except IntegrityError:
                    pass                # another host inserted it first
        with self._lock:
            for chain_id in got:
                self.held[(duty, chain_id)] = token
        return sorted(got)

    def release(self, duty, chain_id=None):
        """Give up the duty's lease of one chain, or of every chain held (chain_id None), now.
        The lease expires at once; the row stays to show its last holder."""
        with self._lock:                # not while the renewal thread is renewing it
            keys = [k for k in self.held if k[0] == duty and (chain_id is None or k[1] == int(chain_id))]
            tokens = {self.held.pop(k) for k in keys}
            for token in sorted(tokens):
                if chain_id is None:
                    self.db.execute("UPDATE cron_leases SET expires_at = 0 WHERE duty = ? AND token = ?",
                                    (duty, token))
                else:
                    self.db.execute("UPDATE cron_leases SET expires_at = 0 WHERE duty = ? AND chain_id = ? "
                                    "AND token = ?", (duty, int(chain_id), token))

    def release_all(self):
        for duty in sorted({k[0] for k in self.held}):
            self.release(duty)

    def renew(self):
        """Push every held lease's expiry forward (one UPDATE per token); returns the
        (duty, chain_id) found lost."""
        now = _now_sql(self.db)
        lost = []
        with self._lock:                # a lease released meanwhile is not "lost"
            by_token = {}
            for key, token in self.held.items():
                by_token.setdefault(token, []).append(key)
            for token, keys in sorted(by_token.items()):
                n = self.db.execute(
                    "UPDATE cron_leases SET expires_at = {now} + ?, renewals = renewals + 1 "
                    "WHERE token = ? AND expires_at > {now}".format(now=now), (self.seconds, token))
                if n != len(keys):
                    alive = {(r["duty"], int(r["chain_id"])) for r in self.db.query(
                        "SELECT duty, chain_id FROM cron_leases WHERE token = ? AND expires_at > {now}".format(now=now),
                        (token,))}
                    lost += [k for k in keys if k not in alive]
        return sorted(lost)

    # -- the renewal thread ---------------------------------------------------------
    def start(self):
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._renew_loop, name="cron-leases", daemon=True)
            self._thread.start()

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _renew_loop(self):
        interval = max(1.0, self.seconds / 3.0)
        try:
            while not self._stop.wait(interval):
                try:
                    lost = self.renew()
                except Exception as e:      # database unreachable: try again; the expiry decides
                    print("cron leases: renewal failed: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
                    continue
                if lost:
                    self.on_lost(lost)
        finally:
            self.db.close()


def _exit_lost(lost):
    print("cron leases: lost %s to another host; stopping at once"
          % ", ".join("%s/chain %d" % k for k in lost), file=sys.stderr, flush=True)
    os._exit(LOST_EXIT)


def holders(db):
    """The leases now held: [{duty, chain_id, holder, seconds_left}] (for operators)."""
    now = db_now(db)
    rows = db.query("SELECT duty, chain_id, holder, expires_at FROM cron_leases WHERE expires_at > ? "
                    "ORDER BY duty, chain_id", (now,))
    return [{"duty": r["duty"], "chain_id": int(r["chain_id"]), "holder": r["holder"],
             "seconds_left": int(r["expires_at"]) - now} for r in rows]
