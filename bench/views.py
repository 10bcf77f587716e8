"""Order listing at scale (SPEC sections 5 and 10): 1,000,000 orders, 5,000,000 status rows.

    .venv/bin/python bench/views.py [--orders N] [--rebuild] [--runs R]
    .venv/bin/python bench/views.py --dsn 'mysql:host=127.0.0.1;port=3306;dbname=bench_views'

Builds (once; cached as db/bench-views.sqlite and reused while it holds the requested
number of orders) a SQLite database from the real schema.sql: a few stores and buyers,
N orders with their evm_transactions and one shipping row each, and 5 status rows per
order (PENDING, PENDING (partial payment), COMPLETED, FROZEN, RELEASED). The bulk load uses
executemany inside one transaction. With --dsn the same rows go into a MariaDB database
(multi-row INSERTs; the database is kept and reused the same way).

Then it times, with the very functions the API calls (lib/orders.py, lib/status_machine.py):
  - current status of one order          status_machine.current_status + the view row
  - newest 50 orders of one buyer        orders.list_orders (what GET /api/transactions.php runs)
  - newest 50 orders of one vendor       orders.list_orders for a store owner
  - one order with history               orders.get_order (GET /api/transactions.php?uuid=)
and prints the median and 95th percentile in milliseconds over R runs on random orders
and users, plus the database's plan for the queries (exit status 1 if a full scan appears).
"""
import argparse
import os
import random
import sqlite3
import statistics
import sys
import time
import uuid as uuidlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib import db as dbmod  # noqa: E402
from lib import migrate, orders, status_machine as sm  # noqa: E402

PATH = os.path.join(ROOT, "db", "bench-views.sqlite")
STORES = 10
BUYERS = 2000
STATUS_PATH = ("PENDING", "PENDING", "COMPLETED", "FROZEN", "RELEASED")
T0 = "2026-01-01 00:00:00"


def stamp(i):
    """A UTC time string that grows with i (one order per second from T0)."""
    s = i
    days, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    month, day = divmod(days, 28)
    return f"{2026 + month // 12}-{month % 12 + 1:02d}-{day + 1:02d} {h:02d}:{m:02d}:{s:02d}"


def uid(rng):
    return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))


def generate(n_orders, chunk=50000):
    """Yield (table, columns, rows) batches: the fixed rows first, then orders by chunk."""
    rng = random.Random(42)
    users, stores, members, items, packages = [], [], [], [], []
    for i in range(STORES):
        u, s = uid(rng), uid(rng)
        users.append((u, f"vendor{i}", f"vendor{i}", "x", "vendor", T0, T0))
        stores.append((s, f"store{i}", f"store{i}", T0, T0, T0))
        members.append((s, u, "owner", T0))
    buyers = [uid(rng) for _ in range(BUYERS)]
    users += [(b, f"buyer{i}", f"buyer{i}", "x", "customer", T0, T0) for i, b in enumerate(buyers)]
    for s in stores:
        item, package = uid(rng), uid(rng)
        items.append((item, s[0], "thing", T0, T0))
        packages.append((package, item, "one", "100", T0, T0))
    yield "users", "uuid, username, username_lower, password_hash, role, created_at, updated_at", users
    yield "stores", "uuid, storename, storename_lower, vendorship_agreed_at, created_at, updated_at", stores
    yield "store_users", "store_uuid, user_uuid, role, created_at", members
    yield "items", "uuid, store_uuid, name, created_at, updated_at", items
    yield "packages", "uuid, item_uuid, name, price_usd, created_at, updated_at", packages
    for start in range(0, n_orders, chunk):
        tx, evm, st, ship = [], [], [], []
        for i in range(start, min(n_orders, start + chunk)):
            o = uid(rng)
            k = rng.randrange(STORES)
            when = stamp(i)
            tx.append((o, "thing - one", packages[k][0], stores[k][0], buyers[rng.randrange(BUYERS)], "100",
                       when, when))
            evm.append((o, 1, "ETH", "", 18, "50000000000000000", "2000", when, when))   # closed: RELEASED
            for j, status in enumerate(STATUS_PATH):
                st.append((o, when, "50000000000000000" if j >= 2 else ("0" if j == 0 else "20000000000000000"),
                           status))
            ship.append((o, when, "DISPATCH PENDING"))
        yield ("transactions", "uuid, description, package_uuid, store_uuid, buyer_uuid, price_usd, created_at, "
               "updated_at", tx)
        yield ("evm_transactions", "transaction_uuid, chain_id, currency, token_contract, decimals, "
               "required_amount, usd_rate, created_at, closed_at", evm)
        yield "transaction_statuses", "transaction_uuid, time, amount, status", st
        yield "shipping_statuses", "transaction_uuid, time, status", ship
        yield "progress", None, min(n_orders, start + chunk)


def build_sqlite(path, n_orders):
    tmp = path + ".building"
    for p in (tmp, tmp + "-wal", tmp + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    schema_db = dbmod.Db(f"sqlite:{tmp}")
    migrate.init(schema_db)                           # the real schema, views and indexes
    schema_db.close()
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    started = time.time()
    conn.execute("BEGIN")
    for table, cols, rows in generate(n_orders):
        if table == "progress":
            print(f"\r  {rows:,} orders ({time.time() - started:.0f} s)", end="", flush=True)
            continue
        marks = ", ".join("?" * len(cols.split(",")))
        conn.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (orders INTEGER NOT NULL)")
    conn.execute("INSERT INTO bench_meta (orders) VALUES (?)", (n_orders,))
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    os.replace(tmp, path)
    print(f"\n  built in {time.time() - started:.0f} s")


def build_mysql(db, n_orders):
    """The same rows into a MariaDB database (emptied first); multi-row INSERTs per chunk."""
    migrate.init(db)
    conn = db.connection()
    cur = conn.cursor()
    cur.execute("SET FOREIGN_KEY_CHECKS=0")
    cur.execute("SET UNIQUE_CHECKS=0")
    for table in ("shipping_statuses", "transaction_statuses", "evm_transactions", "transactions", "packages",
                  "items", "store_users", "stores", "users"):
        cur.execute(f"DELETE FROM {table}")
    cur.execute("DROP TABLE IF EXISTS bench_meta")
    started = time.time()
    for table, cols, rows in generate(n_orders, chunk=20000):
        if table == "progress":
            conn.commit()
            print(f"\r  {rows:,} orders ({time.time() - started:.0f} s)", end="", flush=True)
            continue
        marks = ", ".join(["%s"] * len(cols.split(",")))
        for i in range(0, len(rows), 5000):
            cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows[i:i + 5000])
    cur.execute("CREATE TABLE bench_meta (orders INTEGER NOT NULL)")
    cur.execute("INSERT INTO bench_meta (orders) VALUES (%s)", (n_orders,))
    conn.commit()
    cur.execute("SET FOREIGN_KEY_CHECKS=1")
    cur.execute("SET UNIQUE_CHECKS=1")
    for table in ("transactions", "transaction_statuses", "shipping_statuses", "evm_transactions"):
        cur.execute(f"ANALYZE TABLE {table}")
        cur.fetchall()
    print(f"\n  built in {time.time() - started:.0f} s")


def cached_orders_mysql(db):
    try:
        return db.value("SELECT orders FROM bench_meta")
    except Exception:
        return None


def cached_orders(path):
    if not os.path.exists(path):
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT orders FROM bench_meta").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def add_closed_at(path):
    """A file cached before evm_transactions.closed_at existed gets the column and its index
    (every bench order ends RELEASED, at its one timestamp) instead of a rebuild."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if "closed_at" in [r[1] for r in conn.execute("PRAGMA table_info(evm_transactions)")]:
            return
        print("  adding evm_transactions.closed_at to the cached file")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.execute("ALTER TABLE evm_transactions ADD COLUMN closed_at VARCHAR(19) NULL")
        conn.execute("UPDATE evm_transactions SET closed_at = created_at")
        conn.execute("CREATE INDEX IF NOT EXISTS idx_evm_transactions_open ON evm_transactions (closed_at, chain_id)")
        conn.execute("COMMIT")
        conn.execute("ANALYZE evm_transactions")
    finally:
        conn.close()


def timed(fn, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, int(len(out) * 0.95))]


def plans(db, vendor, buyer, order_uuid):
    """The database's plan for the listing and detail queries; returns the full scans found."""
    ids = orders.order_ids_page(db, vendor, 50, 0)
    marks = ", ".join("?" * len(ids))
    queries = {
        "vendor page ids": ("SELECT id FROM transactions WHERE store_uuid = ? ORDER BY id DESC LIMIT ?",
                            (ids and db.value("SELECT store_uuid FROM transactions WHERE id = ?", (ids[0],)), 50)),
        "buyer page ids": ("SELECT id FROM transactions WHERE buyer_uuid = ? ORDER BY id DESC LIMIT ?",
                           (buyer["uuid"], 50)),
        "page rows": (f"SELECT {orders.ORDER_COLUMNS} FROM {orders.ORDER_FROM} WHERE t.id IN ({marks})", ids),
        "one order": (f"SELECT {orders.ORDER_COLUMNS} FROM {orders.ORDER_FROM} WHERE t.uuid = ?", (order_uuid,)),
    }
    bad = []
    for name, (sql, params) in queries.items():
        if db.is_sqlite:
            detail = [r["detail"] for r in db.query("EXPLAIN QUERY PLAN " + sql, params)]
            bad += [d for d in detail if d.startswith("SCAN") and "USING" not in d and "INDEX" not in d]
        else:
            rows = db.query("EXPLAIN " + sql, params)
            detail = [f"{r['table']}:{r['type']}:{r['key']}:{r['rows']}" for r in rows]
            bad += [d for r, d in zip(rows, detail) if r["type"] in ("ALL", "index") and int(r["rows"] or 0) > 1000]
        print(f"  plan {name}: " + " | ".join(detail))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--path", default=PATH, help="SQLite file (default db/bench-views.sqlite)")
    ap.add_argument("--dsn", help="run on MariaDB instead, e.g. "
                                  "'mysql:host=127.0.0.1;port=3306;dbname=bench_views;charset=utf8mb4' "
                                  "(the database is created if missing and reused while it holds --orders)")
    ap.add_argument("--db-user", default="root")
    ap.add_argument("--db-password", default="")
    args = ap.parse_args()
    if args.dsn:
        import pymysql
        params = dbmod.parse_dsn(args.dsn)[1]
        admin = pymysql.connect(host=params.get("host", "127.0.0.1"), port=int(params.get("port", 3306)),
                                user=args.db_user, password=args.db_password, autocommit=True)
        admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{params['dbname']}` "
                               "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        admin.close()
        db = dbmod.Db(args.dsn, args.db_user, args.db_password)
        have = cached_orders_mysql(db)
        where = params["dbname"]
    else:
        have = cached_orders(args.path)
        where = args.path
    if args.rebuild or have != args.orders:
        print(f"building {where}: {args.orders:,} orders, {args.orders * len(STATUS_PATH):,} status rows")
        if args.dsn:
            build_mysql(db, args.orders)
        else:
            build_sqlite(args.path, args.orders)
    else:
        print(f"reusing {where} ({have:,} orders)")
        if not args.dsn:
            add_closed_at(args.path)
    if not args.dsn:
        db = dbmod.Db(f"sqlite:{args.path}")
    n = db.value("SELECT COUNT(*) FROM transactions")
    ns = db.value("SELECT COUNT(*) FROM transaction_statuses")
    print(f"{db.driver}: orders: {n:,}  status rows: {ns:,}")
    rng = random.Random(7)
    vendors = [{"uuid": r["user_uuid"], "role": "vendor", "username": "v"}
               for r in db.query("SELECT user_uuid FROM store_users")]
    buyers = [{"uuid": r["uuid"], "role": "customer", "username": r["username"]}
              for r in db.query("SELECT uuid, username FROM users WHERE role = 'customer'")]
    min_id, max_id = db.value("SELECT MIN(id) FROM transactions"), db.value("SELECT MAX(id) FROM transactions")

    def random_order():
        return db.one("SELECT uuid, buyer_uuid FROM transactions WHERE id >= ? ORDER BY id LIMIT 1",
                      (rng.randint(min_id, max_id),))

    picks = [random_order() for _ in range(args.runs)]
    it = iter(picks * 5)

    def current_status():
        o = next(it)
        assert sm.current_status(db, o["uuid"])["status"] == "RELEASED"
        row = db.one("SELECT current_status FROM v_current_transaction_statuses WHERE transaction_uuid = ?",
                     (o["uuid"],))
        assert row["current_status"] == "RELEASED"

    def buyer_page():
        got = orders.list_orders(db, rng.choice(buyers), 50, 0)
        assert got and got[0]["current_status"] == "RELEASED"

    def vendor_page():
        got = orders.list_orders(db, rng.choice(vendors), 50, 0)
        assert len(got) == 50 and got[0]["created_at"] >= got[-1]["created_at"]

    deep = min(5000, n // STORES // 2)

    def vendor_deep_page():
        assert len(orders.list_orders(db, rng.choice(vendors), 50, deep)) == 50

    def order_detail():
        o = next(it)
        d = orders.get_order(db, {"uuid": o["buyer_uuid"], "role": "customer", "username": "b"}, o["uuid"])
        assert len(d["statuses"]) == len(STATUS_PATH) and d["current_status"] == "RELEASED"

    for fn in (current_status, buyer_page, vendor_page, order_detail):   # warm the page cache
        fn()
    results = [
        ("current status of one order", current_status),
        ("newest 50 orders of one buyer", buyer_page),
        ("newest 50 orders of one vendor", vendor_page),
        (f"50 orders of one vendor at offset {deep}", vendor_deep_page),
        ("one order with history", order_detail),
    ]
    print(f"\n{'query (' + db.driver + ')':42} {'median ms':>10} {'p95 ms':>10}   ({args.runs} runs)")
    for name, fn in results:
        med, p95 = timed(fn, args.runs)
        print(f"{name:42} {med:10.2f} {p95:10.2f}")
    print()
    bad = plans(db, vendors[0], buyers[0], picks[0]["uuid"])
    if bad:
        print("FULL SCANS FOUND:", bad)
        sys.exit(1)


if __name__ == "__main__":
    main()
