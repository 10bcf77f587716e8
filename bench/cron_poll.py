#!/usr/bin/env python3
"""Cron cycle time with 100,000 open escrows (SPEC section 10).

A fresh anvil and a fresh SQLite database with N PENDING orders (default 100,000; half of
them paid in ETH, half in an ERC-20 test token, --token-share, which is an active accepted
token), bulk-loaded with their escrow addresses and first PENDING rows. Each line is one whole cron run (every duty),
timed, with what it asked of the provider: HTTP requests and JSON-RPC calls (a hosted
provider bills every call, including each item of a batch), by method.
  A. the first run: no scan yet, so every ERC-20 escrow is read with balanceOf, and the
     Transfer log scan starts at the confirmed block;
  B. a steady run: ETH by batched eth_getBalance, ERC-20 by eth_getLogs since the last
     scanned block, balanceOf only for escrows a log names;
  C. the same run as before the log scan (token_log_scans emptied first): one balanceOf
     per ERC-20 escrow, batched, and reconcile's balanceOf of the token in every ETH
     escrow, as every run did;
  D. a steady run after 100 ETH and 100 token escrows were paid (200 orders COMPLETED).
Goal: B at most 10 s on the project machine. Prints the figures and the ratio C / B.
--unbatched adds the steady run with one request per escrow (CRON_RPC_BATCH_SIZE=1).
--token-share 0 is an ETH-only marketplace (no accepted token), as the former bench.

With --closed M, M closed orders (RELEASED 30 days ago, with their PENDING, COMPLETED and
RELEASED status rows and an escrow address each) are bulk-loaded first, as a marketplace
that has been running for a while has them, and the open-order selections of the cron
duties are timed on that database: the ones cron runs (closed_at IS NULL, through
idx_evm_transactions_open) next to the former whole-history queries (the view filtered
on current_status, and COMPLETED rows without a later row).

    .venv/bin/python bench/cron_poll.py [--orders 100000] [--token-share 0.5] [--closed 1000000]
"""
import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid as uuidlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cron import cron as cronmain  # noqa: E402
from cron import tasks  # noqa: E402
from lib import db as dbmod, migrate  # noqa: E402
from lib.db import utc_now  # noqa: E402
from tests.chain import AnvilNode, fresh_address  # noqa: E402

MNEMONIC = "repair gaze vast hockey afraid senior sketch front name broken envelope penalty"
TOKEN_DECIMALS = 6


def setup(db, path, n, token, token_share, chunk=50000):
    """N PENDING orders with escrow addresses, bulk-loaded with executemany in one transaction.

    The escrow addresses are random (the poll needs no keys); the first n x token_share
    orders are in `token`, the others in ETH. Returns [(uuid, address, token or '')].
    """
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
        if token_share > 0:
            db.insert("accepted_tokens", {"chain_id": 31337, "symbol": "TUSD", "contract_address": token,
                                          "decimals": TOKEN_DECIMALS, "status": "active", "manual_usd_price": "1",
                                          "created_at": now, "updated_at": now})
    n_token = int(n * token_share)
    orders = []
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for start in range(0, n, chunk):
        tx, evm, st = [], [], []
        for i in range(start, min(n, start + chunk)):
            u = str(uuidlib.UUID(int=(1 << 100) + i, version=4))
            addr = "0x" + os.urandom(20).hex()
            asset = token if i < n_token else ""
            orders.append((u, addr, asset))
            tx.append((u, "pkg", "store", "buyer", "10", now, now))
            if asset:
                evm.append((u, 31337, "TUSD", asset, TOKEN_DECIMALS, str(10 * 10 ** TOKEN_DECIMALS), "1",
                            fresh_address(), addr, i, now))
            else:
                evm.append((u, 31337, "ETH", "", 18, str(10 ** 16), "1000", fresh_address(), addr, i, now))
            st.append((u, now, "0", "PENDING", "escrow address assigned"))
        conn.executemany("INSERT INTO transactions (uuid, package_uuid, store_uuid, buyer_uuid, price_usd, "
                         "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", tx)
        conn.executemany("INSERT INTO evm_transactions (transaction_uuid, chain_id, currency, token_contract, "
                         "decimals, required_amount, usd_rate, refund_address, escrow_address, derivation_index, "
                         "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", evm)
        conn.executemany("INSERT INTO transaction_statuses (transaction_uuid, time, amount, status, comment) "
                         "VALUES (?, ?, ?, ?, ?)", st)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return orders


def add_closed(path, m, chunk=50000):
    """M closed orders, bulk-loaded with executemany (one transaction, no fsync)."""
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


def _day_ago():
    import datetime
    return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")


def time_selections(db):
    """Seconds (and rows) of each open-order selection, now and as formerly written."""
    from cron import tasks
    for label, sql, args in (("PENDING (poll), closed_at IS NULL", tasks.PENDING_SQL, ()),
                             ("PENDING, former view query", OLD_PENDING_SQL, ()),
                             ("PENDING created a day ago (expire)", tasks.EXPIRE_SQL, (_day_ago(),)),
                             ("COMPLETED (timeouts), closed_at IS NULL", tasks.COMPLETED_SQL, ()),
                             ("COMPLETED, former 'no later row' query", OLD_COMPLETED_SQL, ())):
        t0 = time.monotonic()
        n = len(db.query(sql, args))
        print("  %-46s %7.3f s  %6d rows" % (label, time.monotonic() - t0, n))


class RecordingContext(tasks.Context):
    """tasks.Context that keeps the last run's instance, for its provider usage."""
    last = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordingContext.last = self


def cpu_seconds(pid):
    """User + system CPU time of a process (Linux /proc), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(label, env, db, node):
    t0, cpu0, anvil0 = time.monotonic(), time.process_time(), cpu_seconds(node.proc.pid)
    result = cronmain.run_once(env, db, log=lambda m: None)
    secs, cpu = time.monotonic() - t0, time.process_time() - cpu0
    anvil_cpu = cpu_seconds(node.proc.pid) - anvil0
    assert result["ok"], result["errors"]
    usage = RecordingContext.last.provider_usage()
    print("%-48s %6.2f s (CPU: cron %5.2f s, anvil %5.2f s)  %5d requests %7d calls" % (
        label, secs, cpu, anvil_cpu, usage["requests"], usage["calls"]))
    print("    by method: %s" % ", ".join("%s %d" % kv for kv in sorted(usage["by_method"].items())))
    print("    %s" % result["line"].split(": ", 1)[1].split(" in ", 1)[1])
    return secs, usage, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=100000)
    ap.add_argument("--token-share", type=float, default=0.5, help="share of the orders paid in the ERC-20 token")
    ap.add_argument("--closed", type=int, default=0, help="closed (RELEASED) orders loaded first")
    ap.add_argument("--unbatched", action="store_true", help="also time a run with one request per escrow")
    args = ap.parse_args()
    n = args.orders
    tasks.Context = RecordingContext
    node = AnvilNode(log_path=os.path.join(tempfile.gettempdir(), "bench-anvil.log"))
    tmp = tempfile.mkdtemp(prefix="bench-cron-")
    try:
        path = os.path.join(tmp, "bench.sqlite")
        db = dbmod.Db("sqlite:" + path)
        migrate.init(db)
        dbmod.set_db(db)
        token = node.deploy_token(symbol="TUSD", decimals=TOKEN_DECIMALS, supply=10 ** 18)
        node.mine(3)
        t0 = time.monotonic()
        orders = setup(db, path, n, token, args.token_share)
        n_token = sum(1 for o in orders if o[2])
        print("setup: %d open orders (%d ETH, %d TUSD) bulk-loaded in %.1f s (SQLite, anvil %s)"
              % (n, n - n_token, n_token, time.monotonic() - t0, node.url))
        if args.closed:
            t0 = time.monotonic()
            add_closed(path, args.closed)
            print("setup: %d closed orders (3 status rows each) loaded in %.1f s"
                  % (args.closed, time.monotonic() - t0))
        env = {"MNEMONIC": MNEMONIC, "RPC_URL_31337": node.url, "ALLOW_DEV_CHAIN": "1",
               "COMMISSION_WALLET_DEV": fresh_address()}
        timed("A. first run (every balance read, scan starts)", env, db, node)
        node.mine(3)
        new, new_usage, _ = timed("B. steady run, ERC-20 by Transfer logs", env, db, node)
        node.mine(3)
        db.execute("DELETE FROM token_log_scans")
        old, old_usage, _ = timed("C. steady run as before (balanceOf per escrow)", env, db, node)
        if args.unbatched:
            node.mine(3)
            timed("   steady run, one request per escrow", dict(env, CRON_RPC_BATCH_SIZE="1"), db, node)
        eth = [o for o in orders if not o[2]][:100]
        tok = [o for o in orders if o[2]][:100]
        for i, (_u, addr, _t) in enumerate(eth):
            node.send_eth(1 + i % 9, addr, 10 ** 16)
        for _u, addr, asset in tok:
            node.token_transfer(asset, 0, addr, 10 * 10 ** TOKEN_DECIMALS)
        node.mine(3)
        _, _, result = timed("D. steady run, %d escrows paid" % (len(eth) + len(tok)), env, db, node)
        assert result["counts"]["poll"]["completed"] == len(eth) + len(tok), result["counts"]
        if args.closed:
            saved = tasks.PENDING_SQL, tasks.COMPLETED_SQL
            tasks.PENDING_SQL, tasks.COMPLETED_SQL = OLD_PENDING_SQL, OLD_COMPLETED_SQL
            timed("E. as B, with the former whole-history selections", env, db, node)
            tasks.PENDING_SQL, tasks.COMPLETED_SQL = saved
            timed("F. as B, again (closed_at selections)", env, db, node)
        print("selections (%d open orders, %d closed):" % (n, args.closed))
        time_selections(db)
        print()
        print("cron cycle, %d open escrows (%d ETH, %d ERC-20): by Transfer logs %.2f s, %d requests, %d calls; "
              "balanceOf per escrow (before) %.2f s, %d requests, %d calls; ratio %.1fx time, %.1fx calls"
              % (n, n - n_token, n_token, new, new_usage["requests"], new_usage["calls"], old,
                 old_usage["requests"], old_usage["calls"], old / new, old_usage["calls"] / max(new_usage["calls"], 1)))
        print("ERC-20 calls per steady run: balanceOf (eth_call) %d before, %d with the log scan (eth_getLogs %d)"
              % (old_usage["by_method"].get("eth_call", 0), new_usage["by_method"].get("eth_call", 0),
                 new_usage["by_method"].get("eth_getLogs", 0)))
        print("goal: at most 10 s -> %s (load average %.1f on %d cores)"
              % ("met" if new <= 10 else "NOT met", os.getloadavg()[0], os.cpu_count()))
    finally:
        node.stop()
        shutil.rmtree(tmp, ignore_errors=True)      # with --closed 1000000 the file is ~1 GB


if __name__ == "__main__":
    main()
