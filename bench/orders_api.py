"""GET /api/transactions.php in-process: the order list of a buyer
with an API key, per request, with the queries it runs.

    .venv/bin/python bench/orders_api.py [--orders 100] [--requests 3000] [--dsn 'mysql:...']

Builds a fresh database (SQLite in a temporary directory, or the MariaDB database of
--dsn, emptied first) with one store, a buyer with ORDERS orders (each with its status
and shipping rows, made by lib/orders.create_order) and enough API keys of the buyer
that no key reaches its limit of 60 a minute. Then it calls the WSGI application
directly (no server), rotating the keys, and prints per request the median CPU time
of this thread (time.thread_time: what the request costs, whatever else the machine
runs), the median and 95th percentile wall time, and the SQL statements, for the
default page (50 orders) and for ?limit=100.
"""
import argparse
import io
import os
import secrets
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

os.environ.update({"SESSION_SALT": "bench-session-salt", "CSRF_SALT": "bench-csrf-salt",
                   "COOKIE_ENCRYPTION_SALT": "bench-cookie-salt", "LOG_LEVEL": "WARNING"})

from lib import api_keys, db as dbmod, migrate  # noqa: E402
from lib.db import utc_now  # noqa: E402


def build(db, n_orders, n_keys):
    from tests import market
    from tests.conftest import empty_tables
    empty_tables(db)
    dbmod.set_db(db)
    w = market.world(db)
    for _ in range(n_orders):
        market.order(db, w, "COMPLETED")
    keys = []
    for i in range(n_keys):
        key = secrets.token_hex(32)
        db.insert("api_keys", {"user_uuid": w["buyer"]["uuid"], "name": f"bench {i}", "key_hash": api_keys.key_hash(key),
                               "key_prefix": key[:8], "created_at": utc_now(), "last_used_at": None,
                               "revoked_at": None, "scopes": "full", "store_uuid": None})
        keys.append(key)
    return keys


def environ(path, query, key):
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "bench",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "HTTP_AUTHORIZATION": f"Bearer {key}"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=100)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--dsn", help="a MariaDB database to use (emptied), e.g. "
                                  "'mysql:host=127.0.0.1;port=3306;dbname=bench_orders_api;charset=utf8mb4'")
    args = ap.parse_args()
    if args.dsn:
        import pymysql
        name = dbmod.parse_dsn(args.dsn)[1]["dbname"]
        admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        admin.close()
        db = dbmod.Db(args.dsn, "root", "")
    else:
        db = dbmod.Db(f"sqlite:{tempfile.mkdtemp(prefix='mkt-bench-orders-')}/bench.sqlite")
    migrate.init(db)
    keys = build(db, args.orders, n_keys=args.requests * 2 // 50 + 10)
    os.environ["DB_DSN"] = db.dsn
    import wsgi
    queries = []
    real_run = db._run

    def counting_run(sql, params=(), retry=True):
        queries.append(sql)
        return real_run(sql, params, retry)

    db._run = counting_run
    rotation = iter(keys * 100)
    print(f"{db.driver}: GET /api/transactions.php in-process, a buyer with {args.orders} orders, "
          f"{args.requests} requests, a new API key every 50 requests")
    for label, query, expect in (("default page (50 orders)", "", 50), ("?limit=100", "limit=100", 100)):
        key = next(rotation)
        times, cpu = [], []
        queries.clear()
        for i in range(args.requests):
            if i % 50 == 0:
                key = next(rotation)
            status = []
            t, c = time.perf_counter(), time.thread_time()
            body = b"".join(wsgi.application(environ("/api/transactions.php", query, key),
                                             lambda s, h: status.append(s)))
            cpu.append((time.thread_time() - c) * 1000)
            times.append((time.perf_counter() - t) * 1000)
            if i == 0:
                assert status[0].startswith("200"), (status, body[:300])
                assert body.count(b'"uuid"') >= min(expect, args.orders), body[:300]
        times.sort()
        med, p95 = statistics.median(times), times[int(len(times) * 0.95)]
        print(f"  {label:26s} CPU {statistics.median(cpu):6.3f} ms   wall median {med:6.3f} ms   p95 {p95:6.3f} ms"
              f"   {len(queries) / args.requests:5.2f} SQL statements per request")


if __name__ == "__main__":
    main()
