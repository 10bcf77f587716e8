"""API keys: endpoints, transports, revocation, bans, the exact rate limit, audit; and
/admin/users.php. On SQLite and MariaDB."""
import hashlib
import json
import threading
import urllib.error
import urllib.request

import pytest

from lib import api_keys, users
from tests.client import Client
from tests.factories import login, make_user


def count(db, table, where="1=1", params=()):
    return db.value(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)


# -- /api/keys.php -------------------------------------------------------------------

def test_create_key_shows_it_once_and_stores_only_its_hash(client, db):
    user = make_user(db, "alice")
    r = client.post("/api/keys.php", data={"name": "my script"}, headers=user["headers"])
    assert r.status == 200
    body = r.json()
    key = body["api_key"]
    assert body["ok"] is True and body["name"] == "my script"
    assert len(key) == 64 and all(c in "0123456789abcdef" for c in key)
    assert body["key_prefix"] == key[:8]
    row = db.one("SELECT * FROM api_keys WHERE id = ?", (body["id"],))
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps(row)
    listed = client.get("/api/keys.php", headers=user["headers"]).json()["keys"]
    assert [k["name"] for k in listed] == ["my script", "test"]
    assert set(listed[0]) == {"id", "name", "key_prefix", "created_at", "last_used_at", "scopes", "store_uuid"}
    assert listed[0]["scopes"] == ["full"] and listed[0]["store_uuid"] is None
    assert key not in json.dumps(listed)
    # the new key works
    me = client.get("/api/auth-user.php", headers={"Authorization": f"Bearer {key}"}).json()
    assert me == {"username": "alice", "role": "customer", "user_uuid": user["uuid"]}
    audit = db.one("SELECT * FROM audit_log WHERE action = 'key_created' AND target = ?",
                   (f"api_key:{body['id']}",))
    assert audit["user_uuid"] == user["uuid"] and key[:8] in audit["detail"]


def test_keys_list_shows_only_my_keys(client, db):
    a = make_user(db, "alice")
    b = make_user(db, "bob")
    ids_a = {k["id"] for k in client.get("/api/keys.php", headers=a["headers"]).json()["keys"]}
    ids_b = {k["id"] for k in client.get("/api/keys.php", headers=b["headers"]).json()["keys"]}
    assert ids_a == {a["api_key_id"]} and ids_b == {b["api_key_id"]}


def test_last_used_at_is_recorded(client, db):
    user = make_user(db, "alice")
    assert db.value("SELECT last_used_at FROM api_keys WHERE id = ?", (user["api_key_id"],)) is None
    client.get("/api/auth-user.php", headers=user["headers"])
    assert db.value("SELECT last_used_at FROM api_keys WHERE id = ?", (user["api_key_id"],)) is not None


@pytest.mark.parametrize("data, needle", [
    ({}, "name is required"),
    ({"name": ""}, "name is required"),
    ({"name": "   "}, "name is required"),
    ({"name": "n" * 65}, "longer than 64"),
    ({"name": "a\x01b"}, "control characters"),
])
def test_create_key_bad_name_is_400(client, db, data, needle):
    user = make_user(db, "alice")
    r = client.post("/api/keys.php", data=data, headers=user["headers"])
    assert r.status == 400 and needle in r.json()["error"]
    assert count(db, "api_keys") == 1


def test_create_key_name_with_html_is_kept_verbatim_in_json(client, db):
    user = make_user(db, "alice")
    r = client.post("/api/keys.php", json_body={"name": "<script>'\"; DROP TABLE api_keys"},
                    headers=user["headers"])
    assert r.status == 200
    assert r.json()["name"] == "<script>'\"; DROP TABLE api_keys"
    assert count(db, "api_keys") == 2


def test_active_keys_per_user_are_capped(client, db, monkeypatch):
    monkeypatch.setattr(api_keys, "KEYS_PER_USER", 3)
    user = make_user(db, "alice")
    for i in range(2):
        assert client.post("/api/keys.php", data={"name": f"k{i}"}, headers=user["headers"]).status == 200
    r = client.post("/api/keys.php", data={"name": "k9"}, headers=user["headers"])
    assert r.status == 409 and count(db, "api_keys") == 3


# -- transports ------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["bearer", "x-api-key", "query"])
def test_three_key_transports(client, db, transport):
    user = make_user(db, "alice", role="vendor")
    key = user["api_key"]
    if transport == "bearer":
        r = client.get("/api/auth-user.php", headers={"Authorization": f"Bearer {key}"})
    elif transport == "x-api-key":
        r = client.get("/api/auth-user.php", headers={"X-API-Key": key})
    else:
        r = client.get(f"/api/auth-user.php?token={key}")
    assert r.status == 200
    assert r.json() == {"username": "alice", "role": "vendor", "user_uuid": user["uuid"]}
    # a POST by key needs no CSRF token
    if transport == "query":
        r = client.post(f"/api/keys.php?token={key}", data={"name": "n"})
    else:
        r = client.post("/api/keys.php", data={"name": "n"},
                        headers={"Authorization": f"Bearer {key}"} if transport == "bearer" else {"X-API-Key": key})
    assert r.status == 200


@pytest.mark.parametrize("headers, path", [
    ({"Authorization": "Bearer " + "0" * 64}, "/api/auth-user.php"),
    ({"Authorization": "Bearer "}, "/api/auth-user.php"),
    ({"Authorization": "Bearer not-a-key"}, "/api/auth-user.php"),
    ({"X-API-Key": "z" * 64}, "/api/auth-user.php"),
    ({"X-API-Key": ""}, "/api/auth-user.php"),
    ({}, "/api/auth-user.php?token=abc"),
    ({}, "/api/auth-user.php?token="),
    ({"Authorization": "Bearer " + "a" * 5000}, "/api/auth-user.php"),
    ({"X-API-Key": "' OR 1=1 --"}, "/api/auth-user.php"),
])
def test_invalid_keys_are_401(client, db, headers, path):
    make_user(db, "alice")
    r = client.get(path, headers=headers)
    assert r.status == 401 and "API key" in r.json()["error"]


def test_key_upper_case_hex_is_the_same_key(client, db):
    user = make_user(db, "alice")
    r = client.get("/api/auth-user.php", headers={"X-API-Key": user["api_key"].upper()})
    assert r.status == 200


def test_key_wins_over_cookie(client, db):
    a = make_user(db, "alice")
    make_user(db, "bob")
    login(client, "bob")
    assert client.get("/api/auth-user.php", headers=a["headers"]).json()["username"] == "alice"
    assert client.get("/api/auth-user.php").json()["username"] == "bob"


def test_auth_user_with_session_includes_csrf_token_but_not_with_key(client, db):
    user = make_user(db, "alice")
    token = login(client, "alice")
    assert len(token) == 64
    assert "csrf_token" not in Client(client.app).get("/api/auth-user.php", headers=user["headers"]).json()


# -- revocation and bans -------------------------------------------------------------------

def test_revoke_works_at_once(client, db):
    user = make_user(db, "alice")
    extra = client.post("/api/keys.php", data={"name": "second"}, headers=user["headers"]).json()
    second = {"X-API-Key": extra["api_key"]}
    assert client.get("/api/auth-user.php", headers=second).status == 200
    r = client.post("/api/keys-revoke.php", data={"id": extra["id"]}, headers=user["headers"])
    assert r.status == 200 and r.json() == {"ok": True, "id": extra["id"], "revoked": True}
    r = client.get("/api/auth-user.php", headers=second)
    assert r.status == 401 and "revoked" in r.json()["error"]
    assert [k["id"] for k in client.get("/api/keys.php", headers=user["headers"]).json()["keys"]] == \
        [user["api_key_id"]]
    assert db.value("SELECT revoked_at FROM api_keys WHERE id = ?", (extra["id"],)) is not None
    assert count(db, "audit_log", "action = 'key_revoked' AND target = ?", (f"api_key:{extra['id']}",)) == 1
    # again: 409, and the key can revoke itself
    assert client.post("/api/keys-revoke.php", data={"id": extra["id"]}, headers=user["headers"]).status == 409
    assert client.post("/api/keys-revoke.php", data={"id": user["api_key_id"]},
                       headers=user["headers"]).status == 200
    assert client.get("/api/auth-user.php", headers=user["headers"]).status == 401


def test_revoke_someone_elses_key_is_404(client, db):
    a = make_user(db, "alice")
    b = make_user(db, "bob")
    r = client.post("/api/keys-revoke.php", data={"id": b["api_key_id"]}, headers=a["headers"])
    assert r.status == 404
    assert client.get("/api/auth-user.php", headers=b["headers"]).status == 200
    assert count(db, "audit_log", "action = 'key_revoked'") == 0


@pytest.mark.parametrize("data", [{}, {"id": ""}, {"id": "abc"}, {"id": "-1"}, {"id": "1.5"},
                                  {"id": "9" * 30}, {"id": "1 OR 1=1"}])
def test_revoke_bad_id_is_400(client, db, data):
    user = make_user(db, "alice")
    r = client.post("/api/keys-revoke.php", data=data, headers=user["headers"])
    assert r.status == 400
    assert db.value("SELECT revoked_at FROM api_keys") is None


def test_revoke_by_session_needs_csrf(client, db):
    user = make_user(db, "alice")
    token = login(client, "alice")
    assert client.post("/api/keys-revoke.php", data={"id": user["api_key_id"]},
                       headers={"Referer": "http://testserver/settings/user.php"}).status == 403
    assert db.value("SELECT revoked_at FROM api_keys") is None
    assert client.post("/api/keys-revoke.php", data={"id": user["api_key_id"], "csrf_token": token}).status == 200


def test_banned_users_keys_stop_working(client, db):
    user = make_user(db, "alice")
    users.set_banned(db, user["uuid"], True)
    r = client.get("/api/auth-user.php", headers=user["headers"])
    assert r.status == 403 and "banned" in r.json()["error"]
    assert client.post("/api/keys.php", data={"name": "x"}, headers=user["headers"]).status == 403
    assert count(db, "api_keys") == 1
    users.set_banned(db, user["uuid"], False)
    assert client.get("/api/auth-user.php", headers=user["headers"]).status == 200


# -- rate limit ---------------------------------------------------------------------------

def test_rate_limit_sequential(client, db):
    user = make_user(db, "alice")
    other = make_user(db, "bob")
    for i in range(api_keys.RATE_LIMIT):
        assert client.get("/api/auth-user.php", headers=user["headers"]).status == 200, i
    r = client.get("/api/auth-user.php", headers=user["headers"])
    assert r.status == 429 and int(r.header("Retry-After")) >= 1
    assert "rate limit" in r.json()["error"]
    assert api_keys.requests_in_window(db, user["api_key_id"]) == api_keys.RATE_LIMIT
    # per key: another user's key is unaffected; so is the user's session
    assert client.get("/api/auth-user.php", headers=other["headers"]).status == 200
    login(client, "alice")
    assert client.get("/api/auth-user.php").status == 200


def sent_at(db, key_id, *times_ms):
    """The key's kept request times, as if its requests had been sent at these moments."""
    db.execute("UPDATE api_keys SET request_times = ? WHERE id = ?",
               ("".join(f"{int(t):013d}" for t in times_ms), key_id))


def test_rate_limit_window_rolls(client, db):
    user = make_user(db, "alice")
    now = api_keys.time.time() * 1000
    kid = user["api_key_id"]
    sent_at(db, kid, *[now - 59_000] * api_keys.RATE_LIMIT)  # 60 requests 59 s ago: window full
    r = client.get("/api/auth-user.php", headers=user["headers"])
    assert r.status == 429 and 1 <= int(r.header("Retry-After")) <= 2
    sent_at(db, kid, now - 61_000, *[now - 30_000] * (api_keys.RATE_LIMIT - 1))  # the oldest has left it
    assert client.get("/api/auth-user.php", headers=user["headers"]).status == 200
    assert api_keys.requests_in_window(db, kid) == api_keys.RATE_LIMIT
    r = client.get("/api/auth-user.php", headers=user["headers"])
    assert r.status == 429 and 29 <= int(r.header("Retry-After")) <= 31


def test_a_lower_limit_applies_to_the_times_kept(client, db, monkeypatch):
    user = make_user(db, "alice")
    for _ in range(5):
        assert client.get("/api/auth-user.php", headers=user["headers"]).status == 200
    monkeypatch.setattr(api_keys, "RATE_LIMIT", 3)
    assert client.get("/api/auth-user.php", headers=user["headers"]).status == 429
    monkeypatch.setattr(api_keys, "RATE_LIMIT", 7)
    assert [client.get("/api/auth-user.php", headers=user["headers"]).status for _ in range(3)] == [200, 200, 429]


def fetch(url, headers):
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def test_rate_limit_is_exact_under_concurrency(live_server, db):
    user = make_user(db, "alice")
    n = 100
    barrier = threading.Barrier(n)
    results = []
    lock = threading.Lock()

    def worker():
        barrier.wait()
        status = fetch(live_server + "/api/auth-user.php", user["headers"])
        with lock:
            results.append(status)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == n
    assert results.count(200) == api_keys.RATE_LIMIT, sorted(results)
    assert results.count(429) == n - api_keys.RATE_LIMIT, sorted(results)
    assert api_keys.requests_in_window(db, user["api_key_id"]) == api_keys.RATE_LIMIT


# -- /admin/users.php ----------------------------------------------------------------------

def test_admin_lists_users(client, db):
    admin = make_user(db, "root", role="admin")
    make_user(db, "alice")
    make_user(db, "bob", role="vendor")
    r = client.get("/admin/users.php", headers=admin["headers"])
    assert r.status == 200
    listed = r.json()["users"]
    assert [u["username"] for u in listed] == ["root", "alice", "bob"]
    assert "password_hash" not in json.dumps(listed)
    assert set(listed[0]) >= {"uuid", "username", "role", "banned", "created_at"}
    assert [u["username"] for u in client.get("/admin/users.php?role=vendor", headers=admin["headers"]).json()["users"]] == ["bob"]
    assert [u["username"] for u in client.get("/admin/users.php?q=LIC", headers=admin["headers"]).json()["users"]] == ["alice"]
    assert client.get("/admin/users.php?q=%25", headers=admin["headers"]).json()["users"] == []
    assert [u["username"] for u in client.get("/admin/users.php?limit=1&offset=1", headers=admin["headers"]).json()["users"]] == ["alice"]
    assert client.get("/admin/users.php?limit=500", headers=admin["headers"]).status == 400
    assert client.get("/admin/users.php?role=god", headers=admin["headers"]).status == 400


def test_admin_sets_role_and_ban_with_audit(client, db):
    admin = make_user(db, "root", role="admin")
    alice = make_user(db, "alice")
    r = client.post("/admin/users.php", data={"user_uuid": alice["uuid"], "role": "staff"}, headers=admin["headers"])
    assert r.status == 200 and r.json()["user"]["role"] == "staff"
    assert client.get("/api/auth-user.php", headers=alice["headers"]).json()["role"] == "staff"
    row = db.one("SELECT * FROM audit_log WHERE action = 'role_changed'")
    assert row["user_uuid"] == admin["uuid"] and row["target"] == alice["uuid"] and row["detail"] == "customer -> staff"

    alice_client = Client(client.app)
    login(alice_client, "alice")
    r = client.post("/admin/users.php", data={"username": "ALICE", "banned": "1"}, headers=admin["headers"])
    assert r.status == 200 and r.json()["user"]["banned"] is True
    assert client.get("/api/auth-user.php", headers=alice["headers"]).status == 403
    assert alice_client.get("/api/auth-user.php").status == 401
    assert alice_client.post("/login.php", data={"username": "alice", "password": "password123"}).status == 403
    assert count(db, "audit_log", "action = 'banned' AND target = ?", (alice["uuid"],)) == 1

    r = client.post("/admin/users.php", json_body={"user_uuid": alice["uuid"], "banned": False}, headers=admin["headers"])
    assert r.status == 200 and r.json()["user"]["banned"] is False
    assert client.get("/api/auth-user.php", headers=alice["headers"]).status == 200
    assert count(db, "audit_log", "action = 'unbanned'") == 1


@pytest.mark.parametrize("data, status", [
    ({}, 400),
    ({"user_uuid": "no-such-uuid", "role": "staff"}, 404),
    ({"username": "nobody", "role": "staff"}, 404),
    ({"username": "alice"}, 400),
    ({"username": "alice", "role": "god"}, 400),
    ({"username": "alice", "role": "<b>"}, 400),
    ({"username": "alice", "banned": "maybe"}, 400),
    ({"username": "x" * 17, "role": "staff"}, 400),
    ({"user_uuid": "u" * 37, "role": "staff"}, 400),
    ({"username": "root", "role": "customer"}, 409),
    ({"username": "root", "banned": "1"}, 409),
])
def test_admin_users_bad_input_changes_nothing(client, db, data, status):
    admin = make_user(db, "root", role="admin")
    make_user(db, "alice")
    before = db.query("SELECT uuid, role, banned FROM users ORDER BY id")
    r = client.post("/admin/users.php", data=data, headers=admin["headers"])
    assert r.status == status, r
    assert "error" in r.json()
    assert db.query("SELECT uuid, role, banned FROM users ORDER BY id") == before
    assert count(db, "audit_log", "action IN ('role_changed', 'banned', 'unbanned')") == 0


def test_admin_users_by_session_needs_csrf(client, db):
    make_user(db, "root", role="admin")
    make_user(db, "alice")
    token = login(client, "root")
    assert client.post("/admin/users.php", data={"username": "alice", "role": "staff"},
                       headers={"Origin": "http://testserver"}).status == 403
    assert db.value("SELECT role FROM users WHERE username = 'alice'") == "customer"
    assert client.post("/admin/users.php", data={"username": "alice", "role": "staff",
                                                  "csrf_token": token}).status == 200
    assert db.value("SELECT role FROM users WHERE username = 'alice'") == "staff"


def test_admin_users_browser_form_bans_and_redirects(client, db):
    make_user(db, "root", role="admin")
    alice = make_user(db, "alice")
    token = login(client, "root")
    page = client.get("/admin/users.php", headers={"Accept": "text/html"})
    assert page.status == 200 and "alice" in page.text
    r = client.post("/admin/users.php", data={"user_uuid": alice["uuid"], "banned": "1", "csrf_token": token},
                    headers={"Accept": "text/html"})
    assert r.status == 303 and r.header("Location").startswith("/admin/users.php")
    assert db.value("SELECT banned FROM users WHERE uuid = ?", (alice["uuid"],)) == 1
    r = client.post("/admin/users.php", data={"user_uuid": alice["uuid"], "banned": "1"},
                    headers={"Accept": "text/html"})
    assert r.status == 403  # no CSRF token


def test_admin_users_browser_form_for_non_admin_is_403(client, db):
    make_user(db, "staffer", role="staff")
    token = login(client, "staffer")
    assert client.get("/admin/users.php", headers={"Accept": "text/html"}).status == 403
    r = client.post("/admin/users.php", data={"username": "staffer", "role": "admin", "csrf_token": token},
                    headers={"Accept": "text/html"})
    assert r.status == 403
    assert db.value("SELECT role FROM users WHERE username = 'staffer'") == "staff"


# -- bad input on every account endpoint -----------------------------------------------------

WRONG_TYPES = [[], {"a": 1}, 12345, 1.5, "\x00", "x" * 20000]
ACCOUNT_POSTS = [  # (path, a valid body, who sends it: None = anonymous, else the user's key)
    ("/login.php", {"username": "alice", "password": "password123"}, None),
    ("/register.php", {"username": "newbie", "password": "password123", "invite": "alice"}, None),
    ("/api/keys.php", {"name": "k"}, "alice"),
    ("/api/keys-revoke.php", {"id": "ALICE_KEY"}, "alice"),
    ("/admin/users.php", {"username": "alice", "role": "vendor", "banned": "1"}, "root"),
]


def account_state(db):
    return {"users": db.query("SELECT uuid, username, role, banned, password_hash FROM users ORDER BY id"),
            "sessions": count(db, "sessions"),
            "keys": db.query("SELECT id, name, revoked_at FROM api_keys ORDER BY id"),
            "audit": count(db, "audit_log", "action NOT IN ('login_failed')")}


@pytest.mark.parametrize("path, valid, who", ACCOUNT_POSTS, ids=[p for p, _v, _w in ACCOUNT_POSTS])
def test_account_posts_bad_bodies_are_4xx_and_change_nothing(app, db, path, valid, who):
    people = {"alice": make_user(db, "alice"), "root": make_user(db, "root", role="admin")}
    valid = {k: str(people["alice"]["api_key_id"]) if v == "ALICE_KEY" else v for k, v in valid.items()}
    headers = people[who]["headers"] if who else {}
    before = account_state(db)
    failures = []

    def check(label, **request):
        db.execute("UPDATE api_keys SET request_times = ''")
        db.execute("DELETE FROM login_attempts")
        r = Client(app).request("POST", path, headers=headers, **request)
        if not 400 <= r.status < 500 or account_state(db) != before:
            failures.append(f"{label}: {r.status} {r.text[:100]!r}")

    for field in valid:
        for bad in WRONG_TYPES:
            check(f"{field}={bad!r:.20}", json_body=dict(valid, **{field: bad}))
    form = "&".join(f"{k}={v}" for k, v in valid.items()).encode()
    check("non-UTF-8", body=form + b"\xff\xfe", content_type="application/x-www-form-urlencoded")
    check("huge body", body=form + b"&pad=" + b"p" * (1024 * 1024 + 10),
          content_type="application/x-www-form-urlencoded")
    assert not failures, "\n".join(failures)
    # the valid body itself goes through (so the checks above tested the bad parts)
    r = Client(app).request("POST", path, headers=headers, json_body=valid)
    assert r.status == 200, r
