"""Two-factor login with TOTP (codes made with pyotp), on SQLite and MariaDB."""
import re
import time

import pyotp

from lib import config, recovery, totp
from tests.client import Client
from tests.factories import login, make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

BROWSER = {"Accept": "text/html,application/xhtml+xml"}
PAGE = "/settings/two-factor.php"


def count(db, table, where="1=1", params=()):
    return db.value(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)


def code_at(secret, offset_steps=0):
    return pyotp.TOTP(secret).at(int(time.time()) + 30 * offset_steps)


def enroll(client, token):
    r = client.post(PAGE, data={"form": "begin", "csrf_token": token})
    assert r.status == 200, r
    body = r.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/") and body["secret"] in body["otpauth_uri"]
    r = client.post(PAGE, data={"form": "confirm", "otp": code_at(body["secret"]), "csrf_token": token})
    assert r.status == 200 and r.json() == {"enabled": True}, r
    return body["secret"]


def log_in(app, name, otp=None, headers=None):
    data = {"username": name, "password": "password123"}
    if otp is not None:
        data["otp"] = otp
    return Client(app).post("/login.php", data=data, headers=headers)


def test_enroll_needs_a_right_first_code_and_shows_a_qr(client, db, app):
    alice = make_user(db, "alice")
    token = login(client, "alice")
    page = client.get(PAGE, headers=BROWSER)
    assert page.status == 200 and 'id="totp-begin-form"' in page.text
    r = client.post(PAGE, data={"form": "begin", "csrf_token": token}, headers=BROWSER)
    assert r.status == 303
    page = client.get(PAGE, headers=BROWSER)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
    assert 'id="totp-qr" src="data:image/' in page.text
    wrong = client.post(PAGE, data={"form": "confirm", "otp": "000000" if code_at(secret) != "000000" else "111111",
                                    "csrf_token": token}, headers=BROWSER)
    assert wrong.status == 400 and not totp.enabled(db, alice["uuid"])
    # the form again, still showing the pending secret: no cache may keep it
    assert secret in wrong.text and wrong.header("Cache-Control") == "no-store"
    assert page.header("Cache-Control") == "no-store"
    assert log_in(app, "alice").status == 200          # not on until confirmed
    ok = client.post(PAGE, data={"form": "confirm", "otp": code_at(secret), "csrf_token": token}, headers=BROWSER)
    assert ok.status == 303 and totp.enabled(db, alice["uuid"])
    assert 'id="totp-disable-form"' in client.get(PAGE, headers=BROWSER).text
    assert count(db, "audit_log", "action = 'totp_enabled' AND user_uuid = ?", (alice["uuid"],)) == 1


def test_login_needs_otp_then_a_code_works_once(client, db, app):
    make_user(db, "alice")
    secret = enroll(client, login(client, "alice"))
    r = log_in(app, "alice")
    assert r.status == 401 and r.json()["otp_required"] is True and r.json()["error"]
    assert count(db, "login_attempts", "kind = 'login' AND username_lower = 'alice' AND success = 0") == 0
    wrong = log_in(app, "alice", "12345x")
    assert wrong.status == 401 and wrong.json()["otp_required"] is True
    # the confirming code's step cannot log in again; the next step's can, once
    last = int(db.value("SELECT totp_last_counter FROM users WHERE username = 'alice'"))
    assert log_in(app, "alice", pyotp.TOTP(secret).generate_otp(last)).status == 401
    nxt = pyotp.TOTP(secret).generate_otp(last + 1)
    assert log_in(app, "alice", nxt).status == 200
    assert log_in(app, "alice", nxt).status == 401      # replayed
    # a wrong password is still just a wrong password
    r = Client(app).post("/login.php", data={"username": "alice", "password": "wrong-pass", "otp": nxt})
    assert r.status == 401 and r.text.startswith("wrong username or password")


def test_browser_login_shows_the_otp_field(client, db, app):
    make_user(db, "alice")
    enroll(client, login(client, "alice"))
    c = Client(app)
    form = c.get("/login.php", headers=BROWSER)
    assert 'name="otp"' in form.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = c.post("/login.php", data={"username": "alice", "password": "password123", "csrf_token": csrf},
               headers=BROWSER)
    assert r.status == 401 and 'name="otp"' in r.text and "two-factor code required" in r.text


def test_a_recovery_code_works_in_place_of_a_code_once(client, db, app):
    alice = make_user(db, "alice")
    codes = recovery.issue_codes(db, alice["uuid"])
    enroll(client, login(client, "alice"))
    assert log_in(app, "alice", codes[0]).status == 200
    assert log_in(app, "alice", codes[0]).status == 401
    assert recovery.codes_left(db, alice["uuid"]) == 9


def test_disable_needs_a_code(client, db, app):
    alice = make_user(db, "alice")
    token = login(client, "alice")
    secret = enroll(client, token)
    r = client.post(PAGE, data={"form": "disable", "otp": "not-a-code", "csrf_token": token})
    assert r.status == 400 and totp.enabled(db, alice["uuid"])
    r = client.post(PAGE, data={"form": "disable", "otp": code_at(secret, 1), "csrf_token": token})
    assert r.status == 200 and r.json() == {"enabled": False}
    assert log_in(app, "alice").status == 200
    assert db.value("SELECT totp_secret FROM users WHERE uuid = ?", (alice["uuid"],)) is None
    assert client.post(PAGE, data={"form": "bogus", "csrf_token": token}).status == 400


def test_config_sends_staff_without_2fa_to_enroll(client, db, app):
    mod = make_user(db, "mod", role="staff")
    make_user(db, "alice")
    token = login(client, "mod")
    assert client.get("/staff/users.php", headers=BROWSER).status == 200
    config.set_values(db, {"require_2fa_for_staff": "1"})
    r = client.get("/staff/users.php", headers=BROWSER)
    assert r.status == 303 and r.header("Location") == PAGE
    assert client.get("/settings/user.php", headers=BROWSER).status == 303
    assert client.post("/staff/users.php", data={"user_uuid": "x", "banned": "1", "csrf_token": token}).status == 403
    page = client.get(PAGE, headers=BROWSER)
    assert page.status == 200 and 'id="two-factor-required"' in page.text
    # an API key is unaffected; a customer too
    assert Client(app).get("/staff/users.php", headers=mod["headers"]).status == 200
    c = Client(app)
    login(c, "alice")
    assert c.get("/settings/user.php", headers=BROWSER).status == 200
    enroll(client, token)
    assert client.get("/staff/users.php", headers=BROWSER).status == 200


def test_config_key_is_a_bool(db):
    assert config.validate("require_2fa_for_staff", " 1 ") == "1"
    assert config.validate("require_2fa_for_staff", "0") == "0"
    for bad in ("2", "true", ""):
        try:
            config.validate("require_2fa_for_staff", bad)
        except config.ConfigError:
            pass
        else:
            raise AssertionError(f"{bad!r} accepted")


def test_one_code_logs_in_once_under_concurrency(live_server, client, db):
    from tests.concurrency import at_once, post
    make_user(db, "alice")
    secret = enroll(client, login(client, "alice"))
    last = int(db.value("SELECT totp_last_counter FROM users WHERE username = 'alice'"))
    code = pyotp.TOTP(secret).generate_otp(last + 1)
    results = at_once(5, lambda i: post(live_server + "/login.php",
                                        {"username": "alice", "password": "password123", "otp": code}))
    assert results == [200] + [401] * 4   # 5 threads: within the per-username-and-IP limit
