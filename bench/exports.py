"""Exports stay in bounded memory (lib/exports.py): the staff orders export of one day
and of ten days of a database with N orders (default 200,000: N/10 a day).

    .venv/bin/python bench/exports.py [--orders N] [--format csv|json]

Builds a throw-away SQLite database (real schema, one store, item, package and buyer;
the orders bulk-loaded with executemany), then consumes each export chunk by chunk as the
WSGI server would, timing it, then measuring with tracemalloc the peak of Python memory
allocated while it runs. Prints rows, bytes, seconds, rows per second and peak KiB of
both, and the ratio of the peaks: about 1 when memory does not grow with the range
(a list of every row would make it about 10).
"""
import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import uuid as uuidlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("ENV_FILE", os.path.join(ROOT, "bench", "no-such.env"))

from lib import catalog, exports, migrate, users  # noqa: E402
from lib import db as dbmod  # noqa: E402

DAYS = 10


def build(path, n):
    db = dbmod.Db(f"sqlite:{path}")
    migrate.init(db)
    dbmod.set_db(db)
    vendor = users.create_user(db, "vendor1", "password123")
    buyer = users.create_user(db, "buyer1", "password123")
    store = catalog.create_store(db, vendor, "shop", "a store", True)
    item = catalog.create_item(db, vendor, store["uuid"], "widget", "an item", None)
    package = catalog.create_package(db, vendor, item["uuid"], "one", "a package", "100")
    db.close()
    conn = sqlite3.connect(path)
    orders, chain = [], []
    for i in range(n):
        order_uuid = str(uuidlib.uuid4())
        seconds = i * (DAYS * 86400 // n)
        stamp = "2026-03-%02d %02d:%02d:%02d" % (1 + seconds // 86400, seconds // 3600 % 24,
                                                  seconds // 60 % 60, seconds % 60)
        orders.append((order_uuid, package["uuid"], store["uuid"], buyer["uuid"], "100", stamp, stamp))
        chain.append((order_uuid, 1, "ETH", 18, str(5 * 10 ** 16 + i), "2000", stamp))
    with conn:
        conn.executemany("INSERT INTO transactions (uuid, package_uuid, store_uuid, buyer_uuid, price_usd, "
                         "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", orders)
        conn.executemany("INSERT INTO evm_transactions (transaction_uuid, chain_id, currency, decimals, "
                         "required_amount, usd_rate, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", chain)
    conn.close()
    return dbmod.Db(f"sqlite:{path}")


def consume(db, spec):
    size = lines = 0
    for chunk in exports.body(db, spec):
        size += len(chunk)
        lines += chunk.count(b"\n")
    return size, lines


def run(db, last_day, fmt):
    """Timed without tracemalloc (it slows allocation several times), then measured with it."""
    spec = {"kind": "orders", "format": fmt, "from": "2026-03-01", "to": "2026-03-%02d" % last_day,
            "start": "2026-03-01 00:00:00", "end": "2026-03-%02d 00:00:00" % (last_day + 1), "store_uuids": None}
    t0 = time.perf_counter()
    size, lines = consume(db, spec)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    consume(db, spec)
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows = lines - 1 if fmt == "csv" else None
    return {"rows": rows, "bytes": size, "seconds": seconds, "peak_kib": peak / 1024}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--format", choices=exports.FORMATS, default="csv")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="mkt-bench-exports-")
    try:
        t0 = time.perf_counter()
        db = build(os.path.join(tmp, "bench.sqlite"), args.orders)
        print(f"built {args.orders} orders in {time.perf_counter() - t0:.1f} s; chunk {exports.CHUNK} rows")
        run(db, 1, args.format)          # warm the page cache and the imports
        results = {}
        for days in (1, DAYS):
            r = results[days] = run(db, days, args.format)
            rows = r["rows"] if r["rows"] is not None else "?"
            rate = f"{r['rows'] / r['seconds']:,.0f} rows/s" if r["rows"] else f"{r['bytes'] / r['seconds'] / 1e6:.1f} MB/s"
            print(f"{days:2d} day(s): {rows} rows, {r['bytes'] / 1e6:.1f} MB in {r['seconds']:.2f} s "
                  f"({rate}), peak Python memory {r['peak_kib']:.0f} KiB")
        ratio = results[DAYS]["peak_kib"] / results[1]["peak_kib"]
        print(f"rows x{results[DAYS]['bytes'] / results[1]['bytes']:.1f}, peak memory x{ratio:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
