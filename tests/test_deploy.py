"""The production deployment, for real (SPEC sections 3 and 9).

nginx and uwsgi run as child processes on free loopback ports with this project's
own deploy/nginx.conf and deploy/uwsgi.ini (rendered for a temporary directory and
a throw-away certificate, see deploy/localstack.py), on SQLite and on MariaDB, and
every check goes through nginx. `make deploy-deps` (part of `make test`) installs
nginx and uwsgi when missing; with CI=true their absence fails the run.

The secrets split runs deploy/install-prod.sh (paths in a temporary directory,
users created for the test and removed after) and shows the web user cannot read
the cron user's secrets file.
"""
import json
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

from deploy import deploytool
from deploy.localstack import ROOT, find_uwsgi
from lib import http as libhttp
from tests import stacks
from tests.conftest import IN_CI, missing
from tests.factories import make_user
from tests.stacks import settled_request_count

MNEMONIC = "test test test test test test test test test test test junk"
SPOOFED = "203.0.113.7"


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def stack(request):
    """nginx -> uwsgi -> app; yields (Stack, Db) with the Db the app uses."""
    # The .env the web process reads holds chain secrets by mistake: the web
    # loader's allow-list must keep them out (nothing else changes for the test).
    env_file = f"MNEMONIC={MNEMONIC}\nALCHEMY_API_KEY=secret-alchemy\nSITE_NAME=Deploy test\n"
    # The widest TRUSTED_PROXIES a sysadmin could set: even then a client's own
    # X-Forwarded-For must not reach the app (nginx replaces it).
    env = {"TRUSTED_PROXIES": "127.0.0.0/8"}
    # deploy/uwsgi.ini as it is (4 threads per worker), with 2 worker processes even on
    # a one-core machine, so that requests spreading over workers can be checked.
    with stacks.started(request, "mkt-deploy-", env=env, env_file=env_file, processes=2) as ([s], db):
        yield s, db


def header(headers, name):
    values = [v for k, v in headers if k.lower() == name.lower()]
    return values[0] if values else None


def headers_all(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


class Browser:
    """Cookies over one keep-alive HTTPS connection to nginx, from a chosen source address."""

    def __init__(self, stack, source="127.0.0.1"):
        self.stack = stack
        self.source = source
        self.cookies = {}

    def request(self, method, path, body=None, headers=None, form=None):
        headers = dict(headers or {})
        if form is not None:
            import urllib.parse
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        status, resp_headers, data = self.stack.request(method, path, body=body, headers=headers,
                                                        source=self.source)
        for value in headers_all(resp_headers, "set-cookie"):
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";")[0]
        return status, resp_headers, data


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


# --- pages, static files, TLS ------------------------------------------------------------
def test_page_through_nginx_and_uwsgi_with_security_headers(stack):
    s, _db = stack
    status, headers, body = s.request("GET", "/", headers={"Accept": "text/html"})
    assert status == 200
    assert header(headers, "content-type").startswith("text/html")
    assert b"<html" in body.lower()
    assert header(headers, "strict-transport-security").startswith("max-age=")
    # One copy of each header (nginx's; the app's copies are hidden), and the app's CSP.
    for name in ("x-frame-options", "x-content-type-options", "referrer-policy"):
        assert len(headers_all(headers, name)) == 1, (name, headers)
    assert header(headers, "x-frame-options") == "DENY"
    assert "default-src 'self'" in header(headers, "content-security-policy")
    assert header(headers, "server") == "nginx"  # server_tokens off: no version


def test_static_file_served_by_nginx_with_cache_headers(stack):
    s, _db = stack
    before = settled_request_count(s)
    status, headers, body = s.request("GET", "/static/style.css")
    assert status == 200
    with open(os.path.join(ROOT, "public", "static", "style.css"), "rb") as f:
        assert body == f.read()
    assert header(headers, "content-type") == "text/css; charset=utf-8"
    # nginx's week-long cache (the app's own fallback would say max-age=3600).
    assert header(headers, "cache-control") == "max-age=604800"
    assert header(headers, "expires")
    assert header(headers, "x-content-type-options") == "nosniff"
    etag = header(headers, "etag")
    status, _h, body = s.request("GET", "/static/style.css", headers={"If-None-Match": etag})
    assert status == 304 and body == b""
    status, _h, _b = s.request("GET", "/static/no-such-file.css")
    assert status == 404
    # uwsgi never saw these requests.
    assert settled_request_count(s) == before
    # Traversal is normalised by nginx (/wsgi.py, which the app does not serve).
    status, _h, body = s.request("GET", "/static/../wsgi.py")
    assert status == 404 and b"import" not in body


def test_plain_http_redirects_to_https_except_acme(stack):
    s, _db = stack
    status, headers, _b = s.request("GET", "/login.php?next=/x", https=False)
    assert status == 301
    assert header(headers, "location") == "https://127.0.0.1/login.php?next=/x"
    challenge = os.path.join(s.tmp, "acme", ".well-known", "acme-challenge", "tok123")
    with open(challenge, "w") as f:
        f.write("tok123.proof")
    status, _h, body = s.request("GET", "/.well-known/acme-challenge/tok123", https=False)
    assert (status, body) == (200, b"tok123.proof")


# --- API key, session + CSRF, client address ----------------------------------------------
def test_api_call_with_key(stack):
    s, db = stack
    user = make_user(db, unique("apikey"), role="vendor")
    status, headers, body = s.request("GET", "/api/auth-user.php", headers=user["headers"])
    assert status == 200, body
    data = json.loads(body)
    assert (data["username"], data["role"], data["user_uuid"]) == (user["username"], "vendor", user["uuid"])
    assert "csrf_token" not in data
    status, headers, body = s.request("GET", "/api/auth-user.php",
                                      headers={"Authorization": "Bearer " + "0" * 64})
    assert status == 401
    assert header(headers, "content-type").startswith("application/json")
    assert "error" in json.loads(body)


def test_session_login_and_csrf_protected_post(stack):
    s, db = stack
    user = make_user(db, unique("sess"))
    b = Browser(s)
    # The browser flow: the form's pre-session token, then the login.
    status, _h, page = b.request("GET", "/login.php", headers={"Accept": "text/html"})
    assert status == 200
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    status, headers, _b = b.request("POST", "/login.php", headers={"Accept": "text/html"},
                                    form={"username": user["username"],
                                          "password": user["password"], "csrf_token": token})
    assert status == 303, _b
    cookie = next(v for v in headers_all(headers, "set-cookie") if v.startswith("session="))
    assert "Secure" in cookie and "HttpOnly" in cookie
    status, _h, body = b.request("GET", "/api/auth-user.php")
    assert status == 200
    csrf_token = json.loads(body)["csrf_token"]
    # A state-changing POST by session with a browser signal needs the token...
    status, _h, body = b.request("POST", "/api/keys.php", form={"name": "no token"},
                                 headers={"Sec-Fetch-Site": "same-origin"})
    assert status == 403, body
    assert db.value("SELECT COUNT(*) FROM api_keys WHERE user_uuid = ? AND name = ?",
                    (user["uuid"], "no token")) == 0
    # ... and with it the key is created, and works for the API.
    status, _h, body = b.request("POST", "/api/keys.php",
                                 form={"name": "from session", "csrf_token": csrf_token})
    assert status == 200, body
    new_key = json.loads(body)["api_key"]
    status, _h, body = s.request("GET", "/api/auth-user.php",
                                 headers={"Authorization": f"Bearer {new_key}"})
    assert status == 200 and json.loads(body)["username"] == user["username"]


def test_app_sees_the_real_client_address_not_a_spoofed_one(stack):
    """nginx hands uwsgi the connecting address as REMOTE_ADDR and overwrites
    X-Forwarded-For / X-Real-IP; the login records the address the app saw."""
    s, db = stack
    user = make_user(db, unique("addr"))
    for source in ("127.0.0.2", "127.0.0.3"):
        b = Browser(s, source=source)
        status, _h, body = b.request("POST", "/login.php",
                                     headers={"X-Forwarded-For": SPOOFED, "X-Real-IP": SPOOFED},
                                     form={"username": user["username"],
                                           "password": user["password"]})
        assert status == 200, body
    ips = [r["ip"] for r in db.query(
        "SELECT ip FROM sessions WHERE user_uuid = ? ORDER BY id", (user["uuid"],))]
    assert ips == ["127.0.0.2", "127.0.0.3"]
    # A failed login is throttled per address: recorded under the real one too.
    b = Browser(s, source="127.0.0.4")
    status, _h, _b = b.request("POST", "/login.php", headers={"X-Forwarded-For": SPOOFED},
                               form={"username": user["username"], "password": "wrong-password"})
    assert status == 401
    rows = db.query("SELECT ip FROM login_attempts WHERE username_lower = ? AND success = 0",
                    (user["username"].lower(),))
    assert [r["ip"] for r in rows] == ["127.0.0.4"]


# --- limits ----------------------------------------------------------------------------------
def test_body_limit_is_one_mebibyte_everywhere(stack):
    s, db = stack
    limit = libhttp.MAX_BODY
    # Exactly the limit reaches the app (which answers: not logged in).
    status, _h, body = s.request("POST", "/api/keys.php", body=b"x" * limit,
                                 headers={"Content-Type": "application/octet-stream"})
    assert status == 401, body
    # One byte more: nginx answers 413 in the app's JSON error shape.
    status, headers, body = s.request("POST", "/api/keys.php", body=b"x" * (limit + 1),
                                      headers={"Content-Type": "application/json"})
    assert status == 413
    assert header(headers, "content-type") == "application/json"
    assert json.loads(body) == {"error": "request body larger than 1 MiB"}
    # Also without Content-Length (chunked): nginx counts.
    conn = s.connection()
    try:
        conn.request("POST", "/login.php", body=iter([b"y" * 65536] * 17),
                     headers={"Content-Type": "application/x-www-form-urlencoded"},
                     encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 413
        resp.read()
    finally:
        conn.close()


def test_limits_agree_between_nginx_uwsgi_and_the_app():
    with open(os.path.join(ROOT, "deploy", "uwsgi.ini")) as f:
        ini = f.read()
    with open(os.path.join(ROOT, "deploy", "nginx.conf")) as f:
        site = f.read()
    # uwsgi takes an image upload; nginx holds every other URL to MAX_BODY
    assert re.search(r"^limit-post = (\d+)$", ini, re.M).group(1) == str(libhttp.MAX_UPLOAD_BODY)
    assert re.search(r"client_max_body_size (\d+)m;", site).group(1) == str(libhttp.MAX_BODY >> 20)
    assert re.findall(r"client_max_body_size (\d+)m;", site)[1:] == [str(libhttp.MAX_UPLOAD_BODY >> 20)]
    harakiri = int(re.search(r"^harakiri = (\d+)$", ini, re.M).group(1))
    read_timeout = int(re.search(r"uwsgi_read_timeout (\d+)s;", site).group(1))
    assert read_timeout > harakiri


# --- concurrency -------------------------------------------------------------------------------
class HeldWriteLock:
    """Blocks the app's writes to `sessions` from outside (SQLite: the database write
    lock; MariaDB: LOCK TABLES) until release()."""

    def __init__(self, db):
        self.db = db
        if db.is_sqlite:
            self.conn = sqlite3.connect(db.params["path"], isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import pymysql
            p = db.params
            self.conn = pymysql.connect(host=p.get("host"), port=int(p.get("port", 3306)),
                                        user=db.user, password=db.password, database=p["dbname"])
            with self.conn.cursor() as cur:
                cur.execute("LOCK TABLES sessions WRITE")

    def release(self):
        if self.db.is_sqlite:
            self.conn.execute("ROLLBACK")
        else:
            with self.conn.cursor() as cur:
                cur.execute("UNLOCK TABLES")
        self.conn.close()


def busy_cores(stats):
    return sum(c.get("in_request", 0) for w in stats["workers"] for c in w.get("cores", []))


def test_workers_serve_requests_concurrently(stack):
    s, db = stack
    user = make_user(db, unique("conc"))
    results = {}
    lock = HeldWriteLock(db)
    try:
        def blocked_login():
            results["login"] = Browser(s).request(
                "POST", "/login.php", form={"username": user["username"],
                                            "password": user["password"]})

        thread = threading.Thread(target=blocked_login)
        thread.start()
        deadline = time.monotonic() + 15
        while busy_cores(s.stats()) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert busy_cores(s.stats()) >= 1, "the login never reached a uwsgi worker"
        # While that request waits inside uwsgi, others are answered.
        # (Read-only requests: an API key's use is a write, which the lock holds too.)
        for path in ("/", "/health.php"):
            status, _h, _b = s.request("GET", path)
            assert status == 200, (path, _b)
        assert thread.is_alive() and "login" not in results
    finally:
        lock.release()
    thread.join(30)
    assert results["login"][0] == 200, results["login"]

    # A burst of parallel requests is spread over both worker processes.
    def get_health(_):
        return s.request("GET", "/health.php")[0]

    from concurrent.futures import ThreadPoolExecutor
    for _attempt in range(5):
        before = {w["id"]: w["requests"] for w in s.stats()["workers"]}
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(get_health, range(48)))
        assert statuses == [200] * 48
        after = {w["id"]: w["requests"] for w in s.stats()["workers"]}
        served = [wid for wid in after if after[wid] > before.get(wid, 0)]
        if len(served) >= 2:
            break
    assert len(served) >= 2, after


# --- secrets split on disk ----------------------------------------------------------------------
APP_FILES = ("wsgi.py", ".env.example", "requirements-prod.txt", "lib/env.py", "cron/env.py",
             "deploy")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """deploy/install-prod.sh run for real, every path in a temporary directory, with
    users made for this run (removed afterwards)."""
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("the secrets split test creates system users: CI must run as root")
        pytest.skip("needs root (creates system users)")
    for tool in ("runuser", "useradd", "userdel"):
        if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
            missing(f"{tool} is not installed")
    base = tempfile.mkdtemp(prefix="mkt-install-")
    os.chmod(base, 0o755)
    app = os.path.join(base, "app")
    # A copy of what the web loader and the installer need, in a place every user can read
    # (the checkout itself may live under a private home directory).
    for rel in APP_FILES:
        src, dst = os.path.join(ROOT, rel), os.path.join(app, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    os.makedirs(os.path.join(app, ".venv", "bin"))
    os.symlink(find_uwsgi() or "/nonexistent/uwsgi", os.path.join(app, ".venv", "bin", "uwsgi"))
    # the unit starts uwsgi through deploy/clean_env.py with the venv's python
    os.symlink(os.path.realpath(sys.executable), os.path.join(app, ".venv", "bin", "python"))
    subprocess.run(["chmod", "-R", "a+rX", app], check=True)
    tag = f"{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
    web, cron = f"mktw{tag}", f"mktc{tag}"
    etc = os.path.join(base, "etc")
    env_file = os.path.join(app, ".env")
    # A .env as a developer might have it: chain secrets mixed in with the rest.
    with open(os.path.join(ROOT, ".env.example")) as f:
        example = f.read()
    example = example.replace("MNEMONIC=\n", f"MNEMONIC={MNEMONIC}\n")
    example = example.replace("ALCHEMY_API_KEY=\n", "ALCHEMY_API_KEY=alchemy-secret\n")
    example = example.replace("SESSION_SALT=\n", "SESSION_SALT=keep-this-salt\n")
    example += "RPC_URL_31337=http://127.0.0.1:8545\n"
    with open(env_file, "w") as f:
        f.write(example)
    cert_dir = os.path.join(base, "tls")
    os.makedirs(cert_dir)
    for name in ("fullchain.pem", "privkey.pem"):
        open(os.path.join(cert_dir, name), "w").close()
    nginx_group = "www-data" if subprocess.run(["getent", "group", "www-data"],
                                               capture_output=True).returncode == 0 else "nogroup"
    env = dict(os.environ, APP_DIR=app, SERVER_NAME="shop.example.test", WEB_USER=web,
               CRON_USER=cron, NGINX_GROUP=nginx_group, ENV_FILE=env_file, ETC_DIR=etc,
               SECRETS_FILE=os.path.join(etc, "secrets.env"),
               DATA_DIR=os.path.join(base, "data"), LOG_DIR=os.path.join(base, "log"),
               RUN_DIR=os.path.join(base, "run"),
               SYSTEMD_DIR=os.path.join(base, "systemd"),
               NGINX_SITES=os.path.join(base, "nginx", "sites-available"),
               NGINX_ENABLED=os.path.join(base, "nginx", "sites-enabled"),
               CRON_D=os.path.join(base, "cron.d"), LOGROTATE_D=os.path.join(base, "logrotate.d"),
               ACME_ROOT=os.path.join(base, "acme"),
               TLS_CERT=os.path.join(cert_dir, "fullchain.pem"),
               TLS_KEY=os.path.join(cert_dir, "privkey.pem"),
               INSTALL_PACKAGES="0", INSTALL_VENV="0", INIT_DB="0", START_SERVICES="0")
    try:
        result = subprocess.run(["bash", os.path.join(app, "deploy", "install-prod.sh")],
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        # Idempotent: a second run changes nothing and still succeeds.
        with open(os.path.join(etc, "secrets.env")) as f:
            first = f.read()
        again = subprocess.run(["bash", os.path.join(app, "deploy", "install-prod.sh")],
                               env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        with open(os.path.join(etc, "secrets.env")) as f:
            assert f.read() == first
        yield {"base": base, "app": app, "env": env, "web": web, "cron": cron,
               "env_file": env_file, "secrets": os.path.join(etc, "secrets.env")}
    finally:
        for user in (web, cron):
            subprocess.run(["userdel", user], capture_output=True)
            subprocess.run(["groupdel", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def as_user(user, *cmd, env=None):
    return subprocess.run([RUNUSER, "-u", user, "--", *cmd], capture_output=True, text=True,
                          env=env, timeout=60)


def test_install_prod_splits_the_secrets_out_of_the_web_env(installed):
    with open(installed["env_file"]) as f:
        web_env = f.read()
    assert MNEMONIC not in web_env and "alchemy-secret" not in web_env
    keys = [line.split("=", 1)[0] for line in web_env.splitlines()
            if line and not line.startswith("#")]
    assert not [k for k in keys if k != "SECRETS_FILE" and __import__("lib.env").env.is_blocked(k)]
    assert f"SECRETS_FILE={installed['secrets']}" in web_env.splitlines()
    assert "SESSION_SALT=keep-this-salt" in web_env  # the rest is left as it was
    with open(installed["secrets"]) as f:
        secrets = f.read().splitlines()
    assert f"MNEMONIC={MNEMONIC}" in secrets
    assert "ALCHEMY_API_KEY=alchemy-secret" in secrets
    assert "RPC_URL_31337=http://127.0.0.1:8545" in secrets

    st = os.stat(installed["secrets"])
    assert pwd.getpwuid(st.st_uid).pw_name == installed["cron"]
    assert st.st_mode & 0o777 == 0o600
    st = os.stat(installed["env_file"])
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o640)
    import grp
    assert grp.getgrgid(st.st_gid).gr_name == installed["web"]


def test_web_user_cannot_read_the_secrets_but_cron_user_can(installed):
    web, cron, secrets = installed["web"], installed["cron"], installed["secrets"]
    r = as_user(web, "cat", secrets)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert MNEMONIC not in r.stdout
    r = as_user(cron, "cat", secrets)
    assert r.returncode == 0 and f"MNEMONIC={MNEMONIC}" in r.stdout
    # Both read .env (database settings and salts).
    assert as_user(web, "cat", installed["env_file"]).returncode == 0
    assert as_user(cron, "cat", installed["env_file"]).returncode == 0
    # Nobody else does.
    r = as_user("nobody", "cat", installed["env_file"])
    assert r.returncode != 0


def test_web_loader_as_web_user_never_holds_the_mnemonic(installed):
    """The web process's own loader, run as the web user with the installed .env and a
    MNEMONIC inherited from its parent: no chain secret in its environment, and the
    secrets file cannot be opened."""
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
    code = (
        "import json, os, sys; sys.path.insert(0, os.getcwd()); from lib import env; env.load()\n"
        "out = {'mnemonic': os.environ.get('MNEMONIC'), 'alchemy': os.environ.get('ALCHEMY_API_KEY'),"
        " 'secrets_file': os.environ.get('SECRETS_FILE'), 'salt': os.environ.get('SESSION_SALT')}\n"
        "try:\n    open(sys.argv[1]).read(); out['read'] = True\n"
        "except PermissionError:\n    out['read'] = False\n"
        "print(json.dumps(out))\n")
    env = {"PATH": "/usr/bin:/bin", "ENV_FILE": installed["env_file"], "MNEMONIC": MNEMONIC,
           "SECRETS_FILE": installed["secrets"]}
    r = subprocess.run([RUNUSER, "-u", installed["web"], "--", python, "-c", code,
                        installed["secrets"]], cwd=installed["app"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out == {"mnemonic": None, "alchemy": None, "secrets_file": None,
                   "salt": "keep-this-salt", "read": False}
    # The cron loader, as the cron user, finds the mnemonic through SECRETS_FILE in .env.
    code = ("import os, sys; sys.path.insert(0, os.getcwd()); from cron import env;"
            " print(env.load()['MNEMONIC'])")
    r = subprocess.run([RUNUSER, "-u", installed["cron"], "--", python, "-c", code],
                       cwd=installed["app"], env={"PATH": "/usr/bin:/bin",
                                                  "ENV_FILE": installed["env_file"]},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == MNEMONIC


def test_install_prod_renders_every_config_file(installed):
    env = installed["env"]
    files = {
        "uwsgi": os.path.join(env["ETC_DIR"], "uwsgi.ini"),
        "unit": os.path.join(env["SYSTEMD_DIR"], "marketplace-uwsgi.service"),
        "site": os.path.join(env["NGINX_SITES"], "marketplace"),
        "cron": os.path.join(env["CRON_D"], "marketplace"),
        "logrotate": os.path.join(env["LOGROTATE_D"], "marketplace"),
    }
    text = {}
    for name, path in files.items():
        with open(path) as f:
            text[name] = f.read()
        assert not deploytool.PLACEHOLDER.search(text[name]), (name, text[name])
    assert os.path.realpath(os.path.join(env["NGINX_ENABLED"], "marketplace")) == files["site"]
    assert f"User={installed['web']}" in text["unit"]
    assert f"InaccessiblePaths=-{installed['secrets']}" in text["unit"]
    # uwsgi and cron read the installer's settings file, wherever ENV_FILE put it.
    assert f"Environment=ENV_FILE={installed['env_file']}" in text["unit"].splitlines()
    assert f"chown-socket = {installed['web']}:{env['NGINX_GROUP']}" in text["uwsgi"]
    cron_lines = [line for line in text["cron"].splitlines() if line.startswith("* * * * *")]
    assert len(cron_lines) == 1
    line = cron_lines[0]
    assert line.split()[5] == installed["cron"]
    assert f" ENV_FILE={installed['env_file']} " in line
    assert "CRON_LOCK_FILE" not in line and f">> {env['LOG_DIR']}/cron.log 2>&1" in line
    assert "server_name shop.example.test;" in text["site"]
    st = os.stat(env["DATA_DIR"])
    assert pwd.getpwuid(st.st_uid).pw_name == installed["web"] and st.st_mode & 0o7777 == 0o2770


def test_systemd_unit_is_valid(installed):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        missing("systemd-analyze is not installed (`make deploy-deps` installs systemd)")
    unit = os.path.join(installed["env"]["SYSTEMD_DIR"], "marketplace-uwsgi.service")
    r = subprocess.run([analyze, "verify", unit], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_render_refuses_missing_or_unknown_placeholders(tmp_path):
    template = tmp_path / "t.conf"
    template.write_text("root @ROOT@; port @PORT@;\n")
    out = tmp_path / "out.conf"
    with pytest.raises(SystemExit, match="@PORT@ has no value"):
        deploytool.render(str(template), str(out), {"ROOT": "/srv"})
    with pytest.raises(SystemExit, match="unknown placeholder"):
        deploytool.render(str(template), str(out), {"ROOT": "/srv", "PORT": "1", "PROT": "2"})
    deploytool.render(str(template), str(out), {"ROOT": "/srv", "PORT": "8"})
    assert out.read_text() == "root /srv; port 8;\n"


# --- item images: the app stores an upload, nginx serves it from MEDIA_DIR -----------
def _multipart(fields, files):
    boundary = "----deploy" + uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, (filename, data) in files.items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_uploaded_image_is_served_by_nginx_and_upload_limits_hold(stack):
    import io
    from PIL import Image
    from lib import catalog
    s, db = stack
    vendor = make_user(db, unique("img"))
    store = catalog.create_store(db, vendor, unique("st"), "images", True)
    item = catalog.create_item(db, vendor, store["uuid"], "pictured", "an item")
    picture = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 200)).save(picture, "JPEG")
    body, ctype = _multipart({"item_uuid": item["uuid"]}, {"image": ("a.jpg", picture.getvalue())})
    headers = dict(vendor["headers"], **{"Content-Type": ctype})
    status, _h, answer = s.request("POST", "/api/item-images.php", body=body, headers=headers)
    assert status == 200, answer
    image = json.loads(answer)["image"]
    stored = open(os.path.join(s.env["MEDIA_DIR"], "items", f"{image['uuid']}.jpg"), "rb").read()
    # served by nginx (its week-long cache), not by the app
    status, got_headers, got = s.request("GET", image["url"])
    assert status == 200 and got == stored
    assert header(got_headers, "content-type") == "image/jpeg"
    assert header(got_headers, "x-content-type-options") == "nosniff"
    assert "max-age=604800" in (header(got_headers, "cache-control") or "")
    assert s.request("GET", image["thumb_url"])[0] == 200
    for path in ("/media/items/", "/media/", "/media/items/.hidden", f"/media/items/{image['uuid']}.jpg.x.tmp"):
        assert s.request("GET", path)[0] in (403, 404), path
    # a 5.5 MB upload reaches the app through nginx and uwsgi, which refuses it by name
    body, ctype = _multipart({"item_uuid": item["uuid"]}, {"image": ("big.jpg", b"\xff" * 5_500_000)})
    status, _h, answer = s.request("POST", "/api/item-images.php", body=body,
                                   headers=dict(vendor["headers"], **{"Content-Type": ctype}))
    assert status == 400 and json.loads(answer)["error"] == "image: the file is larger than 5 MB"
    # over 6 MiB: nginx answers 413; elsewhere the 1 MiB limit still holds for multipart bodies
    body, ctype = _multipart({"item_uuid": item["uuid"]}, {"image": ("huge.jpg", b"\xff" * (6 * 1024 * 1024))})
    status, _h, answer = s.request("POST", "/api/item-images.php", body=body,
                                   headers=dict(vendor["headers"], **{"Content-Type": ctype}))
    assert status == 413 and json.loads(answer) == {"error": "request body larger than 6 MiB"}
    body, ctype = _multipart({"name": "x"}, {"image": ("a.jpg", b"\xff" * (2 * 1024 * 1024))})
    status, _h, _b = s.request("POST", "/api/items.php", body=body,
                               headers=dict(vendor["headers"], **{"Content-Type": ctype}))
    assert status == 413
    # the item edit page's upload form takes the same 6 MiB (an anonymous post reaches the app: 401)
    status, _h, _b = s.request("POST", "/item/edit.php", body=body, headers={"Content-Type": ctype})
    assert status == 401
    assert db.value("SELECT COUNT(*) FROM item_images WHERE item_uuid = ?", (item["uuid"],)) == 1
