#!/usr/bin/env python3
"""The cron entry point: one run of every duty of SPEC section 6, in order.

    python cron/cron.py              one run (crontab: every minute)
    python cron/cron.py --loop 60    a run every 60 seconds (development; `make run`)

- One instance at a time: an exclusive flock on CRON_LOCK_FILE (default
  db/cron.lock). A run that finds another still running prints a message and
  exits 0 at once. Across machines, intents are claimed atomically in the
  database, so two hosts never execute the same payout.
- Each duty runs on its own; its writes are committed in short transactions (one
  per order / payout step), a failure is recorded and the next duty still runs.
- Every run prints one summary line and writes a `cron_runs` row (counts per task,
  duration, errors). The exit status is 1 when a duty recorded an error.

Settings (cron/env.py loads everything: process env > .env > SECRETS_FILE):
MNEMONIC, RPC_URL_<CHAIN_ID> / ALCHEMY_API_KEY, ALCHEMY_PRICES_URL,
COMMISSION_WALLET_<CHAIN_ID|NETWORK>, ALLOW_DEV_CHAIN, DB_*; tuning:
CRON_LOCK_FILE, CRON_RPC_TIMEOUT (10 s), CRON_RPC_RETRIES (3), CRON_RPC_BACKOFF
(0.5 s), CRON_RPC_BATCH_SIZE (100), GAS_PRICE_MARGIN_PERCENT (25, legacy chains),
MAX_FEE_GWEI_<CHAIN_ID> (cron/fees.py), CRON_REPLACE_AFTER_BLOCKS (3),
CRON_RETRY_BACKOFF_SECONDS (60,300,1800), GAS_STATION_MIN_BALANCE_<CHAIN_ID> (0.05),
CRON_INTENTS_PER_RUN (200); webhooks: WEBHOOK_* (cron/webhooks.py).
Test-only: CRON_CRASH_AT=after_sign|after_commit|after_gas|after_broadcast|after_replace|
before_status kills the process with SIGKILL at that point of a payout.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Run as a script, Python puts cron/ first on sys.path, where this very file would
# shadow the `cron` package: import from the repository root instead.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

import argparse  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

from cron import deposits, payouts, prices, tasks  # noqa: E402
from cron import mail, webhooks  # noqa: E402
from lib.db import utc_now  # noqa: E402
from lib.env import flag  # noqa: E402

TASKS = [
    ("escrow_addresses", tasks.fill_escrow_addresses),   # 1
    ("poll", tasks.poll_pending),                        # 2
    ("expire", tasks.expire_pending),                    # 3
    ("timeouts", tasks.timeouts),                        # 4
    ("payouts", payouts.run),                            # 5
    ("deposits", deposits.run),                          # 6
    ("reconcile", tasks.reconcile),                      # 7
    ("prices", prices.run),                              # 8
    ("webhooks", webhooks.run),                          # signed webhooks (cron/webhooks.py), after the duties
    ("mail", mail.run),                                  # email outbox (cron/mail.py, SMTP_URL)
]


def _say(message):
    print("%s %s" % (utc_now(), message), flush=True)


def run_once(env, db, log=_say, worker=None):
    """One run of every duty; returns {'run_id', 'ok', 'counts', 'errors', 'duration_ms', 'line'}."""
    t0 = time.monotonic()
    run_id = db.insert("cron_runs", {"started_at": utc_now(), "ok": 0})
    ctx = tasks.Context(env, db, worker=worker, log=log)
    try:
        for name, fn in TASKS:
            try:
                fn(ctx)
            except Exception as e:
                ctx.error(name, "%s: %s" % (type(e).__name__, e))
                if flag("CRON_TRACEBACKS", env):
                    traceback.print_exc()
    finally:
        ctx.close()
    ms = int((time.monotonic() - t0) * 1000)
    ok = not ctx.errors
    db.execute("UPDATE cron_runs SET finished_at = ?, duration_ms = ?, ok = ?, summary = ?, errors = ? "
               "WHERE id = ?", (utc_now(), ms, 1 if ok else 0, json.dumps(ctx.counts, sort_keys=True),
                                json.dumps(ctx.errors) if ctx.errors else None, run_id))
    parts = ["%s %s" % (task, ",".join("%s=%d" % kv for kv in sorted(c.items())))
             for task, c in sorted(ctx.counts.items())]
    line = "cron run %d: %s in %d ms%s%s" % (
        run_id, "ok" if ok else "FAILED (%d errors)" % len(ctx.errors), ms,
        "; " if parts else "", "; ".join(parts))
    return {"run_id": run_id, "ok": ok, "counts": ctx.counts, "errors": ctx.errors, "duration_ms": ms,
            "line": line}


def acquire_lock(path):
    """An exclusive, non-blocking flock; the file descriptor, or None if another run holds it."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, b"%d\n" % os.getpid())
    return fd


def release_lock(fd):
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def lock_path(env):
    path = env.get("CRON_LOCK_FILE") or os.path.join("db", "cron.lock")
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def one_locked_run(env, db):
    """0 ok, 1 a duty failed; 0 with a message when another run holds the lock."""
    fd = acquire_lock(lock_path(env))
    if fd is None:
        _say("another cron run is in progress (lock %s); exiting" % lock_path(env))
        return 0
    try:
        result = run_once(env, db)
    finally:
        release_lock(fd)
    _say(result["line"])
    for err in result["errors"]:
        print("  error: %s" % err, file=sys.stderr, flush=True)
    return 0 if result["ok"] else 1


_state = {"sleeping": False, "stop": False}


def _on_term(signum, frame):
    # In a sleep between runs: stop now. During a run: finish it, then stop.
    _state["stop"] = True
    if _state["sleeping"]:
        raise SystemExit(0)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the marketplace's cron duties (SPEC section 6).")
    parser.add_argument("--loop", type=float, metavar="SECONDS",
                        help="repeat every SECONDS (development); default: one run")
    args = parser.parse_args(argv)
    from cron import env as cron_env
    from lib import db as dbmod
    env = cron_env.load()
    db = dbmod.from_env()
    dbmod.set_db(db)
    if not args.loop:
        try:
            return one_locked_run(env, db)
        except Exception as e:     # database unreachable and the like
            _say("cron run could not start: %s: %s" % (type(e).__name__, e))
            return 2
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    _say("cron loop: a run every %g s (Ctrl-C stops)" % args.loop)
    while not _state["stop"]:
        t0 = time.monotonic()
        try:
            one_locked_run(env, db)
        except Exception as e:
            _say("cron run could not start: %s: %s" % (type(e).__name__, e))
        if _state["stop"]:
            break
        _state["sleeping"] = True
        try:
            time.sleep(max(0.0, args.loop - (time.monotonic() - t0)))
        finally:
            _state["sleeping"] = False
    return 0


if __name__ == "__main__":
    sys.exit(main())
