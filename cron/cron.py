#!/usr/bin/env python3
"""The cron entry point: one run of every duty of SPEC section 6, in order.

    python cron/cron.py              one run (crontab: every minute)
    python cron/cron.py --loop 60    a run every 60 seconds (development; `make run`)

- Several hosts, one database: every duty runs under a database lease (cron/leases.py),
  per duty and, for the duties that work on a chain, per chain. A host runs a duty for
  a chain only while it holds that lease, so two hosts (or two processes on one host)
  never run the same duty for the same chain at once; a duty held elsewhere is skipped
  in this run. A host killed mid-run stops renewing its leases and another host takes
  them after CRON_LEASE_SECONDS (120). `expire` shares the `poll` lease (it decides on
  the balances the poll just read) and `deposits` the `payouts` lease (both sign from
  the gas station and follow the chain's payouts).
- `--chain ID` (repeatable) limits the chain duties to those chains, so per-chain
  workers run side by side; the duties not bound to a chain go to whichever process
  takes their lease.
- Each duty runs on its own; its writes are committed in short transactions (one
  per order / payout step), a failure is recorded and the next duty still runs.
- Every run prints one summary line and writes a `cron_runs` row (counts per task,
  duration, errors). The exit status is 1 when a duty recorded an error.

Settings (cron/env.py loads everything: process env > .env > SECRETS_FILE):
MNEMONIC, RPC_URL_<CHAIN_ID> / ALCHEMY_API_KEY, ALCHEMY_PRICES_URL,
COMMISSION_WALLET_<CHAIN_ID|NETWORK>, ALLOW_DEV_CHAIN, DB_*; tuning:
CRON_LEASE_SECONDS (120), CRON_RPC_TIMEOUT (10 s), CRON_RPC_RETRIES (3), CRON_RPC_BACKOFF
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
import json  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

from cron import deposits, payouts, prices, tasks  # noqa: E402
from cron import leases as leasemod  # noqa: E402
from cron import mail, webhooks  # noqa: E402
from lib.db import utc_now  # noqa: E402
from lib.env import flag  # noqa: E402

# (name, duty, lease name, per chain): the numbers are SPEC section 6's.
TASKS = [
    ("escrow_addresses", tasks.fill_escrow_addresses, "escrow_addresses", False),   # 1
    ("poll", tasks.poll_pending, "poll", True),                                     # 2
    ("expire", tasks.expire_pending, "poll", True),                                 # 3
    ("timeouts", tasks.timeouts, "timeouts", False),                                # 4
    ("payouts", payouts.run, "payouts", True),                                      # 5
    ("deposits", deposits.run, "payouts", True),                                    # 6
    ("reconcile", tasks.reconcile, "reconcile", True),                              # 7
    ("prices", prices.run, "prices", False),                                        # 8
    ("webhooks", webhooks.run, "webhooks", False),      # signed webhooks (cron/webhooks.py), after the duties
    ("mail", mail.run, "mail", False),                  # email outbox (cron/mail.py, SMTP_URL)
]


def served_chains(env, only=None):
    """The chains this process runs chain duties for: `only` (--chain), else every supported
    chain (the local development chain with ALLOW_DEV_CHAIN only)."""
    from lib.chains import allow_dev_from_env, supported_chain_ids
    return sorted(int(c) for c in only) if only else sorted(supported_chain_ids(allow_dev_from_env(env)))


def _say(message):
    print("%s %s" % (utc_now(), message), flush=True)


def run_once(env, db, log=_say, worker=None, leases=None, chains=None):
    """One run of every duty whose lease this process gets; returns
    {'run_id', 'ok', 'counts', 'errors', 'duration_ms', 'line', 'skipped'}.

    leases: the process's cron/leases.Leases (made here, and its renewal thread run for
    this run, when None); chains: the --chain ids (None: every chain).
    """
    t0 = time.monotonic()
    run_id = db.insert("cron_runs", {"started_at": utc_now(), "ok": 0})
    ctx = tasks.Context(env, db, worker=worker, log=log)
    own = leases is None
    if own:
        leases = leasemod.Leases(db, "%s:%s" % (ctx.worker, os.urandom(3).hex()), leasemod.lease_seconds(env),
                                 on_lost=lambda lost: ctx.error("leases", "lost %r to another host" % (lost,)))
    leases.start()
    served = served_chains(env, chains)
    skipped, duty_ms = [], {}
    try:
        for name, fn, lease, per_chain in TASKS:
            try:
                if per_chain:
                    got = leases.acquire_many(lease, served)
                    skipped += ["%s/%d" % (name, c) for c in served if c not in got]
                    if not got:
                        continue
                    ctx.chains = set(got)
                elif leases.acquire(lease):
                    ctx.chains = None
                else:
                    skipped.append(name)
                    continue
                started = time.monotonic()
                try:
                    fn(ctx)
                finally:
                    duty_ms[name] = int((time.monotonic() - started) * 1000)
                    leases.release(lease)
            except Exception as e:
                ctx.error(name, "%s: %s" % (type(e).__name__, e))
                if flag("CRON_TRACEBACKS", env):
                    traceback.print_exc()
    finally:
        ctx.chains = None
        leases.release_all()
        if own:
            leases.stop()
        ctx.close()
    ms = int((time.monotonic() - t0) * 1000)
    ok = not ctx.errors
    summary = dict(ctx.counts)
    summary["duty_ms"] = duty_ms          # what each duty this host ran took (/metrics shows it)
    if skipped:
        summary["leased_elsewhere"] = {"duties": len(skipped)}
    db.execute("UPDATE cron_runs SET finished_at = ?, duration_ms = ?, ok = ?, summary = ?, errors = ? "
               "WHERE id = ?", (utc_now(), ms, 1 if ok else 0, json.dumps(summary, sort_keys=True),
                                json.dumps(ctx.errors) if ctx.errors else None, run_id))
    parts = ["%s %s" % (task, ",".join("%s=%d" % kv for kv in sorted(c.items())))
             for task, c in sorted(ctx.counts.items())]
    line = "cron run %d: %s in %d ms%s%s%s" % (
        run_id, "ok" if ok else "FAILED (%d errors)" % len(ctx.errors), ms,
        "; " if parts else "", "; ".join(parts),
        "; leased elsewhere: %s" % ", ".join(skipped) if skipped else "")
    return {"run_id": run_id, "ok": ok, "counts": ctx.counts, "errors": ctx.errors, "duration_ms": ms,
            "line": line, "skipped": skipped}


def one_run(env, db, leases, chains=None):
    """0 ok, 1 a duty failed."""
    result = run_once(env, db, leases=leases, chains=chains)
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
    parser.add_argument("--chain", type=int, action="append", metavar="ID",
                        help="run the chain duties for this chain only (repeatable); default: every chain")
    args = parser.parse_args(argv)
    from lib.chains import CHAINS
    unknown = sorted(set(args.chain or ()) - set(CHAINS))
    if unknown:
        parser.error("--chain %s: not a supported chain (%s)" % (unknown[0], ", ".join(str(c) for c in sorted(CHAINS))))
    from cron import env as cron_env
    from lib import db as dbmod
    env = cron_env.load()
    db = dbmod.from_env()
    dbmod.set_db(db)
    try:
        leases = leasemod.Leases(db, "%s:%d" % (socket.gethostname(), os.getpid()),
                                 leasemod.lease_seconds(env))
    except ValueError as e:
        _say("cron run could not start: %s" % e)
        return 2
    if not args.loop:
        try:
            return one_run(env, db, leases, args.chain)
        except Exception as e:     # database unreachable and the like
            _say("cron run could not start: %s: %s" % (type(e).__name__, e))
            return 2
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    _say("cron loop: a run every %g s (Ctrl-C stops)" % args.loop)
    while not _state["stop"]:
        t0 = time.monotonic()
        try:
            one_run(env, db, leases, args.chain)
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
