"""GET /api/transactions.php in-process: the order list of a buyer with an API key, per
request, with the queries it runs, before and after (the code of a baseline commit
against this tree) in one run.

    .venv/bin/python bench/orders_api.py [--orders 100] [--requests 2000] [--rounds 3]
                                         [--dsn 'mysql:...'] [--baseline REV]

For each side in turn (the baseline, default BASELINE: the last commit before the
order list kept encoded orders and the key limit took one statement, exported with
`git archive` to a temporary directory; then this tree), a fresh process builds a fresh
database (SQLite in a temporary directory, or the MariaDB database of --dsn, emptied
first) with one store, a buyer with ORDERS orders (each with its status and shipping
rows, made by lib/orders.create_order) and enough API keys of the buyer that no key
reaches its limit of 60 a minute. Then it calls the WSGI application directly (no
server), rotating the keys, and measures per request the median CPU time of this
thread (time.thread_time: what the request costs, whatever else the machine runs), the
median wall time and the SQL statements, for the default page (50 orders), for
?limit=100, and for the default page when every order of the buyer changed since the
previous request (its updated_at rewritten before each request, outside the timing: the
worst case of a cache of encoded orders). The sides alternate for ROUNDS rounds; each
figure printed is the lowest of a side's rounds (the run least disturbed by whatever
else the machine runs), with the highest CPU median after it, and the ratio before /
after of the lowest CPU medians.
"""
import argparse
import io
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = "eba103a"
CASES = (("default page (50 orders)", "", 50, False), ("?limit=100", "limit=100", 100, False),
         ("50, every order changed", "", 50, True))


def build(db, n_orders, n_keys):
    from lib import api_keys, db as dbmod
    from lib.db import utc_now
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
    return keys, w["buyer"]["uuid"]


def environ(path, query, key):
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "bench",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "HTTP_AUTHORIZATION": f"Bearer {key}"}


def measure(root, n_orders, n_requests, dsn):
    """The figures of the tree at `root` (run in a process of its own): {case: (cpu, wall, sql)}."""
    sys.path.insert(0, root)
    os.environ.update({"SESSION_SALT": "bench-session-salt", "CSRF_SALT": "bench-csrf-salt",
                       "COOKIE_ENCRYPTION_SALT": "bench-cookie-salt", "LOG_LEVEL": "WARNING"})
    from lib import db as dbmod, migrate
    if dsn:
        import pymysql
        name = dbmod.parse_dsn(dsn)[1]["dbname"]
        admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        admin.close()
        db = dbmod.Db(dsn, "root", "")
    else:
        db = dbmod.Db(f"sqlite:{tempfile.mkdtemp(prefix='mkt-bench-orders-')}/bench.sqlite")
    migrate.init(db)
    keys, buyer_uuid = build(db, n_orders, n_keys=n_requests * len(CASES) // 50 + 10)
    os.environ["DB_DSN"] = db.dsn
    import wsgi
    queries = []
    real_run = db._run

    def counting_run(sql, params=(), retry=True):
        queries.append(sql)
        return real_run(sql, params, retry)

    rotation = iter(keys)
    out = {}
    for label, query, expect, change in CASES:
        times, cpu, counted = [], [], 0
        for i in range(n_requests):
            if i % 50 == 0:
                key = next(rotation)
            if change:
                db.execute("UPDATE transactions SET updated_at = ? WHERE buyer_uuid = ?",
                           (f"2030-01-01 00:{i // 60 % 60:02d}:{i % 60:02d}", buyer_uuid))
            status = []
            db._run, queries[:] = counting_run, []
            t, c = time.perf_counter(), time.thread_time()
            body = b"".join(wsgi.application(environ("/api/transactions.php", query, key),
                                             lambda s, h: status.append(s)))
            cpu.append((time.thread_time() - c) * 1000)
            times.append((time.perf_counter() - t) * 1000)
            db._run = real_run
            counted += len(queries)
            if i == 0:
                assert status[0].startswith("200"), (status, body[:300])
                assert body.count(b'"uuid"') == min(expect, n_orders), body[:300]
        out[label] = (statistics.median(cpu), statistics.median(times), counted / n_requests)
    return {"driver": db.driver, "figures": out}


def exported(rev):
    """A temporary directory holding the tree of commit `rev`."""
    target = tempfile.mkdtemp(prefix="mkt-bench-baseline-")
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    return target


def run_side(root, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--measure", root, "--orders", str(args.orders),
           "--requests", str(args.requests)] + (["--dsn", args.dsn] if args.dsn else [])
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        sys.exit(f"measuring {root} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=100)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dsn", help="a MariaDB database to use (emptied), e.g. "
                                  "'mysql:host=127.0.0.1;port=3306;dbname=bench_orders_api;charset=utf8mb4'")
    ap.add_argument("--baseline", default=BASELINE, help=f"the commit measured as before (default {BASELINE})")
    ap.add_argument("--measure", metavar="ROOT", help=argparse.SUPPRESS)   # one side, in its own process
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.orders, args.requests, args.dsn)))
        return
    baseline = exported(args.baseline)
    rounds = {"before": [], "after": []}
    for _ in range(args.rounds):
        rounds["before"].append(run_side(baseline, args))
        rounds["after"].append(run_side(ROOT, args))
    print(f"{rounds['after'][0]['driver']}: GET /api/transactions.php in-process, a buyer with {args.orders} orders, "
          f"{args.requests} requests per case, a new API key every 50 requests, {args.rounds} rounds")
    print(f"median per request, lowest of the rounds: CPU of this thread ms [highest round] (wall ms, SQL "
          f"statements); before = {args.baseline}, after = this tree")
    print(f"{'':26s} {'before':>32s} {'after':>32s}   ratio of CPU")
    for label, _query, _expect, _change in CASES:
        line, cpus = f"  {label:24s}", []
        for side in ("before", "after"):
            figures = [r["figures"][label] for r in rounds[side]]
            cpu, wall, sql = (min(f[i] for f in figures) for i in range(3))
            line += f" {cpu:6.3f} [{max(f[0] for f in figures):6.3f}] ({wall:6.3f}, {sql:5.2f})   "
            cpus.append(cpu)
        print(f"{line}{cpus[0] / cpus[1]:5.2f}x")


if __name__ == "__main__":
    main()
