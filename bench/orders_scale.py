"""The newest 50 orders of a buyer and of a store at 10,000 and at 1,000,000 orders:
the cost at the large size over the cost at the small one.

    .venv/bin/python bench/orders_scale.py [--small 10000] [--large 1000000] [--runs 300]
    .venv/bin/python bench/orders_scale.py --dsn 'mysql:host=127.0.0.1;port=3306;dbname=bench_scale;charset=utf8mb4'

Builds (once; reused while they hold the requested number of orders) two databases of
the same shape with bench/views.py's bulk loader: 10 stores, 100 buyers (so that every
buyer has more than 50 orders at both sizes), 5 status rows and a shipping row per
order. SQLite files db/bench-scale-N.sqlite; with --dsn the MariaDB databases
<dbname>_N. Then times what GET /api/transactions.php runs for a random buyer and a
random store owner on each (order_rows.orders_json over orders.order_ids_page: the page's
versions, and the orders whose encoding is not kept read in full), with the encoded
orders kept from earlier pages and with none kept (emptied before each page), and prints the median and 95th
percentile in milliseconds of this thread's CPU time (time.thread_time, which reading
pages from the file counts too, while time spent waiting for a busy machine's cores does
not) and the ratio large / small (goal: at most 2), and the wall-clock medians and
their ratio. On MariaDB the server does the work in its own process: there the
wall-clock ratio is the one that counts.
"""
import argparse
import os
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

import views  # noqa: E402  (bench/views.py: the bulk loader)
from lib import db as dbmod, order_rows, orders  # noqa: E402

views.BUYERS = 100


def open_sqlite(n):
    path = os.path.join(ROOT, "db", f"bench-scale-{n}.sqlite")
    if views.cached_orders(path) != n:
        print(f"building {path}: {n:,} orders")
        views.build_sqlite(path, n)
    return dbmod.Db(f"sqlite:{path}")


def open_mysql(dsn, n):
    import pymysql
    params = dbmod.parse_dsn(dsn)[1]
    name = f"{params['dbname']}_{n}"
    admin = pymysql.connect(host=params.get("host", "127.0.0.1"), port=int(params.get("port", 3306)),
                            user="root", password="", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    admin.close()
    db = dbmod.Db(dsn.replace(f"dbname={params['dbname']}", f"dbname={name}"), "root", "")
    if views.cached_orders_mysql(db) != n:
        print(f"building MariaDB database {name}: {n:,} orders")
        views.build_mysql(db, n)
    return db


def page(db, who):
    return order_rows.orders_json(db, orders.order_ids_page(db, who, 50, 0))


def measure(db, runs):
    rng = random.Random(11)
    buyers = [{"uuid": r["uuid"], "role": "customer", "username": r["username"]}
              for r in db.query("SELECT uuid, username FROM users WHERE role = 'customer'")]
    vendors = [{"uuid": r["user_uuid"], "role": "vendor", "username": "v"}
               for r in db.query("SELECT user_uuid FROM store_users")]
    out = {}
    for kept in (True, False):
        for label, people in (("a buyer", buyers), ("a store", vendors)):
            label = f"newest 50 of {label}, " + ("kept" if kept else "none kept")
            for who in people:                                # warm the caches (and the kept orders)
                page(db, who)
            times, walls = [], []
            for _ in range(runs):
                who = rng.choice(people)
                if not kept:
                    order_rows.forget_encoded()
                t, w = time.thread_time(), time.perf_counter()
                got = page(db, who)
                times.append((time.thread_time() - t) * 1000)
                walls.append((time.perf_counter() - w) * 1000)
                assert got.count('"uuid"') == 50
            times.sort()
            out[label] = (statistics.median(times), times[int(len(times) * 0.95)], statistics.median(walls))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--dsn", help="MariaDB instead of SQLite (databases <dbname>_<orders>)")
    args = ap.parse_args()
    dbs = {n: (open_mysql(args.dsn, n) if args.dsn else open_sqlite(n)) for n in (args.small, args.large)}
    figures = {n: measure(db, args.runs) for n, db in dbs.items()}
    driver = dbs[args.small].driver
    if args.dsn:
        size = dbs[args.large].value("SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM "
                                     "information_schema.tables WHERE table_schema = DATABASE()")
        pool = dbs[args.large].value("SELECT @@innodb_buffer_pool_size") // 1048576
        print(f"MariaDB: {args.large:,} orders take {size} MiB (data and indexes); innodb_buffer_pool_size {pool} MiB")
    print(f"\n{driver}: median / p95 ms of CPU over {args.runs} runs (a random buyer or store owner)")
    print(f"{'page':36s} {args.small:>13,} orders {args.large:>13,} orders   ratio of medians"
          f"   (wall-clock medians and their ratio)")
    for label in figures[args.small]:
        (m1, p1, w1), (m2, p2, w2) = figures[args.small][label], figures[args.large][label]
        print(f"{label:36s} {m1:8.2f} / {p1:6.2f} {m2:8.2f} / {p2:6.2f}   {m2 / m1:5.2f}x"
              f"   ({w1:.2f} -> {w2:.2f} ms, {w2 / w1:.2f}x)")


if __name__ == "__main__":
    main()
