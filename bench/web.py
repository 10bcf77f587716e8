"""Web requests per second under uwsgi behind nginx (SPEC section 10).

    .venv/bin/python bench/web.py [--http] [SECONDS] [CONNECTIONS]  (or `make bench-web`; 3 s, 16)
    .venv/bin/python bench/web.py --memory [REQUESTS]          worker RSS over REQUESTS

Starts the production stack from deploy/ (deploy/localstack.py: nginx -> uwsgi
with deploy/uwsgi.ini as it is and the request metrics in PROMETHEUS_MULTIPROC_DIR
as the systemd unit sets them, over HTTPS with keep-alive) on a fresh SQLite
database with 50 stores of 10 items (a package each), and measures, with `wrk`
(Debian package; `make bench-web` installs it; 2 threads) or, without it, a threaded
Python client (which shares the CPU with the servers and so understates the figure),
the requests per second that come back 2xx:
  - the ceiling: a bare WSGI app (bench/ceiling_app.py) answering a constant JSON body
    under the same nginx and uwsgi settings, in the same run, in turn with each cached URL;
  - the public catalog reads as a guest (lib/catalog_cache.py), as a guest revalidating
    with If-None-Match (304), and rendered every time (a request carrying a session
    cookie, which is never served from the cache), each with its share of the ceiling;
  - a few other URLs.
--http measures over plain HTTP (the HTTPS server block of deploy/nginx.conf served once more
on a plain port, for both the ceiling and the app) instead of HTTPS.
--memory sends REQUESTS requests per worker (catalog pages cached and rendered, a
signed-in page) with max-requests off, and prints each worker's VmRSS from
/proc/PID/status after a warm-up and after each quarter of them.
Everything runs on 127.0.0.1; the load generator and the servers share this
machine's cores.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from deploy.localstack import Stack, free_port  # noqa: E402
from lib import db as dbmod  # noqa: E402
from lib import migrate  # noqa: E402

SALTS = {"SESSION_SALT": "bench-session-salt", "CSRF_SALT": "bench-csrf-salt",
         "COOKIE_ENCRYPTION_SALT": "bench-cookie-salt"}


def seed(db, stores=50, items_per_store=10):
    """A vendor (with its login) and `stores` stores of `items_per_store` items with a
    package each (tests/market.py helpers), so the pages measured do real work.
    Returns (username, password, a store uuid, an item uuid)."""
    os.environ.update(SALTS)
    dbmod.set_db(db)
    from tests import market
    from tests.factories import make_user
    world = market.world(db)
    store_uuid, item_uuid = world["store"]["uuid"], world["item"]["uuid"]
    for n in range(stores):
        owner = world["vendor"] if n == 0 else make_user(db, f"vendor{n + 2}")
        store = world["store"] if n == 0 else market.store(db, owner, f"store {n}")
        for i in range(items_per_store - (1 if n == 0 else 0)):
            item = market.item(db, owner, store["uuid"], name=f"widget {n}-{i}")
            market.package(db, owner, item["uuid"], price=str(10 + i))
    return world["vendor"]["username"], world["vendor"]["password"], store_uuid, item_uuid


class PlainHttp:
    """With --http: the HTTPS server block of deploy/nginx.conf served once more on a plain
    HTTP port (production answers plain HTTP with a redirect only), so that wrk measures
    nginx -> uwsgi without TLS; the stack itself still starts and checks over HTTPS."""
    plain = False

    def render_nginx(self):
        super().render_nginx()
        if not self.plain:
            return
        site = os.path.join(self.tmp, "site.conf")
        with open(site, encoding="utf-8") as f:
            text = f.read()
        tls_listen = f"listen 127.0.0.1:{self.https_port} ssl http2;"
        start = text.rindex("server {", 0, text.index(tls_listen))
        depth, end = 0, start
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0 and text[end] == "}":
                break
        self.plain_port = getattr(self, "plain_port", None) or free_port()
        block = text[start:end + 1].replace(tls_listen, f"listen 127.0.0.1:{self.plain_port};")
        with open(site, "w", encoding="utf-8") as f:
            f.write(text + "\n" + block + "\n")

    def url(self, path):
        return (f"http://127.0.0.1:{self.plain_port}" if self.plain else self.base_url) + path


class AppStack(PlainHttp, Stack):
    """The production stack serving the marketplace."""


class CeilingStack(PlainHttp, Stack):
    """The same nginx and uwsgi configuration serving bench/ceiling_app.py."""

    def render(self):
        super().render()
        with open(self.uwsgi_ini, encoding="utf-8") as f:
            text = f.read()
        text = text.replace("module = wsgi:application",
                            f"wsgi-file = {os.path.join(ROOT, 'bench', 'ceiling_app.py')}")
        with open(self.uwsgi_ini, "w", encoding="utf-8") as f:
            f.write(text)


class LongLivedStack(AppStack):
    """deploy/uwsgi.ini with worker recycling off (max-requests, reload-on-rss), so one
    worker lives through the whole memory run."""

    def render(self):
        super().render()
        local = os.path.join(self.tmp, "uwsgi-local.ini")
        with open(local, "w", encoding="utf-8") as f:
            f.write("[uwsgi]\nmax-requests = 0\nreload-on-rss = 0\n")


def wrk_rate(url, seconds, connections, headers, script=None):
    """(2xx responses per second, average latency, note) measured by wrk (`script`: a
    wrk Lua script, e.g. one that walks through many paths)."""
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    if script:
        cmd += ["-s", script]
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


def rate(stack, path, seconds, connections, headers, use_wrk):
    if use_wrk:
        return wrk_rate(stack.url(path), seconds, connections, headers)
    return python_rate(stack, path, seconds, connections, headers)


def stack_line(stack, connections, seconds, use_wrk):
    stats = stack.stats()
    workers = len(stats["workers"])
    threads = len(stats["workers"][0].get("cores", [])) if workers else 0
    return (f"nginx -> uwsgi ({workers} processes x {threads} threads, deploy/uwsgi.ini) on"
            f" {os.cpu_count()} cores; {'wrk -t2' if use_wrk else 'Python threads'}, {connections}"
            f" keep-alive {'plain HTTP' if stack.plain else 'HTTPS'} connections, {seconds} s per measurement")


def fresh_database(tmp):
    db = dbmod.Db(f"sqlite:{tmp}/bench.sqlite")
    migrate.init(db)
    return db


def wait_settled(db):
    """Until the stamps of cron's tables are of past seconds (renders are kept then)."""
    from lib import catalog_cache
    while not catalog_cache._settled(catalog_cache.version(db)):
        time.sleep(0.2)


ROUNDS = 3   # ceiling and cached URL in turn


def main_rates(seconds, connections, plain=False):
    tmp = tempfile.mkdtemp(prefix="mkt-bench-web-")
    use_wrk = shutil.which("wrk") is not None
    db = fresh_database(tmp)
    username, password, store_uuid, item_uuid = seed(db)
    wait_settled(db)
    env = dict(SALTS, DB_DSN=db.dsn, ENV_FILE=os.path.join(tmp, "none.env"), LOG_LEVEL="WARNING",
               PROMETHEUS_MULTIPROC_DIR=os.path.join(tmp, "metrics"))   # as the systemd unit sets it
    for name in ("ceiling", "app"):
        os.makedirs(os.path.join(tmp, name))
    ceiling = CeilingStack(env={"ENV_FILE": os.path.join(tmp, "none.env")}, tmp=os.path.join(tmp, "ceiling"))
    stack = AppStack(env=env, tmp=os.path.join(tmp, "app"))
    ceiling.plain = stack.plain = plain
    stack.env["SITE_URL"] = stack.base_url
    html = {"Accept": "text/html"}
    catalog = [
        ("GET /api/stores.php", "/api/stores.php", {}),
        ("GET /api/items.php", "/api/items.php", {}),
        ("GET /api/packages.php?item_uuid=", f"/api/packages.php?item_uuid={item_uuid}", {}),
        ("GET /marketplace.php", "/marketplace.php", html),
        ("GET /store.php?uuid=", f"/store.php?uuid={store_uuid}", html),
        ("GET /item.php?uuid=", f"/item.php?uuid={item_uuid}", html),
    ]
    others = [
        ("GET / (app, no database)", "/", {}),
        ("GET /health.php (app + database reads)", "/health.php", {}),
        # A logged-in user (session cookie). API keys are limited to 60 requests a
        # minute each, so one key cannot be benchmarked.
        ("GET /api/auth-user.php (session login)", "/api/auth-user.php", None),
        ("GET /static/style.css (nginx alone)", "/static/style.css", {}),
    ]
    with ceiling, stack:
        print(stack_line(stack, connections, seconds, use_wrk) + f"; the ceiling app (bench/ceiling_app.py)"
              f" under the same settings is measured in turn with each cached catalog URL, {ROUNDS} rounds"
              f" (medians; the share is the median of the rounds' shares, so load from elsewhere on the"
              f" machine touches both sides of each one alike)")
        # A cookie of no live session: answered as to a guest, but rendered every time.
        rendered = {"Cookie": "session=" + "0" * 43}
        print(f"  {'public catalog read':34s} {'ceiling':>10s} {'guest (cached)':>16s} {'304 revalidated':>16s}"
              f" {'rendered':>16s}   cached / rendered as a share of the ceiling")
        shares, ceilings = [], []
        for label, path, headers in catalog:
            status, h, _b = stack.request("GET", path, headers=headers)
            if status != 200:
                print(f"  {label}: skipped (answers {status})")
                continue
            etag = next(v for k, v in h if k.lower() == "etag")
            rate(stack, path, 1, connections, headers, use_wrk)        # warm-up: every thread's connection
            tops, cached, notes = [], [], []
            for _round in range(ROUNDS):
                tops.append(rate(ceiling, "/", seconds, connections, {}, use_wrk)[0])
                r, _lat, note = rate(stack, path, seconds, connections, headers, use_wrk)
                cached.append(r)
                if note:
                    notes.append(note)
            figures = [statistics.median(cached)]
            for extra in ({"If-None-Match": etag}, rendered):
                r, _lat, note = rate(stack, path, seconds, connections, {**headers, **extra}, use_wrk)
                figures.append(r)
                if note and "non-2xx" not in note:
                    notes.append(note)
            top = statistics.median(tops)
            share = statistics.median(c / t for c, t in zip(cached, tops))
            shares.append(share)
            ceilings.append(top)
            print(f"  {label:34s} {top:6.0f} req/s {figures[0]:10.0f} req/s {figures[1]:10.0f} req/s"
                  f" {figures[2]:10.0f} req/s   {share:6.1%} / {figures[2] / top:6.1%}"
                  + (f"   ({'; '.join(notes)})" if notes else ""))
        if shares:
            print(f"  cached catalog reads: {min(shares):.1%} to {max(shares):.1%} of the ceiling"
                  f" (goal 33.3%); ceiling {min(ceilings):.0f} to {max(ceilings):.0f} req/s;"
                  f" load average {os.getloadavg()[0]:.1f}")
        for label, path, headers in others:
            if headers is None:
                headers = {"Cookie": session_cookie(stack, username, password) or ""}
            status, _h, _b = stack.request("GET", path, headers=headers)
            if status != 200:
                print(f"  {label}: skipped (answers {status})")
                continue
            r, latency, note = rate(stack, path, seconds, connections, headers, use_wrk)
            print(f"  {label:48s} {r:9.0f} req/s   avg latency {latency}" + (f"   ({note})" if note else ""))
    shutil.rmtree(tmp, ignore_errors=True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def worker_table(stack):
    return {w["pid"]: w["requests"] for w in stack.stats()["workers"]}


WARM_UP = 10_000


def main_memory(requests_per_worker, connections):
    """RSS of each uwsgi worker after a warm-up and after `requests_per_worker` more
    requests each, over a mix of cached, revalidated and rendered catalog pages and a
    signed-in API call."""
    if shutil.which("wrk") is None:
        sys.exit("--memory needs wrk (apt-get install wrk)")
    tmp = tempfile.mkdtemp(prefix="mkt-bench-mem-")
    db = fresh_database(tmp)
    username, password, store_uuid, item_uuid = seed(db)
    wait_settled(db)
    env = dict(SALTS, DB_DSN=db.dsn, ENV_FILE=os.path.join(tmp, "none.env"), LOG_LEVEL="WARNING",
               PROMETHEUS_MULTIPROC_DIR=os.path.join(tmp, "metrics"))
    stack = LongLivedStack(env=env, tmp=os.path.join(tmp, "app"))
    os.makedirs(stack.tmp)
    stack.env["SITE_URL"] = stack.base_url
    with stack:
        cookie = session_cookie(stack, username, password) or ""
        mix = [
            ("/api/items.php", {}), (f"/item.php?uuid={item_uuid}", {"Accept": "text/html"}),
            ("/marketplace.php", {"Accept": "text/html", "Cookie": "session=" + "0" * 43}),
            (f"/api/packages.php?item_uuid={item_uuid}", {"Cookie": "session=" + "0" * 43}),
            ("/api/auth-user.php", {"Cookie": cookie}),
            (f"/store.php?uuid={store_uuid}&offset=0", {"Accept": "text/html", "Cookie": cookie}),
        ]

        # Every item page of the catalog in turn (as a guest): the cache fills to its bounds.
        walk = os.path.join(tmp, "walk.lua")
        items = [r["uuid"] for r in db.query("SELECT uuid FROM items ORDER BY id")]
        with open(walk, "w", encoding="ascii") as f:
            f.write("local paths = {" + ", ".join(f'"/item.php?uuid={u}"' for u in items) + "}\n"
                    "local i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                    "  return wrk.format(\"GET\", paths[i])\nend\n")
        mix.append(("/", {"Accept": "text/html"}, walk))

        def load(until_each):
            i = 0
            while min(worker_table(stack).values()) < until_each:
                path, headers, *script = mix[i % len(mix)]
                wrk_rate(stack.base_url + path, 2, connections, headers, *script)
                i += 1

        load(WARM_UP)
        base = {pid: n for pid, n in worker_table(stack).items()}
        rss = {pid: [rss_kib(pid)] for pid in base}
        started = time.monotonic()
        steps = 4
        for step in range(1, steps + 1):
            load(max(base.values()) + requests_per_worker * step // steps)
            for pid in rss:
                rss[pid].append(rss_kib(pid) if pid in worker_table(stack) else None)
        elapsed = time.monotonic() - started
        end = worker_table(stack)
        print(f"uwsgi worker VmRSS (MiB) after {WARM_UP:,} warm-up requests, then every "
              f"{requests_per_worker // steps:,} of {requests_per_worker:,} requests each (max-requests and"
              f" reload-on-rss off; {len(mix)} URLs in turn, {elapsed:.0f} s):")
        for pid, values in sorted(rss.items()):
            if pid not in end or None in values:
                print(f"  worker {pid}: gone (respawned)")
                continue
            first, half, last = values[0], values[steps // 2], values[-1]
            print(f"  worker {pid}: {end[pid] - base[pid]:,} requests   "
                  + " -> ".join(f"{v / 1024:.1f}" for v in values)
                  + f"   whole run {last / first:.3f}x ({last - first:+,} KiB),"
                    f" second half {last / half:.3f}x ({last - half:+,} KiB)")
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    args = sys.argv[1:]
    if args and args[0] == "--memory":
        main_memory(int(args[1]) if len(args) > 1 else 100_000, 16)
        return
    plain = "--http" in args
    args = [a for a in args if a != "--http"]
    if plain and shutil.which("wrk") is None:
        raise SystemExit("--http measures with wrk (make bench-web installs it)")
    seconds = int(args[0]) if args else 3
    connections = int(args[1]) if len(args) > 1 else 16
    main_rates(seconds, connections, plain)


if __name__ == "__main__":
    main()
