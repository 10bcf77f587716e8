"""Registration, login, logout, sessions, CSRF and bad input (SPEC section 4), on both databases."""
import datetime
import hashlib
import hmac
import os
import re

import pytest

from lib import users
from lib.db import parse_time
from tests.client import Client
from tests.factories import login, make_user

BROWSER = {"Accept": "text/html,application/xhtml+xml"}


def form_token(result):
    m = re.search(r'name="csrf_token" value="([^"]+)"', result.text)
    assert m, result.text[:500]
    return m.group(1)


def count(db, table, where="1=1", params=()):
    return db.value(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)


# -- registration ----------------------------------------------------------------

def test_register_api_client_gets_text_and_a_session(client, db):
    r = client.post("/register.php", data={"username": "Alice", "password": "password123"})
    assert r.status == 200
    assert r.text == "Registered as Alice"
    row = db.one("SELECT * FROM users WHERE username = 'Alice'")
    assert row["role"] == "customer" and row["banned"] == 0 and row["username_lower"] == "alice"
    assert row["inviter_uuid"] is None
    # hashed with scrypt, parameters stored with the hash, per-user salt
    scheme, n, r_, p, salt, digest = row["password_hash"].split("$")
    assert (scheme, int(n), int(r_), int(p)) == ("scrypt", users.SCRYPT_N, users.SCRYPT_R, users.SCRYPT_P)
    assert "password123" not in row["password_hash"]
    assert hashlib.scrypt(b"password123", salt=bytes.fromhex(salt), n=int(n), r=int(r_), p=int(p),
                          dklen=len(digest) // 2, maxmem=64 * 1024 * 1024).hex() == digest
    me = client.get("/api/auth-user.php").json()
    assert me["username"] == "Alice" and me["role"] == "customer" and me["user_uuid"] == row["uuid"]
    assert count(db, "audit_log", "action = 'register' AND user_uuid = ?", (row["uuid"],)) == 1


def test_same_password_gets_different_salts(db):
    a = users.create_user(db, "a1", "password123")
    b = users.create_user(db, "b1", "password123")
    ha = db.value("SELECT password_hash FROM users WHERE uuid = ?", (a["uuid"],))
    hb = db.value("SELECT password_hash FROM users WHERE uuid = ?", (b["uuid"],))
    assert ha.split("$")[4] != hb.split("$")[4] and ha != hb


def test_register_json_body(client, db):
    r = client.post("/register.php", json_body={"username": "j.son-_1", "password": "password123"})
    assert r.status == 200 and r.text == "Registered as j.son-_1"


def test_register_browser_gets_codes_page_with_form_token(client, db):
    form = client.get("/register.php", headers=BROWSER)
    assert form.status == 200 and form.header("Content-Type").startswith("text/html")
    assert 'name="username"' in form.text and 'name="password"' in form.text
    token = form_token(form)
    r = client.post("/register.php", data={"username": "bob", "password": "password123",
                                            "csrf_token": token}, headers=BROWSER)
    # the one page showing the new recovery codes, then on to the marketplace
    assert r.status == 200 and 'href="/marketplace.php" id="codes-continue"' in r.text
    assert len(re.findall(r"<code>[A-Z2-7]{4}(?:-[A-Z2-7]{4}){3}</code>", r.text)) == 10
    assert "session" in client.cookies
    assert client.get("/api/auth-user.php").json()["username"] == "bob"


def test_register_with_invite_sets_inviter(client, db):
    inviter = make_user(db, "Inviter")
    r = client.post("/register.php", data={"username": "newbie", "password": "password123",
                                            "invite": "inviter"})
    assert r.status == 200
    assert db.value("SELECT inviter_uuid FROM users WHERE username = 'newbie'") == inviter["uuid"]


def test_register_unknown_invite_is_400_and_writes_nothing(client, db):
    r = client.post("/register.php", data={"username": "newbie", "password": "password123",
                                            "invite": "nobody"})
    assert r.status == 400 and "invite" in r.text
    assert count(db, "users") == 0


def test_register_duplicate_name_case_insensitive_is_409(client, db):
    make_user(db, "Carol")
    r = client.post("/register.php", data={"username": "cAROL", "password": "password123"})
    assert r.status == 409 and "taken" in r.text
    assert count(db, "users") == 1


def test_register_invite_prefilled_and_escaped(client, db):
    r = client.get("/register.php?invite=%3Cscript%3Ex", headers=BROWSER)
    assert r.status == 200
    assert "<script>x" not in r.text and "&lt;script&gt;x" in r.text


@pytest.mark.parametrize("data, status, needle", [
    ({"username": "", "password": "password123"}, 400, "username is required"),
    ({"password": "password123"}, 400, "username is required"),
    ({"username": "bob"}, 400, "password is required"),
    ({"username": "bob", "password": ""}, 400, "password is required"),
    ({"username": "x" * 17, "password": "password123"}, 400, "longer than 16"),
    ({"username": "bob", "password": "short7!"}, 400, "at least 8"),
    ({"username": "bob", "password": "p" * 1025}, 400, "longer than 1024"),
    ({"username": "bob'; DROP TABLE users;--", "password": "password123"}, 400, "longer than 16"),
    ({"username": "a'or'1'='1", "password": "password123"}, 400, "letters, digits"),
    ({"username": "<b>x</b>", "password": "password123"}, 400, "letters, digits"),
    ({"username": "a b", "password": "password123"}, 400, "letters, digits"),
    ({"username": "émile", "password": "password123"}, 400, "letters, digits"),
    ({"username": "a\x00b", "password": "password123"}, 400, "letters, digits"),
    ({"username": "bob", "password": "password123", "invite": "<script>"}, 400, "invite"),
    ({"username": "bob", "password": "password123", "invite": "y" * 40}, 400, "invite"),
])
def test_register_bad_input_is_4xx_and_writes_nothing(client, db, data, status, needle):
    r = client.post("/register.php", data=data)
    assert r.status == status, r
    assert needle in r.text
    assert count(db, "users") == 0 and count(db, "sessions") == 0
    assert "users" in db.tables()


@pytest.mark.parametrize("body", [
    {"username": ["a"], "password": "password123"},
    {"username": 12345, "password": 12345678},
    {"username": "bob", "password": {"x": 1}},
    {"username": None, "password": "password123"},
])
def test_register_json_wrong_types_are_400(client, db, body):
    r = client.post("/register.php", json_body=body)
    assert r.status == 400, r
    assert count(db, "users") == 0


def test_register_non_utf8_body_is_400(client, db):
    r = client.request("POST", "/register.php", body=b"username=\xff\xfe&password=password123",
                       content_type="application/x-www-form-urlencoded")
    assert r.status == 400 and "UTF-8" in r.text
    r = client.request("POST", "/register.php", body=b"username=%FF%FE&password=password123",
                       content_type="application/x-www-form-urlencoded")
    assert r.status == 400
    assert count(db, "users") == 0


def test_register_huge_body_is_413(client, db):
    big = b"username=bob&password=" + b"p" * (1024 * 1024 + 10)
    r = client.request("POST", "/register.php", body=big, content_type="application/x-www-form-urlencoded")
    assert r.status == 413
    assert count(db, "users") == 0


def test_register_malformed_json_is_400(client, db):
    r = client.request("POST", "/register.php", body=b"{nope", content_type="application/json")
    assert r.status == 400 and count(db, "users") == 0


def test_register_browser_error_reshows_form_escaped(client, db):
    token = form_token(client.get("/register.php", headers=BROWSER))
    r = client.post("/register.php", data={"username": "<i>bad</i>", "password": "password123",
                                            "csrf_token": token}, headers=BROWSER)
    assert r.status == 400 and r.header("Content-Type").startswith("text/html")
    assert "<i>bad</i>" not in r.text and "&lt;i&gt;bad&lt;/i&gt;" in r.text
    assert "letters, digits" in r.text
    assert count(db, "users") == 0


def test_registrations_limited_per_ip(app, db):
    c = Client(app, remote_addr="10.0.0.1")
    for i in range(users.REGISTRATIONS_PER_IP):
        assert c.post("/register.php", data={"username": f"u{i}", "password": "password123"}).status == 200
    r = c.post("/register.php", data={"username": "onemore", "password": "password123"})
    assert r.status == 429 and r.header("Retry-After")
    assert count(db, "users") == users.REGISTRATIONS_PER_IP
    # another address is not affected
    other = Client(app, remote_addr="10.0.0.2")
    assert other.post("/register.php", data={"username": "onemore", "password": "password123"}).status == 200


def test_registration_attempts_limited_per_name(app, db):
    make_user(db, "taken")
    for i in range(users.REGISTRATIONS_PER_USERNAME):
        c = Client(app, remote_addr=f"10.3.0.{i + 1}")
        assert c.post("/register.php", data={"username": "TAKEN", "password": "password123"}).status == 409
    c = Client(app, remote_addr="10.3.1.1")
    r = c.post("/register.php", data={"username": "taken", "password": "password123"})
    assert r.status == 429 and r.header("Retry-After")
    assert c.post("/register.php", data={"username": "free", "password": "password123"}).status == 200


# -- login -------------------------------------------------------------------------

def test_login_api_client(client, db):
    make_user(db, "dave")
    r = client.post("/login.php", data={"username": "DAVE", "password": "password123"})
    assert r.status == 200 and r.text == "Logged in as dave"
    cookie = r.header("Set-Cookie")
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    row = db.one("SELECT * FROM audit_log WHERE action = 'login'")
    assert row["target"] == "dave" and row["ip"] == "127.0.0.1"


@pytest.mark.parametrize("settings", [{"SITE_URL": "https://shop.example"}])
def test_session_cookie_secure_when_site_is_https(client, db):
    make_user(db, "dave")
    r = client.post("/login.php", data={"username": "dave", "password": "password123"})
    assert r.status == 200 and "Secure" in r.header("Set-Cookie")


def test_login_browser_303_and_next(client, db):
    make_user(db, "erin")
    token = form_token(client.get("/login.php", headers=BROWSER))
    r = client.post("/login.php", data={"username": "erin", "password": "password123", "csrf_token": token,
                                         "next": "/payments.php?x=1"}, headers=BROWSER)
    assert r.status == 303 and r.header("Location") == "/payments.php?x=1"


@pytest.mark.parametrize("nxt", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_login_next_never_leaves_the_site(client, db, nxt):
    make_user(db, "erin")
    token = form_token(client.get("/login.php", headers=BROWSER))
    r = client.post("/login.php", data={"username": "erin", "password": "password123", "csrf_token": token,
                                         "next": nxt}, headers=BROWSER)
    assert r.status == 303 and r.header("Location") == "/marketplace.php"


def test_login_wrong_password_and_unknown_user_are_401(client, db):
    make_user(db, "frank")
    r = client.post("/login.php", data={"username": "frank", "password": "wrong-password"})
    assert r.status == 401 and "wrong username or password" in r.text
    r2 = client.post("/login.php", data={"username": "nobody", "password": "password123"})
    assert r2.status == 401 and r2.text == r.text
    assert "session" not in client.cookies and count(db, "sessions") == 0
    rows = db.query("SELECT * FROM audit_log WHERE action = 'login_failed' ORDER BY id")
    assert [r["detail"] for r in rows] == ["wrong password", "unknown user"]
    assert count(db, "login_attempts", "kind = 'login' AND success = 0") == 2


def test_login_browser_failure_reshows_form(client, db):
    make_user(db, "frank")
    token = form_token(client.get("/login.php", headers=BROWSER))
    r = client.post("/login.php", data={"username": "frank", "password": "wrong-password",
                                         "csrf_token": token}, headers=BROWSER)
    assert r.status == 401 and "wrong username or password" in r.text and 'name="csrf_token"' in r.text
    assert 'value="frank"' in r.text


def test_banned_user_cannot_log_in(client, db):
    make_user(db, "gina", banned=True)
    r = client.post("/login.php", data={"username": "gina", "password": "password123"})
    assert r.status == 403 and "banned" in r.text
    assert count(db, "sessions") == 0
    # the wrong password still says only "wrong": a ban is not revealed to guessers
    assert client.post("/login.php", data={"username": "gina", "password": "nope-nope"}).status == 401


@pytest.mark.parametrize("data", [
    {"username": "", "password": "password123"},
    {"username": "hank"},
    {"username": "h" * 17, "password": "password123"},
    {"username": "hank' OR 1=1--", "password": "password123"},
    {"username": "hank", "password": "p" * 1025},
])
def test_login_bad_input_is_400_and_writes_nothing(client, db, data):
    make_user(db, "hank")
    r = client.post("/login.php", data=data)
    assert r.status == 400, r
    assert count(db, "sessions") == 0 and count(db, "login_attempts") == 0


def test_failed_logins_limited_per_username_from_one_ip(app, db):
    make_user(db, "ivan")
    c = Client(app, remote_addr="10.1.0.1")
    for i in range(users.LOGIN_FAILS_PER_USERNAME_IP):
        assert c.post("/login.php", data={"username": "ivan", "password": "wrong-pass"}).status == 401
    r = c.post("/login.php", data={"username": "ivan", "password": "password123"})
    assert r.status == 429 and int(r.header("Retry-After")) > 0
    assert count(db, "sessions") == 0
    # the stranger locked out only themselves: ivan elsewhere and other users are unaffected
    assert Client(app, remote_addr="10.1.1.1").post(
        "/login.php", data={"username": "ivan", "password": "password123"}).status == 200
    make_user(db, "jane")
    assert c.post("/login.php", data={"username": "jane", "password": "password123"}).status == 200


def test_failed_logins_from_many_ips_spare_the_users_known_address(app, db, monkeypatch):
    monkeypatch.setattr(users, "LOGIN_FAILS_PER_USERNAME", 8)  # as the real 50, with fewer requests
    make_user(db, "ivan")
    home = Client(app, remote_addr="10.9.9.9")
    assert home.post("/login.php", data={"username": "ivan", "password": "password123"}).status == 200
    for i in range(users.LOGIN_FAILS_PER_USERNAME):
        c = Client(app, remote_addr=f"10.1.{i // 200}.{i % 200 + 1}")
        assert c.post("/login.php", data={"username": "ivan", "password": "wrong-pass"}).status == 401
    # a distributed guesser is slowed down: a new address gets 429 ...
    r = Client(app, remote_addr="10.3.0.1").post("/login.php", data={"username": "ivan", "password": "password123"})
    assert r.status == 429
    # ... but ivan at the address he logged in from before is not locked out
    assert Client(app, remote_addr="10.9.9.9").post(
        "/login.php", data={"username": "ivan", "password": "password123"}).status == 200


def test_failed_logins_limited_per_ip(app, db):
    make_user(db, "kate")
    c = Client(app, remote_addr="10.2.0.1")
    for i in range(users.LOGIN_FAILS_PER_IP):
        assert c.post("/login.php", data={"username": f"nobody{i}", "password": "wrong-pass"}).status == 401
    r = c.post("/login.php", data={"username": "kate", "password": "password123"})
    assert r.status == 429
    other = Client(app, remote_addr="10.2.0.2")
    assert other.post("/login.php", data={"username": "kate", "password": "password123"}).status == 200


def test_old_failures_leave_the_window(app, db):
    make_user(db, "liam")
    old = users._now_ms() - users.LOGIN_WINDOW_MS - 1000
    for _ in range(users.LOGIN_FAILS_PER_USERNAME):
        db.insert("login_attempts", {"kind": "login", "ip": "1.2.3.4", "username_lower": "liam",
                                     "success": 0, "attempted_ms": old})
    c = Client(app)
    assert c.post("/login.php", data={"username": "liam", "password": "password123"}).status == 200


def test_password_hash_with_weaker_parameters_is_upgraded_on_login(client, db, monkeypatch):
    monkeypatch.setattr(users, "SCRYPT_N", 2 ** 12)
    make_user(db, "mia")
    assert db.value("SELECT password_hash FROM users WHERE username = 'mia'").startswith("scrypt$4096$")
    monkeypatch.setattr(users, "SCRYPT_N", 2 ** 14)
    assert client.post("/login.php", data={"username": "mia", "password": "password123"}).status == 200
    assert db.value("SELECT password_hash FROM users WHERE username = 'mia'").startswith("scrypt$16384$")
    assert Client(client.app).post("/login.php", data={"username": "mia", "password": "password123"}).status == 200


# -- sessions ----------------------------------------------------------------------

def test_only_the_token_hash_is_stored(client, db):
    make_user(db, "nina")
    login(client, "nina")
    token = client.cookies["session"]
    row = db.one("SELECT * FROM sessions")
    assert row["token_hash"] != token and token not in str(row)
    salt = (os.environ.get("SESSION_SALT") or "").encode()
    assert row["token_hash"] == hmac.new(salt, token.encode(), hashlib.sha256).hexdigest()
    assert row["ip"] == "127.0.0.1"


def test_login_rotates_the_session_token(client, db):
    make_user(db, "olga")
    make_user(db, "pete")
    login(client, "olga")
    first = client.cookies["session"]
    login(client, "pete")
    second = client.cookies["session"]
    assert first != second
    assert count(db, "sessions") == 1  # the old session was deleted
    stale = Client(client.app)
    stale.cookies["session"] = first
    assert stale.get("/api/auth-user.php").status == 401
    assert client.get("/api/auth-user.php").json()["username"] == "pete"


def test_logout_deletes_the_session(client, db):
    make_user(db, "quin")
    token = login(client, "quin")
    cookie = client.cookies["session"]
    r = client.post("/logout.php", data={"csrf_token": token})
    assert r.status == 200 and r.text == "Logged out"
    assert "Max-Age=0" in r.header("Set-Cookie")
    assert count(db, "sessions") == 0
    replay = Client(client.app)
    replay.cookies["session"] = cookie
    assert replay.get("/api/auth-user.php").status == 401


def test_logout_post_needs_csrf_token(client, db):
    make_user(db, "quin")
    login(client, "quin")
    # a browser signal (here Origin) without the token is refused; a wrong token always is
    assert client.post("/logout.php", headers={"Origin": "http://testserver"}).status == 403
    assert client.post("/logout.php", data={"csrf_token": "0" * 64}).status == 403
    assert count(db, "sessions") == 1


def test_logout_browser_get_asks_then_post_redirects(client, db):
    make_user(db, "rita")
    login(client, "rita")
    r = client.get("/logout.php", headers=BROWSER)
    assert r.status == 200 and "Log out" in r.text
    assert count(db, "sessions") == 1  # a GET from a browser changes nothing
    r = client.post("/logout.php", data={"csrf_token": form_token(r)}, headers=BROWSER)
    assert r.status == 303 and r.header("Location") == "/"
    assert count(db, "sessions") == 0


def test_logout_get_from_api_client(client, db):
    make_user(db, "rita")
    login(client, "rita")
    r = client.get("/logout.php")
    assert r.status == 200 and r.text == "Logged out" and count(db, "sessions") == 0


def test_expired_session_is_refused_and_deleted(client, db):
    make_user(db, "sam")
    login(client, "sam")
    db.execute("UPDATE sessions SET expires_at = '2000-01-01 00:00:00', last_seen_at = '2000-01-01 00:00:00'")
    assert client.get("/api/auth-user.php").status == 401
    assert count(db, "sessions") == 0


def test_idle_expiry_is_extended_at_most_once_a_minute(make_client, db):
    client = make_client({"SESSION_IDLE_MINUTES": "30"})
    make_user(db, "tess")
    login(client, "tess")
    row = db.one("SELECT * FROM sessions")
    assert parse_time(row["expires_at"]) - parse_time(row["created_at"]) == datetime.timedelta(minutes=30)
    # a request within the minute writes nothing
    client.get("/api/auth-user.php")
    assert db.one("SELECT * FROM sessions") == row
    # after more than a minute of idleness the request moves the expiry
    db.execute("UPDATE sessions SET last_seen_at = '2001-01-01 00:00:00', expires_at = '2999-01-01 00:00:00'")
    assert client.get("/api/auth-user.php").status == 200
    after = db.one("SELECT * FROM sessions")
    assert after["last_seen_at"] > "2001-01-01 00:00:00" and after["expires_at"] < "2999-01-01 00:00:00"


def test_banned_users_sessions_stop_working(client, db):
    user = make_user(db, "uma")
    login(client, "uma")
    # even a session row that survives the ban gives no access
    db.execute("UPDATE users SET banned = 1 WHERE uuid = ?", (user["uuid"],))
    assert client.get("/api/auth-user.php").status == 401
    db.execute("UPDATE users SET banned = 0 WHERE uuid = ?", (user["uuid"],))
    assert client.get("/api/auth-user.php").status == 200
    users.set_banned(db, user["uuid"], True)
    assert count(db, "sessions") == 0
    assert client.get("/api/auth-user.php").status == 401


@pytest.mark.parametrize("cookie", ["garbage", "x" * 300, "", "a;b", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_forged_session_cookies_are_anonymous(client, db, cookie):
    client.cookies["session"] = cookie
    assert client.get("/api/auth-user.php").status == 401
    assert client.get("/").status == 200


def test_browser_page_without_session_goes_to_login_and_back(client, db):
    make_user(db, "walt")
    r = client.get("/settings/user.php?tab=1", headers=BROWSER)
    assert r.status == 303 and r.header("Location") == "/login.php?next=%2Fsettings%2Fuser.php%3Ftab%3D1"
    form = client.get(r.header("Location"), headers=BROWSER)
    assert 'name="next" value="/settings/user.php?tab=1"' in form.text
    r = client.post("/login.php", data={"username": "walt", "password": "password123", "csrf_token": form_token(form),
                                         "next": "/settings/user.php?tab=1"}, headers=BROWSER)
    assert r.status == 303 and r.header("Location") == "/settings/user.php?tab=1"


def test_api_without_session_is_401_json(client, db):
    r = client.get("/api/auth-user.php", headers=BROWSER)
    assert r.status == 401  # API paths answer JSON
    assert r.json() == {"error": "authentication required: log in or send an API key"}


# -- CSRF --------------------------------------------------------------------------

def test_session_post_needs_its_csrf_token(client, db):
    make_user(db, "vera")
    token = login(client, "vera")
    r = client.post("/api/keys.php", data={"name": "k"}, headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status == 403 and "CSRF" in r.json()["error"]
    r = client.post("/api/keys.php", data={"name": "k", "csrf_token": "f" * 64})
    assert r.status == 403 and "invalid CSRF" in r.json()["error"]
    assert count(db, "api_keys", "name = 'k'") == 0
    assert client.post("/api/keys.php", data={"name": "k", "csrf_token": token}).status == 200
    assert client.post("/api/keys.php", data={"name": "k2"}, headers={"X-CSRF-Token": token}).status == 200
    assert client.post("/api/keys.php", json_body={"name": "k3", "csrf_token": token}).status == 200
    assert count(db, "api_keys", "name LIKE 'k%'") == 3


def test_csrf_token_is_bound_to_the_session(app, db):
    make_user(db, "wes")
    make_user(db, "xena")
    a, b = Client(app), Client(app)
    token_a = login(a, "wes")
    token_b = login(b, "xena")
    assert token_a != token_b
    assert b.post("/api/keys.php", data={"name": "k", "csrf_token": token_a}).status == 403
    # a new login (new session) gets a new token; the old one stops working
    token_a2 = login(a, "wes")
    assert token_a2 != token_a
    assert a.post("/api/keys.php", data={"name": "k", "csrf_token": token_a}).status == 403
    assert a.post("/api/keys.php", data={"name": "k", "csrf_token": token_a2}).status == 200


def test_api_key_requests_need_no_csrf_token(client, db):
    user = make_user(db, "yuri")
    login(client, "yuri")  # a cookie as well: the key wins
    r = client.post("/api/keys.php", data={"name": "k"}, headers=user["headers"])
    assert r.status == 200


def test_login_form_token_works_and_wrong_one_is_403(client, db):
    make_user(db, "zack")
    form = client.get("/login.php", headers=BROWSER)
    assert "csrf_pre" in client.cookies
    assert "HttpOnly" in next(c for c in form.header_all("Set-Cookie") if c.startswith("csrf_pre="))
    token = form_token(form)
    bad = client.post("/login.php", data={"username": "zack", "password": "password123",
                                           "csrf_token": "0" * 64}, headers=BROWSER)
    assert bad.status == 403 and count(db, "sessions") == 0
    # a token from a different visitor's cookie does not fit ours
    other = Client(client.app)
    other_token = form_token(other.get("/login.php", headers=BROWSER))
    r = client.post("/login.php", data={"username": "zack", "password": "password123",
                                         "csrf_token": other_token}, headers=BROWSER)
    assert r.status == 403 and count(db, "sessions") == 0
    r = client.post("/login.php", data={"username": "zack", "password": "password123",
                                         "csrf_token": token}, headers=BROWSER)
    assert r.status == 303


@pytest.mark.parametrize("path", ["/login.php", "/register.php"])
def test_browser_post_without_token_is_403(client, db, path):
    make_user(db, "abel")
    r = client.post(path, data={"username": "abel" if path == "/login.php" else "newone",
                                "password": "password123"}, headers=BROWSER)
    assert r.status == 403 and "CSRF" in r.text
    assert count(db, "sessions") == 0 and count(db, "users") == 1


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/page"},
    {"Origin": "http://testserver.evil.example"},
    {"Origin": "http://evil.example", "Referer": "http://testserver/login.php"},
])
@pytest.mark.parametrize("path", ["/login.php", "/register.php"])
def test_foreign_origin_is_refused(client, db, path, headers):
    make_user(db, "abel")
    name = "abel" if path == "/login.php" else "newone"
    r = client.post(path, data={"username": name, "password": "password123"}, headers=headers)
    assert r.status == 403 and "cross-site" in r.text
    # even with a valid form token
    token = form_token(client.get(path, headers=BROWSER))
    r = client.post(path, data={"username": name, "password": "password123", "csrf_token": token},
                    headers=dict(headers, **BROWSER))
    assert r.status == 403
    assert count(db, "sessions") == 0 and count(db, "users") == 1


@pytest.mark.parametrize("headers", [
    {"Origin": "http://testserver"},
    {"Referer": "http://testserver/login.php"},
    {"Origin": "http://127.0.0.1:8000"},  # SITE_URL's host (the .env.example default)
    {"Host": "shop.example:8080", "Origin": "https://shop.example:8080"},
])
def test_same_site_origin_is_accepted(make_client, db, headers):
    client = make_client({"SITE_URL": "http://127.0.0.1:8000"})
    make_user(db, "abel")
    r = client.post("/login.php", data={"username": "abel", "password": "password123"}, headers=headers)
    assert r.status == 200


# -- create-admin --------------------------------------------------------------------

def test_create_admin_promotes_existing_and_resets_password(db):
    make_user(db, "boss")
    user, created = users.create_admin(db, "boss", "new-password-1")
    assert not created and user["role"] == "admin"
    with pytest.raises(Exception):
        users.authenticate(db, "boss", "password123")
    assert users.authenticate(db, "boss", "new-password-1")["role"] == "admin"


def test_first_admin_only_on_empty_database(db):
    made = users.ensure_first_admin(db)
    assert made is not None
    user, password = made
    assert user["role"] == "admin" and user["username"] == "admin"
    assert users.authenticate(db, "admin", password)["uuid"] == user["uuid"]
    assert users.ensure_first_admin(db) is None
