"""My sessions and keys at a glance; end one session; sign out everywhere."""
import re

from lib import session as sessionmod
from tests.client import Client
from tests.factories import login, make_user

BROWSER = {"Accept": "text/html,application/xhtml+xml"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def test_device_short_form():
    assert sessionmod.device(FIREFOX) == "Firefox on Linux"
    assert sessionmod.device("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/119.0 Safari/537.36") \
        == "Chrome on Windows"
    assert sessionmod.device("curl/8.4.0") == "curl"
    assert sessionmod.device(None) == "unknown device"
    assert sessionmod.device("x" * 200) == "x" * 40


def test_list_my_sessions_marks_current_and_hides_others(app, db):
    alice = make_user(db, "alice")
    bob = make_user(db, "bob")
    other = Client(app, remote_addr="198.51.100.7")
    other.post("/login.php", data={"username": "alice", "password": "password123"}, headers={"User-Agent": FIREFOX})
    me = Client(app)
    login(me, "alice")
    login(Client(app), "bob")
    r = me.get("/api/sessions.php")
    assert r.status == 200
    rows = r.json()["sessions"]
    assert len(rows) == 2
    assert [s["current"] for s in rows].count(True) == 1
    ff = next(s for s in rows if not s["current"])
    assert ff["device"] == "Firefox on Linux" and ff["ip"] == "198.51.100.7"
    assert set(ff) >= {"id", "device", "ip", "created_at", "last_seen_at"}
    assert "token_hash" not in ff and "csrf_secret" not in ff
    # an API key sees the sessions too, none of them current
    rows = me.get("/api/sessions.php", headers=alice["headers"]).json()["sessions"]
    assert len(rows) == 2
    assert not any(s["current"] for s in Client(app).get("/api/sessions.php", headers=alice["headers"])
                   .json()["sessions"])
    assert len(me.get("/api/sessions.php", headers=bob["headers"]).json()["sessions"]) == 1


def test_end_one_session_own_only_csrf_and_audit(app, db):
    alice = make_user(db, "alice")
    make_user(db, "bob")
    phone = Client(app)
    login(phone, "alice")
    bob = Client(app)
    bob_token = login(bob, "bob")
    me = Client(app)
    token = login(me, "alice")
    phone_id = next(s["id"] for s in me.get("/api/sessions.php").json()["sessions"] if not s["current"])
    bob_id = bob.get("/api/sessions.php").json()["sessions"][0]["id"]
    # someone else's session: 404, and it still works
    r = me.post("/api/sessions-end.php", data={"id": str(bob_id), "csrf_token": token})
    assert r.status == 404
    assert bob.get("/api/auth-user.php").status == 200
    # a browser request with the session cookie but no CSRF token: refused, nothing ended
    assert me.post("/api/sessions-end.php", data={"id": str(phone_id)}, headers=BROWSER).status == 403
    assert me.post("/api/sessions-end.php", data={"id": str(phone_id), "csrf_token": "0" * 64}).status == 403
    assert phone.get("/api/auth-user.php").status == 200
    # bad input
    assert me.post("/api/sessions-end.php", data={"id": "abc", "csrf_token": token}).status == 400
    r = me.post("/api/sessions-end.php", data={"id": str(phone_id), "csrf_token": token})
    assert r.status == 200 and r.json() == {"ok": True, "id": phone_id, "ended": True}
    assert phone.get("/api/auth-user.php").status == 401
    assert me.get("/api/auth-user.php").status == 200
    assert me.post("/api/sessions-end.php", data={"id": str(phone_id), "csrf_token": token}).status == 404
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'session_ended' AND user_uuid = ? "
                    "AND target = ?", (alice["uuid"], f"session:{phone_id}")) == 1
    # an API key can end one of the user's sessions too (not bob's)
    r = me.post("/api/sessions-end.php", data={"id": str(bob_id)}, headers=alice["headers"])
    assert r.status == 404
    assert bob_token


def test_settings_page_lists_sessions_and_keys_and_ends_them(app, db):
    alice = make_user(db, "alice")
    phone = Client(app, remote_addr="198.51.100.7")
    phone.post("/login.php", data={"username": "alice", "password": "password123"}, headers={"User-Agent": FIREFOX})
    me = Client(app)
    login(me, "alice")
    page = me.get("/settings/user.php", headers=BROWSER)
    assert page.status == 200
    assert "Firefox on Linux" in page.text and "198.51.100.7" in page.text and "(this session)" in page.text
    assert alice["api_key"][:8] in page.text or "test" in page.text
    assert 'id="keys-table"' in page.text and 'value="everywhere"' not in page.text
    assert 'action="/logout.php"' in page.text and 'name="everywhere"' in page.text
    assert alice["api_key"] not in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    phone_id = next(s["id"] for s in me.get("/api/sessions.php").json()["sessions"] if not s["current"])
    assert 'value="%d"' % phone_id in page.text
    r = me.post("/settings/user.php", data={"form": "end_session", "id": str(phone_id), "csrf_token": token},
                headers=BROWSER)
    assert r.status == 303 and r.header("Location") == "/settings/user.php"
    assert phone.get("/api/auth-user.php").status == 401
    page = me.get("/settings/user.php", headers=BROWSER)
    assert "That session was signed out." in page.text and "Firefox on Linux" not in page.text
    # someone else's session from the page: 404
    make_user(db, "bob")
    bob = Client(app)
    login(bob, "bob")
    bob_id = bob.get("/api/sessions.php").json()["sessions"][0]["id"]
    r = me.post("/settings/user.php", data={"form": "end_session", "id": str(bob_id), "csrf_token": token},
                headers=BROWSER)
    assert r.status == 404
    assert bob.get("/api/auth-user.php").status == 200
    # no CSRF token: refused
    assert me.post("/settings/user.php", data={"form": "end_session", "id": str(bob_id)},
                   headers=BROWSER).status == 403
    # revoke a key from the page
    r = me.post("/settings/user.php", data={"form": "revoke_key", "id": str(alice["api_key_id"]),
                                            "csrf_token": token}, headers=BROWSER)
    assert r.status == 303
    assert me.get("/api/transactions.php", headers=alice["headers"]).status == 401
    # ending the current session from the page logs this browser out
    my_id = next(s["id"] for s in me.get("/api/sessions.php").json()["sessions"] if s["current"])
    r = me.post("/settings/user.php", data={"form": "end_session", "id": str(my_id), "csrf_token": token},
                headers=BROWSER)
    assert r.status == 303 and r.header("Location") == "/"
    assert me.get("/api/auth-user.php").status == 401
