#!/usr/bin/env python3
"""Webhook delivery: sends the outbox that lib/webhooks.emit() fills.

    run(ctx)                           the last duty of every cron run (cron/cron.py TASKS)
    python cron/webhooks.py            one delivery pass on its own
    python cron/webhooks.py --loop 2   a worker beside cron: a pass every 2 seconds

Each delivery is a POST of the event's stored JSON body with
    Content-Type: application/json
    User-Agent: Marketplace-Webhooks/1.0
    X-Marketplace-Signature: t=UNIX_TIME,v1=HEX(HMAC-SHA256(secret, "UNIX_TIME." + body))
    X-Marketplace-Event: <type>, X-Marketplace-Event-Id: <event uuid>, X-Marketplace-Delivery: <id>
Outcome: 2xx delivered; network errors, timeouts, 408, 429 and 5xx are retried after
WEBHOOK_BACKOFF_SECONDS (10,60,600: the last one repeats) up to WEBHOOK_MAX_ATTEMPTS (8)
tries, then the delivery is `failing`; any other answer (3xx, other 4xx) and a URL that now
resolves to a refused address fail at once, not retried. An endpoint with
WEBHOOK_FAILING_AFTER (8) failed attempts in a row is flagged `failing` (it still gets
new events; a success makes it active again). Every attempt is logged (webhook_attempts).

Safety
- Claims are atomic: `UPDATE ... SET next_attempt_at = now + lease WHERE id = ? AND
  status = 'pending' AND next_attempt_at <= now`; only the worker whose UPDATE changed the
  row sends it, so two cron processes never send one delivery at the same time. The
  lease (WEBHOOK_LEASE_SECONDS, 60, longer than a send can take) is also the crash
  recovery: a worker killed after its claim leaves the row pending, and once the lease
  runs out the next pass sends it again. At least once: receivers dedupe by event id.
- Per endpoint, the events of one order go out in order: a delivery waits while an
  earlier one of the same order to the same endpoint is still pending (retrying).
- The host is resolved and checked again before every attempt (lib/webhooks.check_url,
  WEBHOOK_ALLOW_PRIVATE) and the connection goes to the very address checked (TLS still
  verifies the certificate for the host name). No redirects are followed.
- Bounded: WEBHOOK_TIMEOUT (5 s) for connect and for the whole answer, 64 KiB of the
  answer read; a pass stops after WEBHOOK_RUN_SECONDS (30) and WEBHOOK_MAX_PER_RUN (500)
  deliveries; an endpoint that failed in this pass is not tried again in the same pass.
Test-only: CRON_CRASH_AT=webhook_after_claim|webhook_after_send kills the process with SIGKILL.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
    sys.path.insert(0, ROOT)

import datetime  # noqa: E402
import http.client  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import time  # noqa: E402
import uuid as uuidlib  # noqa: E402

from lib import webhooks as hooks  # noqa: E402
from lib.db import utc_now  # noqa: E402

USER_AGENT = "Marketplace-Webhooks/1.0"
MAX_RESPONSE = 64 * 1024


class Settings:
    def __init__(self, env):
        env = env or {}
        raw = str(env.get("WEBHOOK_BACKOFF_SECONDS") or "10,60,600")
        self.backoff = [max(0, int(float(x))) for x in raw.split(",") if x.strip()] or [10, 60, 600]
        self.max_attempts = max(1, int(env.get("WEBHOOK_MAX_ATTEMPTS") or 8))
        self.failing_after = max(1, int(env.get("WEBHOOK_FAILING_AFTER") or 8))
        self.timeout = float(env.get("WEBHOOK_TIMEOUT") or 5)
        self.lease = max(0, int(float(env.get("WEBHOOK_LEASE_SECONDS") or 60)))
        self.run_seconds = float(env.get("WEBHOOK_RUN_SECONDS") or 30)
        self.max_per_run = int(env.get("WEBHOOK_MAX_PER_RUN") or 500)
        self.private_ok = hooks.allow_private(env)
        self.crash_at = env.get("CRON_CRASH_AT")

    def wait(self, attempts):
        return self.backoff[min(attempts - 1, len(self.backoff) - 1)]


def _later(seconds):
    return (datetime.datetime.now(datetime.timezone.utc)
            + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def _crash(settings, point):
    if settings.crash_at == point:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


# -- sending ---------------------------------------------------------------------------

class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to `ip`, with Host: the URL's host."""

    def __init__(self, host, port, ip, timeout):
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self):
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to `ip`, verifying the certificate (and SNI) for the URL's host."""

    def __init__(self, host, port, ip, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._ip = ip

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def send(url, body, secret, headers, settings):
    """POST once. Returns (status code or None, error or None, outcome), outcome one of
    'delivered', 'retry', 'failed'."""
    try:
        scheme, host, port, path, addresses = hooks.check_url(url, settings.private_ok)
    except hooks.UrlRefused as e:
        retry = "cannot be resolved" in str(e)
        return None, str(e), "retry" if retry else "failed"
    ip = addresses[0]
    cls = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    deadline = time.monotonic() + settings.timeout
    conn = cls(host, port, ip, settings.timeout)
    try:
        now = int(time.time())
        all_headers = dict(headers)
        all_headers.update({"Content-Type": "application/json", "User-Agent": USER_AGENT,
                            hooks.SIGNATURE_HEADER: hooks.signature(secret, now, body),
                            "Content-Length": str(len(body))})
        conn.request("POST", path, body=body, headers=all_headers)
        resp = conn.getresponse()
        code = resp.status
        got = 0
        while got < MAX_RESPONSE and time.monotonic() < deadline:
            chunk = resp.read1(min(16384, MAX_RESPONSE - got)) if hasattr(resp, "read1") else resp.read(
                MAX_RESPONSE - got)
            if not chunk:
                break
            got += len(chunk)
    except (OSError, http.client.HTTPException) as e:
        name = "timeout" if isinstance(e, (socket.timeout, TimeoutError)) else type(e).__name__
        return None, ("%s: %s" % (name, e))[:255], "retry"
    finally:
        conn.close()
    if 200 <= code < 300:
        return code, None, "delivered"
    if code in (408, 429) or code >= 500:
        return code, "HTTP %d" % code, "retry"
    return code, "HTTP %d (not retried)" % code, "failed"


# -- the pass ----------------------------------------------------------------------------

CANDIDATES = (
    "SELECT d.id, d.webhook_id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
    "WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.deleted_at IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id "
    "AND e.transaction_uuid = d.transaction_uuid AND e.status = 'pending' AND e.id < d.id) "
    "ORDER BY d.id LIMIT ?")


def claim(db, delivery_id, token, lease):
    """Take one due delivery for this worker (True) or learn someone else has (False)."""
    now = utc_now()
    return db.execute("UPDATE webhook_deliveries SET next_attempt_at = ?, claimed_by = ?, updated_at = ? "
                      "WHERE id = ? AND status = 'pending' AND next_attempt_at <= ?",
                      (_later(lease), token, now, delivery_id, now)) == 1


def record(db, delivery_id, token, started, ms, code, error, outcome, settings, worker):
    """Log the attempt and move the delivery and its endpoint on (one transaction)."""
    now = utc_now()
    with db.transaction():
        d = db.one("SELECT * FROM webhook_deliveries WHERE id = ? FOR UPDATE", (delivery_id,))
        mine = d is not None and d["status"] == "pending" and d["claimed_by"] == token
        attempts = int(d["attempts"]) + 1 if mine else int(d["attempts"] if d else 0)
        if mine and outcome == "retry" and attempts >= settings.max_attempts:
            outcome = "failed"
        db.insert("webhook_attempts", {"delivery_id": delivery_id, "attempt": attempts, "started_at": started,
                                       "duration_ms": ms, "status_code": code, "error": error, "outcome": outcome,
                                       "worker": worker[:80]})
        if not mine:
            return outcome          # redelivered or reclaimed meanwhile: the newer claim decides
        if outcome == "delivered":
            db.execute("UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, delivered_at = ?, "
                       "next_attempt_at = NULL, claimed_by = NULL, last_status_code = ?, last_error = NULL, "
                       "updated_at = ? WHERE id = ?", (attempts, now, code, now, delivery_id))
            db.execute("UPDATE webhooks SET status = 'active', consecutive_failures = 0, last_success_at = ?, "
                       "updated_at = ? WHERE id = ?", (now, now, d["webhook_id"]))
            return outcome
        if outcome == "retry":
            db.execute("UPDATE webhook_deliveries SET attempts = ?, next_attempt_at = ?, claimed_by = NULL, "
                       "last_status_code = ?, last_error = ?, updated_at = ? WHERE id = ?",
                       (attempts, _later(settings.wait(attempts)), code, error, now, delivery_id))
        else:
            db.execute("UPDATE webhook_deliveries SET status = 'failing', attempts = ?, next_attempt_at = NULL, "
                       "claimed_by = NULL, last_status_code = ?, last_error = ?, updated_at = ? WHERE id = ?",
                       (attempts, code, error, now, delivery_id))
        # status first: MariaDB evaluates SET assignments left to right
        db.execute("UPDATE webhooks SET status = CASE WHEN consecutive_failures + 1 >= ? THEN 'failing' "
                   "ELSE status END, consecutive_failures = consecutive_failures + 1, last_failure_at = ?, "
                   "updated_at = ? WHERE id = ?", (settings.failing_after, now, now, d["webhook_id"]))
    return outcome


def deliver(env, db, worker=None, count=None, log=None):
    """One pass over the due deliveries; returns {outcome: n}."""
    settings = Settings(env)
    worker = worker or "%s:%d" % (socket.gethostname(), os.getpid())
    counts = {}
    count = count or (lambda key, n=1: None)
    stop_at = time.monotonic() + settings.run_seconds
    skip = set()            # endpoints that failed in this pass
    done = 0
    while done < settings.max_per_run and time.monotonic() < stop_at:
        rows = [r for r in db.query(CANDIDATES, (utc_now(), 50)) if r["webhook_id"] not in skip]
        if not rows:
            break
        progressed = False
        for r in rows:
            if r["webhook_id"] in skip or done >= settings.max_per_run or time.monotonic() >= stop_at:
                continue
            token = "%s:%s" % (worker[:60], uuidlib.uuid4().hex[:12])
            if not claim(db, r["id"], token, settings.lease):
                continue
            progressed = True
            done += 1
            _crash(settings, "webhook_after_claim")
            row = db.one("SELECT d.id, ev.uuid AS event_uuid, ev.type, ev.body, w.url, w.secret "
                         "FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id "
                         "JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?", (r["id"],))
            started, t0 = utc_now(), time.monotonic()
            code, error, outcome = send(row["url"], row["body"].encode("utf-8"), row["secret"],
                                        {"X-Marketplace-Event": row["type"], "X-Marketplace-Event-Id": row["event_uuid"],
                                         "X-Marketplace-Delivery": str(row["id"])}, settings)
            _crash(settings, "webhook_after_send")
            outcome = record(db, r["id"], token, started, int((time.monotonic() - t0) * 1000), code, error, outcome,
                             settings, worker)
            counts[outcome] = counts.get(outcome, 0) + 1
            count(outcome)
            if outcome != "delivered":
                skip.add(r["webhook_id"])
                if log:
                    log("webhook delivery %d (%s) to endpoint %d: %s" % (r["id"], row["type"], r["webhook_id"],
                                                                        error or outcome))
        if not progressed:
            break
    return counts


def run(ctx):
    """The cron duty: one delivery pass (counts under 'webhooks')."""
    deliver(ctx.env, ctx.db, worker=ctx.worker, count=lambda key, n=1: ctx.count("webhooks", key, n), log=ctx.log)


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(description="Deliver the marketplace's webhooks.")
    parser.add_argument("--loop", type=float, metavar="SECONDS", help="a pass every SECONDS (a worker)")
    args = parser.parse_args(argv)
    from cron import env as cron_env
    from lib import db as dbmod
    env = cron_env.load()
    db = dbmod.from_env()
    dbmod.set_db(db)
    say = lambda m: print("%s %s" % (utc_now(), m), flush=True)  # noqa: E731
    stop = {"now": False}

    def on_term(signum, frame):
        stop["now"] = True
    if args.loop:
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
    while True:
        counts = deliver(env, db, log=say)
        if counts or not args.loop:
            say("webhooks: %s" % (", ".join("%s=%d" % kv for kv in sorted(counts.items())) or "nothing due"))
        if not args.loop or stop["now"]:
            return 0
        time.sleep(args.loop)
        if stop["now"]:
            return 0


if __name__ == "__main__":
    sys.exit(main())
