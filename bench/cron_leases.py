"""What the database leases cost one cron run (cron/leases.py), on SQLite and MariaDB.

One run takes and gives back a lease per duty: 5 duties not bound to a chain, and 5
chain duties (poll, expire, payouts, deposits, reconcile) for each served chain. Printed:
milliseconds per run with one statement pair per (duty, chain), and with the statements
batched per duty (acquire_many / release per duty, as cron/cron.py does), and the ratio.

    .venv/bin/python bench/cron_leases.py [--runs 20] [--chains 4]
MariaDB: TEST_MYSQL_HOST/PORT/USER/PASSWORD as for the tests (127.0.0.1:3306 root);
a throw-away database is created and dropped.
"""
import argparse
import os
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cron import leases  # noqa: E402
from lib import db as dbmod  # noqa: E402
from lib import migrate  # noqa: E402

GLOBAL_DUTIES = ("escrow_addresses", "timeouts", "prices", "webhooks", "mail")
CHAIN_DUTIES = ("poll", "poll", "payouts", "payouts", "reconcile")     # expire / deposits share a lease


def one_by_one(lease, chains):
    for duty in GLOBAL_DUTIES:
        assert lease.acquire(duty)
        lease.release(duty, 0)
    for duty in CHAIN_DUTIES:
        for c in chains:
            assert lease.acquire(duty, c)
        for c in chains:
            lease.release(duty, c)


def batched(lease, chains):
    for duty in GLOBAL_DUTIES:
        assert lease.acquire(duty)
        lease.release(duty)
    for duty in CHAIN_DUTIES:
        assert lease.acquire_many(duty, chains) == chains
        lease.release(duty)


def measure(db, runs, chains):
    lease = leases.Leases(db, "bench:%d" % os.getpid(), 120)
    out = {}
    for name, fn in (("one by one", one_by_one), ("batched", batched)):
        fn(lease, chains)                      # rows exist from here on, as after a first run
        t0 = time.perf_counter()
        for _ in range(runs):
            fn(lease, chains)
        out[name] = (time.perf_counter() - t0) / runs * 1000
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--chains", type=int, default=4)
    args = parser.parse_args()
    chains = list(range(1, args.chains + 1))
    tmp = tempfile.mkdtemp(prefix="bench-leases-")
    dbs = [("sqlite", dbmod.Db("sqlite:" + os.path.join(tmp, "bench.sqlite")), None)]
    try:
        import pymysql
        host, port = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"), int(os.environ.get("TEST_MYSQL_PORT", "3306"))
        user, password = os.environ.get("TEST_MYSQL_USER", "root"), os.environ.get("TEST_MYSQL_PASSWORD", "")
        admin = pymysql.connect(host=host, port=port, user=user, password=password, autocommit=True)
        name = "bench_leases_%s" % uuid.uuid4().hex[:8]
        admin.cursor().execute("CREATE DATABASE `%s`" % name)
        dbs.append(("mariadb", dbmod.Db("mysql:host=%s;port=%d;dbname=%s;charset=utf8mb4" % (host, port, name),
                                        user, password), (admin, name)))
    except Exception as e:
        print("mariadb: not measured (%s)" % e)
    print("one cron run's leases: %d duties not bound to a chain + %d chain leases x %d chains, %d runs"
          % (len(GLOBAL_DUTIES), len(CHAIN_DUTIES), len(chains), args.runs))
    for label, db, drop in dbs:
        try:
            migrate.init(db)
            r = measure(db, args.runs, chains)
            print("%-8s one by one %7.1f ms/run   batched per duty %7.1f ms/run   ratio %.1fx"
                  % (label, r["one by one"], r["batched"], r["one by one"] / r["batched"]))
        finally:
            db.close()
            if drop:
                drop[0].cursor().execute("DROP DATABASE IF EXISTS `%s`" % drop[1])
                drop[0].close()


if __name__ == "__main__":
    main()
