#!/usr/bin/env python3
"""Cron cycle time with 10,000 PENDING escrows (SPEC section 10).

A fresh anvil and a fresh SQLite database with N orders (default 10,000). Timed:
  A. the first run: derives N escrow addresses, appends the first PENDING rows, polls;
  B. a steady run, balances read in JSON-RPC batches (CRON_RPC_BATCH_SIZE=100);
  C. the same run with one request per escrow (CRON_RPC_BATCH_SIZE=1);
  D. a batched run after 100 of the escrows were paid (100 orders become COMPLETED).
Goal: B under 20 s on the project machine. Prints the figures and the ratio C / B.

With --closed M, M closed orders (RELEASED 30 days ago, with their PENDING, COMPLETED and
RELEASED status rows and an escrow address each) are bulk-loaded first, as a marketplace
that has been running for a while has them, and the open-order selections of the cron
duties are timed on that database: the ones cron runs (closed_at IS NULL, through
idx_evm_transactions_open) next to the former whole-history queries (the view filtered
on current_status, and COMPLETED rows without a later row).

    .venv/bin/python bench/cron_poll.py [--orders 10000] [--closed 1000000]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid as uuidlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cron import cron as cronmain  # noqa: E402
from lib import db as dbmod, migrate  # noqa: E402
from lib.db import utc_now  # noqa: E402
from tests.chain import AnvilNode, fresh_address  # noqa: E402

MNEMONIC = "repair gaze vast hockey afraid senior sketch front name broken envelope penalty"


def setup(db, n):
    now = utc_now()
    with db.transaction():
        for name in ("buyer", "vendor"):
            db.insert("users", {"uuid": name, "username": name, "username_lower": name, "password_hash": "x",
                                "role": "customer", "created_at": now, "updated_at": now})
        db.insert("stores", {"uuid": "store", "storename": "store", "storename_lower": "store", "tier": "free",
                             "payout_address": fresh_address(), "vendorship_agreed_at": now, "created_at": now,
                             "updated_at": now})
        db.insert("items", {"uuid": "item", "store_uuid": "store", "name": "i", "created_at": now, "updated_at": now})
        db.insert("packages", {"uuid": "pkg", "item_uuid": "item", "name": "p", "price_usd": "10",
                               "created_at": now, "updated_at": now})
        for _ in range(n):
            u = str(uuidlib.uuid4())
            db.insert("transactions", {"uuid": u, "package_uuid": "pkg", "store_uuid": "store", "buyer_uuid": "buyer",
                                       "price_usd": "10", "created_at": now, "updated_at": now})
            db.insert("evm_transactions", {"transaction_uuid": u, "chain_id": 31337, "currency": "ETH",
                                           "decimals": 18, "required_amount": str(10 ** 16), "usd_rate": "1000",
                                           "refund_address": fresh_address(), "created_at": now})


def add_closed(path, m, chunk=50000):
    """M closed orders, bulk-loaded with executemany (one transaction, no fsync)."""
    import sqlite3
    when, closed = "2026-01-01 00:00:00", "2026-01-02 00:00:00"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for start in range(0, m, chunk):
        tx, evm, st = [], [], []
        for i in range(start, min(m, start + chunk)):
            u = str(uuidlib.UUID(int=i + 1, version=4))
            tx.append((u, "pkg", "store", "buyer", "10", when, closed))
            evm.append((u, 31337, "ETH", 18, str(10 ** 16), str(10 ** 16), "1000", "0xc1%038x" % i, when, closed))
            st += [(u, when, "0", "PENDING"), (u, when, str(10 ** 16), "COMPLETED"), (u, closed, str(10 ** 16), "RELEASED")]
        conn.executemany("INSERT INTO transactions (uuid, package_uuid, store_uuid, buyer_uuid, price_usd, "
                         "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", tx)
        conn.executemany("INSERT INTO evm_transactions (transaction_uuid, chain_id, currency, decimals, "
                         "required_amount, received_amount, usd_rate, escrow_address, created_at, closed_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", evm)
        conn.executemany("INSERT INTO transaction_statuses (transaction_uuid, time, amount, status) "
                         "VALUES (?, ?, ?, ?)", st)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


OLD_PENDING_SQL = ("SELECT v.transaction_uuid, v.chain_id, v.token_contract, v.decimals, v.required_amount, "
                   "v.received_amount, v.escrow_address, t.created_at FROM v_current_evm_transaction_statuses v "
                   "JOIN transactions t ON t.uuid = v.transaction_uuid WHERE v.current_status = 'PENDING' AND v.escrow_address IS NOT NULL")
OLD_COMPLETED_SQL = ("SELECT s.transaction_uuid, s.time AS updated_at FROM transaction_statuses s "
                     "WHERE s.status = 'COMPLETED' AND NOT EXISTS (SELECT 1 FROM transaction_statuses s2 "
                     "WHERE s2.transaction_uuid = s.transaction_uuid AND s2.id > s.id)")


def time_selections(db):
    """Seconds (and rows) of each open-order selection, now and as formerly written."""
    from cron import tasks
    for label, sql in (("PENDING (poll, expire), closed_at IS NULL", tasks.PENDING_SQL),
                       ("PENDING, former view query", OLD_PENDING_SQL),
                       ("COMPLETED (timeouts), closed_at IS NULL", tasks.COMPLETED_SQL),
                       ("COMPLETED, former 'no later row' query", OLD_COMPLETED_SQL)):
        t0 = time.monotonic()
        n = len(db.query(sql))
        print("  %-46s %7.3f s  %6d rows" % (label, time.monotonic() - t0, n))


def timed(label, env, db):
    t0 = time.monotonic()
    result = cronmain.run_once(env, db, log=lambda m: None)
    secs = time.monotonic() - t0
    assert result["ok"], result["errors"]
    print("%-58s %7.2f s   %s" % (label, secs, result["line"].split(": ", 1)[1]))
    return secs, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=10000)
    ap.add_argument("--closed", type=int, default=0, help="closed (RELEASED) orders loaded first")
    args = ap.parse_args()
    n = args.orders
    node = AnvilNode(log_path=os.path.join(tempfile.gettempdir(), "bench-anvil.log"))
    tmp = tempfile.mkdtemp(prefix="bench-cron-")
    try:
        db = dbmod.Db("sqlite:" + os.path.join(tmp, "bench.sqlite"))
        migrate.init(db)
        dbmod.set_db(db)
        t0 = time.monotonic()
        setup(db, n)
        print("setup: %d orders inserted in %.1f s (SQLite, anvil %s)" % (n, time.monotonic() - t0, node.url))
        if args.closed:
            t0 = time.monotonic()
            add_closed(os.path.join(tmp, "bench.sqlite"), args.closed)
            print("setup: %d closed orders (3 status rows each) loaded in %.1f s"
                  % (args.closed, time.monotonic() - t0))
        env = {"MNEMONIC": MNEMONIC, "RPC_URL_31337": node.url, "ALLOW_DEV_CHAIN": "1",
               "COMMISSION_WALLET_DEV": fresh_address()}
        timed("A. first run (derive %d addresses, poll)" % n, env, db)
        batched, _ = timed("B. steady run, batched (100 per request)", env, db)
        single, _ = timed("C. steady run, one request per escrow", dict(env, CRON_RPC_BATCH_SIZE="1"), db)
        escrows = [r["escrow_address"] for r in db.query("SELECT escrow_address FROM evm_transactions "
                                                          "WHERE closed_at IS NULL LIMIT 100")]
        for i, addr in enumerate(escrows):
            node.send_eth(1 + i % 9, addr, 10 ** 16)
        node.mine(3)
        _, result = timed("D. batched run, 100 escrows paid", env, db)
        assert result["counts"]["poll"]["completed"] == len(escrows)
        if args.closed:
            from cron import tasks
            saved = tasks.PENDING_SQL, tasks.COMPLETED_SQL
            tasks.PENDING_SQL, tasks.COMPLETED_SQL = OLD_PENDING_SQL, OLD_COMPLETED_SQL
            former, _ = timed("E. as B, with the former whole-history selections", env, db)
            tasks.PENDING_SQL, tasks.COMPLETED_SQL = saved
            again, _ = timed("F. as B, again (closed_at selections)", env, db)
        print("selections (%d open orders, %d closed):" % (n, args.closed))
        time_selections(db)
        print()
        print("cron cycle, %d PENDING escrows: batched %.2f s, one request per escrow %.2f s, ratio %.1fx"
              % (n, batched, single, single / batched))
        print("goal: under 20 s batched -> %s" % ("met" if batched < 20 else "NOT met"))
    finally:
        node.stop()
        shutil.rmtree(tmp, ignore_errors=True)      # with --closed 1000000 the file is ~1 GB


if __name__ == "__main__":
    main()
