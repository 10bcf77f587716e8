"""Recovery codes and staff reset links, on SQLite and MariaDB."""
import datetime
import re

import pytest

from lib import recovery, users
from tests.client import Client
from tests.concurrency import at_once, post
from tests.factories import login, make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

BROWSER = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}
CODE_RE = re.compile(r"[A-Z2-7]{4}(?:-[A-Z2-7]{4}){3}")


def count(db, table, where="1=1", params=()):
    return db.value(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)


def register_json(client, name):
    r = client.post("/register.php", data={"username": name, "password": "password123"}, headers=JSON)
    assert r.status == 200, r
    body = r.json()
    assert body["username"] == name and len(body["recovery_codes"]) == 10
    return body


def recover(client, name, code, new="new-password-1", headers=None):
    return client.post("/recover.php", data={"username": name, "recovery_code": code, "new_password": new},
                       headers=headers)


def test_register_json_gets_codes_once_and_only_hashes_are_stored(client, db):
    body = register_json(client, "alice")
    codes = body["recovery_codes"]
    assert all(CODE_RE.fullmatch(c) for c in codes) and len(set(codes)) == 10
    rows = db.query("SELECT code_hash FROM recovery_codes WHERE user_uuid = ?", (body["user_uuid"],))
    assert len(rows) == 10
    stored = " ".join(r["code_hash"] for r in rows)
    assert not any(c in stored or c.replace("-", "") in stored for c in codes)
    # the plain-text answer of the original's clients is unchanged
    r = Client(client.app).post("/register.php", data={"username": "bob", "password": "password123"})
    assert r.text == "Registered as bob"
    bob = users.by_username(db, "bob")
    assert count(db, "recovery_codes", "user_uuid = ?", (bob["uuid"],)) == 10
    # settings never show codes again
    login(client, "alice")
    page = client.get("/settings/user.php", headers=BROWSER)
    assert not any(c in page.text for c in codes) and 'id="codes-left">10<' in page.text


def test_a_code_resets_the_password_once_and_ends_every_session(client, db, app):
    body = register_json(client, "alice")
    code = body["recovery_codes"][3]
    other = Client(app)
    login(other, "alice")
    assert count(db, "sessions", "user_uuid = ?", (body["user_uuid"],)) == 2
    r = recover(Client(app), "ALICE", code.lower().replace("-", " "))   # case, spaces do not matter
    assert r.status == 200 and r.text == "Password reset for alice"
    assert count(db, "sessions", "user_uuid = ?", (body["user_uuid"],)) == 0
    assert other.get("/api/auth-user.php").status == 401
    login(Client(app), "alice", "new-password-1")
    assert Client(app).post("/login.php", data={"username": "alice", "password": "password123"}).status == 401
    # used up
    r = recover(Client(app), "alice", code, "another-pass-2")
    assert r.status == 401
    login(Client(app), "alice", "new-password-1")
    assert recovery.codes_left(db, body["user_uuid"]) == 9
    assert count(db, "audit_log", "action = 'password_recovered' AND user_uuid = ?", (body["user_uuid"],)) == 1


def test_wrong_code_and_unknown_user_get_the_same_401_and_change_nothing(client, db, app):
    body = register_json(client, "alice")
    before = db.value("SELECT password_hash FROM users WHERE uuid = ?", (body["user_uuid"],))
    a = recover(Client(app), "alice", "AAAA-BBBB-CCCC-DDDD")
    b = recover(Client(app), "nobody", body["recovery_codes"][0])
    c = recover(Client(app), "alice", body["recovery_codes"][0].replace("-", "") + "X")   # not a code
    assert a.status == b.status == c.status == 401 and a.text == b.text == c.text
    assert db.value("SELECT password_hash FROM users WHERE uuid = ?", (body["user_uuid"],)) == before
    assert recovery.codes_left(db, body["user_uuid"]) == 10
    assert count(db, "sessions", "user_uuid = ?", (body["user_uuid"],)) == 1
    assert count(db, "audit_log", "action = 'recover_failed'") == 3


@pytest.mark.parametrize("data, field", [
    ({"recovery_code": "AAAA-BBBB-CCCC-DDDD", "new_password": "new-password-1"}, "username"),
    ({"username": "alice", "new_password": "new-password-1"}, "recovery_code"),
    ({"username": "alice", "recovery_code": "AAAA-BBBB-CCCC-DDDD", "new_password": "short"}, "new_password"),
    ({"username": "al ice", "recovery_code": "AAAA-BBBB-CCCC-DDDD", "new_password": "new-password-1"}, "username"),
])
def test_bad_input_is_400_and_not_counted(client, db, data, field):
    body = register_json(client, "alice")
    r = Client(client.app).post("/recover.php", data=data)
    assert r.status == 400 and field in r.text
    assert count(db, "login_attempts", "kind = 'recover'") == 0
    assert recovery.codes_left(db, body["user_uuid"]) == 10


def test_recover_form_for_browsers(client, db, app):
    body = register_json(client, "alice")
    browser = Client(app)
    form = browser.get("/recover.php", headers=BROWSER)
    assert form.status == 200 and 'name="recovery_code"' in form.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    bad = browser.post("/recover.php", data={"username": "alice", "recovery_code": "AAAA-BBBB-CCCC-DDDD",
                                             "new_password": "new-password-1", "csrf_token": token},
                       headers=BROWSER)
    assert bad.status == 401 and "wrong username or recovery code" in bad.text
    ok = browser.post("/recover.php", data={"username": "alice", "recovery_code": body["recovery_codes"][0],
                                            "new_password": "new-password-1", "csrf_token": token},
                      headers=BROWSER)
    assert ok.status == 303 and ok.header("Location").startswith("/login.php")
    # a foreign origin is refused
    r = Client(app).post("/recover.php", data={"username": "alice", "recovery_code": body["recovery_codes"][1],
                                               "new_password": "new-password-2"},
                         headers={"Origin": "https://evil.example"})
    assert r.status == 403 and recovery.codes_left(db, body["user_uuid"]) == 9


def test_regenerate_invalidates_the_old_set(client, db, app):
    body = register_json(client, "alice")
    old = body["recovery_codes"]
    token = login(client, "alice")
    wrong = client.post("/settings/user.php", data={"form": "recovery_codes", "password": "nope-nope",
                                                    "csrf_token": token}, headers=BROWSER)
    assert wrong.status == 403 and recovery.codes_left(db, body["user_uuid"]) == 10
    r = client.post("/settings/user.php", data={"form": "recovery_codes", "password": "password123",
                                                "csrf_token": token}, headers=BROWSER)
    assert r.status == 200 and r.header("Cache-Control") == "no-store"
    new = CODE_RE.findall(r.text)
    assert len(new) == 10 and not set(new) & set(old)
    assert recover(Client(app), "alice", old[0]).status == 401
    assert recover(Client(app), "alice", new[0]).status == 200
    assert count(db, "audit_log", "action = 'recovery_codes_issued' AND user_uuid = ?", (body["user_uuid"],)) == 2



def test_rate_limit_per_username_is_exact_under_concurrency(live_server, db):
    user = make_user(db, "alice")
    codes = recovery.issue_codes(db, user["uuid"])
    statuses = at_once(20, lambda i: post(live_server + "/recover.php", {
        "username": "alice", "recovery_code": "AAAA-BBBB-CCCC-DDDD",
        "new_password": "new-password-1"}))
    assert statuses.count(401) == recovery.RECOVER_FAILS_PER_USERNAME
    assert statuses.count(429) == 20 - recovery.RECOVER_FAILS_PER_USERNAME
    # the limit holds for a right code too, and nothing changed
    assert post(live_server + "/recover.php", {"username": "alice", "recovery_code": codes[0],
                                                "new_password": "new-password-1"}) == 429
    assert recovery.codes_left(db, user["uuid"]) == 10


def test_rate_limit_per_ip_is_exact_under_concurrency(live_server, db):
    for i in range(3):
        make_user(db, f"u{i}")
    statuses = at_once(30, lambda i: post(live_server + "/recover.php", {
        "username": f"x{i}", "recovery_code": "AAAA-BBBB-CCCC-DDDD", "new_password": "new-password-1"}))
    assert statuses.count(401) == recovery.RECOVER_FAILS_PER_IP
    assert statuses.count(429) == 30 - recovery.RECOVER_FAILS_PER_IP


# -- staff reset links -------------------------------------------------------------
def _issue(client, token, target_uuid, headers=None):
    return client.post("/staff/users.php", data={"action": "reset_link", "user_uuid": target_uuid,
                                                 "csrf_token": token}, headers=headers)


def test_staff_reset_link_works_once(client, db, app):
    make_user(db, "mod", role="staff")
    alice = make_user(db, "alice")
    other = Client(app)
    login(other, "alice")
    token = login(client, "mod")
    page = _issue(client, token, alice["uuid"], headers=BROWSER)
    assert page.status == 200 and page.header("Cache-Control") == "no-store"
    link = re.search(r"/reset\.php\?reset_token=([A-Za-z0-9_\-]+)", page.text).group(1)
    assert count(db, "audit_log", "action = 'reset_link_issued' AND target = ?", (alice["uuid"],)) == 1
    assert link not in " ".join(str(v) for r in db.query("SELECT * FROM audit_log") for v in r.values())
    assert link not in " ".join(str(r["token_hash"]) for r in db.query("SELECT * FROM password_reset_links"))
    form = Client(app).get("/reset.php?reset_token=" + link, headers=BROWSER)
    assert form.status == 200 and "alice" in form.text
    short = Client(app).post("/reset.php", data={"reset_token": link, "new_password": "short"})
    assert short.status == 400
    r = Client(app).post("/reset.php", data={"reset_token": link, "new_password": "brand-new-pass"})
    assert r.status == 200 and r.text == "Password reset for alice"
    assert other.get("/api/auth-user.php").status == 401
    login(Client(app), "alice", "brand-new-pass")
    again = Client(app).post("/reset.php", data={"reset_token": link, "new_password": "third-pass-3"})
    assert again.status == 404
    assert Client(app).get("/reset.php?reset_token=" + link).status == 404
    login(Client(app), "alice", "brand-new-pass")


def test_reset_link_expires_after_an_hour(client, db, app):
    make_user(db, "mod", role="staff")
    alice = make_user(db, "alice")
    token = login(client, "mod")
    r = _issue(client, token, alice["uuid"])
    assert r.status == 200 and r.json()["expires_in_seconds"] == 3600
    link = r.json()["link"].split("reset_token=")[1]
    row = db.one("SELECT * FROM password_reset_links")
    created = datetime.datetime.strptime(row["created_at"], "%Y-%m-%d %H:%M:%S")
    assert datetime.datetime.strptime(row["expires_at"], "%Y-%m-%d %H:%M:%S") - created == \
        datetime.timedelta(hours=1)
    past = (datetime.datetime.utcnow() - datetime.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    db.execute("UPDATE password_reset_links SET expires_at = ?", (past,))
    assert Client(app).post("/reset.php", data={"reset_token": link, "new_password": "brand-new-pass"}).status == 404
    login(Client(app), "alice")


def test_reset_link_refusals(client, db, app):
    mod = make_user(db, "mod", role="staff")
    boss = make_user(db, "boss", role="admin")
    other_mod = make_user(db, "mod2", role="staff")
    alice = make_user(db, "alice")
    token = login(client, "mod")
    assert _issue(client, token, mod["uuid"]).status == 403          # themselves
    assert _issue(client, token, boss["uuid"]).status == 403         # an admin
    assert _issue(client, token, "no-such-uuid").status == 404
    assert count(db, "password_reset_links") == 0
    page = client.get("/staff/users.php", headers=BROWSER)
    assert page.text.count("reset_link") == 2   # alice and mod2
    # a customer cannot issue one
    c = Client(app)
    ctoken = login(c, "alice")
    assert _issue(c, ctoken, other_mod["uuid"]).status == 403
    # an admin may, for staff
    a = Client(app)
    atoken = login(a, "boss")
    assert _issue(a, atoken, other_mod["uuid"]).status == 200
    assert _issue(a, atoken, alice["uuid"]).status == 200
    assert _issue(a, atoken, boss["uuid"]).status == 403
    assert count(db, "password_reset_links") == 2
