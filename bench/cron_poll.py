#!/usr/bin/env python3
"""Cron cycle time with 10,000 PENDING escrows (SPEC section 10).

A fresh anvil and a fresh SQLite database with N orders (default 10,000). Timed:
  A. the first run: derives N escrow addresses, appends the first PENDING rows, polls;
  B. a steady run, balances read in JSON-RPC batches (CRON_RPC_BATCH_SIZE=100);
  C. the same run with one request per escrow (CRON_RPC_BATCH_SIZE=1);
  D. a batched run after 100 of the escrows were paid (100 orders become COMPLETED).
Goal: B under 20 s on the project machine. Prints the figures and the ratio C / B.

    .venv/bin/python bench/cron_poll.py [--orders 10000]
"""
import argparse
import os
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
        env = {"MNEMONIC": MNEMONIC, "RPC_URL_31337": node.url, "ALLOW_DEV_CHAIN": "1",
               "COMMISSION_WALLET_DEV": fresh_address(), "CRON_LOCK_FILE": os.path.join(tmp, "cron.lock")}
        timed("A. first run (derive %d addresses, poll)" % n, env, db)
        batched, _ = timed("B. steady run, batched (100 per request)", env, db)
        single, _ = timed("C. steady run, one request per escrow", dict(env, CRON_RPC_BATCH_SIZE="1"), db)
        escrows = [r["escrow_address"] for r in db.query("SELECT escrow_address FROM evm_transactions LIMIT 100")]
        for i, addr in enumerate(escrows):
            node.send_eth(1 + i % 9, addr, 10 ** 16)
        node.mine(3)
        _, result = timed("D. batched run, 100 escrows paid", env, db)
        assert result["counts"]["poll"]["completed"] == len(escrows)
        print()
        print("cron cycle, %d PENDING escrows: batched %.2f s, one request per escrow %.2f s, ratio %.1fx"
              % (n, batched, single, single / batched))
        print("goal: under 20 s batched -> %s" % ("met" if batched < 20 else "NOT met"))
    finally:
        node.stop()


if __name__ == "__main__":
    main()
