"""Web requests per second under uwsgi behind nginx (SPEC section 10).

    .venv/bin/python bench/web.py [SECONDS] [CONNECTIONS]      (or `make bench-web`)

Starts the production stack from deploy/ (deploy/localstack.py: nginx -> uwsgi
with deploy/uwsgi.ini as it is, over HTTPS with keep-alive) on a fresh SQLite
database with a vendor and 30 items, and measures for a
few URLs the requests per second that come back 2xx, with `wrk` (Debian package;
`make bench-web` installs it) or, without it, a threaded Python client (which
shares the CPU with the servers and so understates the figure). Everything runs
on 127.0.0.1; the load generator and the servers share this machine's cores.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from deploy.localstack import Stack  # noqa: E402
from lib import db as dbmod  # noqa: E402
from lib import migrate  # noqa: E402

SALTS = {"SESSION_SALT": "bench-session-salt", "CSRF_SALT": "bench-csrf-salt",
         "COOKIE_ENCRYPTION_SALT": "bench-cookie-salt"}


def seed(db, items=30):
    """A vendor (with its login) and a store of `items` items (tests/market.py helpers,
    which the listing page renders), so the pages measured do real work."""
    os.environ.update(SALTS)
    dbmod.set_db(db)
    from tests import market
    world = market.world(db)
    for i in range(items - 1):
        item = market.item(db, world["vendor"], world["store"]["uuid"], name=f"widget {i}")
        market.package(db, world["vendor"], item["uuid"], price=str(10 + i))
    return world["vendor"]["username"], world["vendor"]["password"]


def wrk_rate(url, seconds, connections, headers):
    """(2xx responses per second, average latency, note) measured by wrk."""
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    total, duration = int(m.group(1)), float(m.group(2))
    duration *= {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(bad.group(1)) if bad else 0
    errors = re.search(r"Socket errors: (.*)", out)
    note = []
    if bad:
        note.append(f"{bad} non-2xx not counted")
    if errors:
        note.append("socket errors: " + errors.group(1))
    latency = re.search(r"Latency\s+(\S+)", out)
    return (total - bad) / duration, (latency.group(1) if latency else "?"), ", ".join(note)


def session_cookie(stack, username, password):
    """Log in through nginx; the `Cookie` header value of the new session."""
    import urllib.parse
    body = urllib.parse.urlencode({"username": username, "password": password})
    status, headers, _b = stack.request("POST", "/login.php", body=body,
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    cookies = [v.split(";")[0] for k, v in headers if k.lower() == "set-cookie"]
    return "; ".join(c for c in cookies if c.startswith("session=")) if status == 200 else None


def python_rate(stack, path, seconds, connections, headers):
    stop = time.monotonic() + seconds
    counts, bad = [0] * connections, [0] * connections

    def worker(i):
        conn = stack.connection()
        while time.monotonic() < stop:
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    counts[i] += 1
                else:
                    bad[i] += 1
            except OSError:
                bad[i] += 1
                conn.close()
                conn = stack.connection()
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return sum(counts) / elapsed, "?", f"{sum(bad)} failed" if sum(bad) else ""


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    tmp = tempfile.mkdtemp(prefix="mkt-bench-web-")
    db = dbmod.Db(f"sqlite:{tmp}/bench.sqlite")
    migrate.init(db)
    username, password = seed(db)
    env = dict(SALTS, DB_DSN=db.dsn, ENV_FILE=os.path.join(tmp, "none.env"), LOG_LEVEL="WARNING")
    stack = Stack(env=env, tmp=tmp)
    stack.env["SITE_URL"] = stack.base_url
    urls = [
        ("GET / (app, no database)", "/", {}),
        ("GET /health.php (app + database reads)", "/health.php", {}),
        ("GET /marketplace.php (HTML listing page)", "/marketplace.php", {"Accept": "text/html"}),
        # A logged-in user (session cookie). API keys are limited to 60 requests a
        # minute each, so one key cannot be benchmarked.
        ("GET /api/auth-user.php (session login)", "/api/auth-user.php", None),
        ("GET /static/style.css (nginx alone)", "/static/style.css", {}),
    ]
    use_wrk = shutil.which("wrk") is not None
    with stack:
        stats = stack.stats()
        workers = len(stats["workers"])
        threads = len(stats["workers"][0].get("cores", [])) if workers else 0
        print(f"nginx -> uwsgi ({workers} processes x {threads} threads, deploy/uwsgi.ini) on"
              f" {os.cpu_count()} cores; {'wrk' if use_wrk else 'Python threads'}, {connections}"
              f" keep-alive HTTPS connections, {seconds} s per URL")
        for label, path, headers in urls:
            if headers is None:
                headers = {"Cookie": session_cookie(stack, username, password) or ""}
            status, _h, _b = stack.request("GET", path, headers=headers)
            if status != 200:
                print(f"  {label}: skipped (answers {status})")
                continue
            if use_wrk:
                rate, latency, note = wrk_rate(stack.base_url + path, seconds, connections, headers)
            else:
                rate, latency, note = python_rate(stack, path, seconds, connections, headers)
            print(f"  {label:48s} {rate:9.0f} req/s   avg latency {latency}"
                  + (f"   ({note})" if note else ""))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
