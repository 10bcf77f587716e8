"""Sessions shared by two server processes on one database, and the admin CLI
(`make create-admin`, the first-admin step of `make run`). SQLite and MariaDB."""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from lib import users
from tests.conftest import ROOT, free_port
from tests.factories import make_user


def child_env(db, **extra):
    env = dict(os.environ)
    env.update({"ENV_FILE": os.path.join(ROOT, "tests", "no-such.env"), "DB_DSN": db.dsn,
                "DB_DRIVER": "sqlite" if db.is_sqlite else "mysql",
                "DB_USER": db.user or "", "DB_PASSWORD": db.password or "",
                "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"})
    env.pop("ADMIN_PASSWORD", None)
    env.update(extra)
    return env


def call(url, data=None, headers=None):
    body = None
    headers = dict(headers or {})
    if data is not None:
        body = urllib.parse.urlencode(data).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


@pytest.fixture
def two_servers(db):
    procs, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            proc = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=child_env(db, PORT=str(port)),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs):
            deadline = time.time() + 30
            while True:
                try:
                    if call(url + "/")[0] == 200:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"server {url} did not start: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_session_is_shared_by_two_server_processes(two_servers, db):
    a, b = two_servers
    user = make_user(db, "alice")
    status, headers, text = call(a + "/login.php", {"username": "alice", "password": "password123"})
    assert status == 200 and text == "Logged in as alice"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("session=")

    status, _h, text = call(b + "/api/auth-user.php", headers={"Cookie": cookie})
    assert status == 200
    me = json.loads(text)
    assert me["user_uuid"] == user["uuid"] and me["username"] == "alice"
    token = me["csrf_token"]

    # a state-changing call on process B with the session made on A
    status, _h, text = call(b + "/api/keys.php", {"name": "from-b"}, {"Cookie": cookie, "X-CSRF-Token": token})
    assert status == 200 and json.loads(text)["name"] == "from-b"
    status, _h, _t = call(b + "/api/keys.php", {"name": "no-token"}, {"Cookie": cookie, "Origin": b})
    assert status == 403

    # logout on B ends the session on A too
    status, _h, text = call(b + "/logout.php", {"csrf_token": token}, {"Cookie": cookie})
    assert status == 200 and text == "Logged out"
    assert call(a + "/api/auth-user.php", headers={"Cookie": cookie})[0] == 401
    assert db.value("SELECT COUNT(*) FROM sessions") == 0


def run_cli(db, *args, **env):
    return subprocess.run([sys.executable, "-m", "lib.users", *args], cwd=ROOT, env=child_env(db, **env),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_create_admin_cli_with_password_from_environment(db):
    out = run_cli(db, "create-admin", "boss", ADMIN_PASSWORD="a-long-secret")
    assert out.returncode == 0, out.stderr
    assert "created admin boss" in out.stdout and "a-long-secret" not in out.stdout
    assert users.authenticate(db, "boss", "a-long-secret")["role"] == "admin"
    # again: the existing user keeps its uuid and gets the new password
    out = run_cli(db, "create-admin", "BOSS", ADMIN_PASSWORD="another-secret")
    assert out.returncode == 0 and "updated admin boss" in out.stdout
    assert db.value("SELECT COUNT(*) FROM users") == 1
    assert users.authenticate(db, "boss", "another-secret")["role"] == "admin"


@pytest.mark.parametrize("name, password, needle", [
    ("boss", "short", "at least 8"),
    ("<bad name>", "a-long-secret", "letters, digits"),
])
def test_create_admin_cli_bad_input(db, name, password, needle):
    out = run_cli(db, "create-admin", name, ADMIN_PASSWORD=password)
    assert out.returncode == 1 and needle in out.stderr
    assert db.value("SELECT COUNT(*) FROM users") == 0


def test_create_admin_cli_without_password_and_terminal_fails_cleanly(db):
    out = run_cli(db, "create-admin", "boss")
    assert out.returncode == 1 and "ADMIN_PASSWORD" in out.stderr
    assert db.value("SELECT COUNT(*) FROM users") == 0


def test_first_admin_prints_password_once(db):
    out = run_cli(db, "first-admin")
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("Password (shown only this once): "))
    password = line.split(": ", 1)[1]
    assert users.authenticate(db, "admin", password)["role"] == "admin"
    again = run_cli(db, "first-admin")
    assert again.returncode == 0 and again.stdout == ""
    assert db.value("SELECT COUNT(*) FROM users WHERE role = 'admin'") == 1


def test_first_admin_leaves_existing_admins_alone(db):
    make_user(db, "root", role="admin")
    out = run_cli(db, "first-admin")
    assert out.returncode == 0 and out.stdout == ""
    assert db.value("SELECT COUNT(*) FROM users") == 1


def test_first_admin_avoids_a_taken_name(db):
    make_user(db, "admin", role="customer")
    out = run_cli(db, "first-admin")
    assert out.returncode == 0
    row = db.one("SELECT * FROM users WHERE role = 'admin'")
    assert row["username"].startswith("admin-")
    assert db.value("SELECT role FROM users WHERE username = 'admin'") == "customer"


def make_env(db, tmp_path, **extra):
    """The environment for a `make` target in the checkout that touches neither its .env
    (ENV_FILE names a file in tmp_path, created by the target's `.env` step) nor db/."""
    return child_env(db, ENV_FILE=str(tmp_path / "test.env"), MAKEFLAGS="", **extra)


def checkout_env_file():
    path = os.path.join(ROOT, ".env")
    return open(path, "rb").read() if os.path.exists(path) else None


def test_make_create_admin_end_to_end(db, tmp_path):
    env = make_env(db, tmp_path, ADMIN_PASSWORD="make-secret-1")
    dot_env = checkout_env_file()
    out = subprocess.run(["make", "-s", "create-admin", "ADMIN_USER=boss"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "created admin boss" in out.stdout and "make-secret-1" not in out.stdout + out.stderr
    assert checkout_env_file() == dot_env  # the .env step wrote ENV_FILE, not the checkout's .env
    assert users.authenticate(db, "boss", "make-secret-1")["role"] == "admin"
    # without a password and without a terminal: a clear error, nothing changed
    env.pop("ADMIN_PASSWORD")
    out = subprocess.run(["make", "-s", "create-admin", "ADMIN_USER=other"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert out.returncode != 0 and "set ADMIN_PASSWORD" in out.stderr
    assert [r["username"] for r in db.query("SELECT username FROM users")] == ["boss"]


def make_run_until_serving(db, tmp_path):
    """`make run` until the server answers; then Ctrl-C. Returns its output."""
    import signal
    port = free_port()
    proc = subprocess.Popen(["make", "-s", "run"], cwd=ROOT, env=make_env(db, tmp_path, PORT=str(port)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if call(f"http://127.0.0.1:{port}/")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.time() < deadline, "make run did not serve"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    return output


def test_first_make_run_prints_the_admin_password_once(db, tmp_path):
    first = make_run_until_serving(db, tmp_path)
    line = next((l for l in first.splitlines() if l.startswith("Password (shown only this once): ")), None)
    assert line, first
    assert users.authenticate(db, "admin", line.split(": ", 1)[1])["role"] == "admin"
    second = make_run_until_serving(db, tmp_path)
    assert "Password" not in second and "First admin" not in second
    assert db.value("SELECT COUNT(*) FROM users WHERE role = 'admin'") == 1
