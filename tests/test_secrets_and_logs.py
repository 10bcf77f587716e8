"""No web process has a chain secret in /proc/PID/environ
(dev server and uwsgi), and an API key given as ?token= never reaches a log (the dev
server's request log, nginx's access log, uwsgi's request lines)."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from tests.conftest import ROOT, free_port, missing

SECRETS = {"MNEMONIC": "test test test test test test test test test test test junk",
           "ALCHEMY_API_KEY": "alchemy-secret", "RPC_URL_1": "http://127.0.0.1:1/rpc-secret",
           "COMMISSION_WALLET_MAINNET": "0x52908400098527886E0F7030069857D2E4169EE7"}
KEY = "ab" * 32  # shaped like an API key (unknown: the request gets 401)


def new_database(path):
    from lib import db as dbmod, migrate
    db = dbmod.Db(f"sqlite:{path}")
    migrate.init(db)
    db.close()
    return f"sqlite:{path}"


def environ_of(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return {item.split(b"=", 1)[0].decode() for item in f.read().split(b"\0") if item}


def wait_for_port(port, proc, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def test_dev_server_reexecs_without_secrets_and_redacts_its_log(tmp_path):
    import urllib.error
    import urllib.request
    port = free_port()
    env = dict(SECRETS, PATH=os.environ["PATH"], PORT=str(port), DB_DSN=new_database(tmp_path / "x.sqlite"),
               ENV_FILE=str(tmp_path / "none.env"), LOG_LEVEL="INFO")
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port(port, proc), (tmp_path / "server.log").read_text()
        names = environ_of(proc.pid)  # the same process after the exec
        assert not names & set(SECRETS), names
        for path in (f"/api/auth-user.php?token={KEY}", f"/api/auth-user.php?a=1&token={KEY}&b=2",
                     "/static/%00.css"):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
            except urllib.error.HTTPError as e:
                assert e.code in (401, 404)
        time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    text = (tmp_path / "server.log").read_bytes()
    assert KEY.encode() not in text and b"token=REDACTED" in text, text
    assert b"\x00" not in text
    assert b"restarting without" in text


@pytest.fixture
def stack_tmp():
    from deploy import localstack
    if not localstack.find_nginx() or not localstack.find_uwsgi():
        missing("nginx and .venv/bin/uwsgi are needed (make deploy-deps)")
    tmp = tempfile.mkdtemp(prefix="mkt-secrets-")
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def test_uwsgi_has_no_secrets_and_no_log_has_the_key(stack_tmp):
    from deploy.localstack import Stack
    tmp = stack_tmp
    # The documented local settings file: also log 4xx request lines, to see what uwsgi writes.
    with open(os.path.join(tmp, "uwsgi-local.ini"), "w") as f:
        f.write("[uwsgi]\nlog-4xx = true\n")
    env = dict(SECRETS, DB_DSN=new_database(os.path.join(tmp, "x.sqlite")), ENV_FILE=os.path.join(tmp, "none.env"),
               SESSION_SALT="s" * 32, CSRF_SALT="c" * 32, COOKIE_ENCRYPTION_SALT="e" * 32)
    stack = Stack(env=env, tmp=tmp)
    stack.start()
    try:
        for path in (f"/api/auth-user.php?token={KEY}", f"/api/auth-user.php?x=1&token={KEY}&token={KEY}",
                     f"/payments.php?token={KEY}"):
            status, _headers, _body = stack.request("GET", path, headers={"Referer": stack.base_url + path})
            assert status in (401, 303), (path, status)
        pids = [stack.uwsgi_proc.pid] + [w["pid"] for w in stack.stats()["workers"]]
        assert len(pids) >= 2
        for pid in pids:
            names = environ_of(pid)
            assert not names & set(SECRETS), (pid, names)
        time.sleep(0.5)
    finally:
        stack.stop()
    access = open(os.path.join(tmp, "nginx-access.log"), "rb").read()
    uwsgi_log = open(os.path.join(tmp, "uwsgi.log"), "rb").read()
    assert b"auth-user.php" in access and b"token=REDACTED" in access, access
    assert b"auth-user.php" in uwsgi_log and b"token=REDACTED" in uwsgi_log, uwsgi_log
    for text in (access, uwsgi_log):
        assert KEY.encode() not in text


def test_uwsgi_started_with_a_secret_refuses_to_run(stack_tmp):
    """Started without deploy/clean_env.py (by hand, with a secret exported): uwsgi stops."""
    from deploy.localstack import Stack
    tmp = stack_tmp
    stack = Stack(env={"DB_DSN": f"sqlite:{tmp}/x.sqlite"}, tmp=tmp)
    stack.render()
    env = dict(SECRETS, PATH=os.environ["PATH"], DB_DSN=f"sqlite:{tmp}/x.sqlite",
               ENV_FILE=os.path.join(tmp, "none.env"))
    proc = subprocess.run([stack.uwsgi, "--ini", stack.uwsgi_ini], cwd=ROOT, env=env,
                          capture_output=True, timeout=60)
    out = proc.stdout + proc.stderr
    # The app stops the whole instance (SIGINT to the master): uwsgi has ended, whatever
    # exit status its shutdown path reports, and it said why.
    assert b"refusing to start" in out and b"MNEMONIC" in out, out
