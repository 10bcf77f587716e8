"""Account and staff tools through the JSON API, on SQLite and MariaDB: email settings
(/api/email-settings.php, against the local SMTP sink), the category tree
(/api/categories.php) and the vendorship agreement (/api/agreement.php); and the email
recovery limits exact under concurrent requests."""

import pytest

from lib import mail
from tests import market
from tests.concurrency import at_once, post
from tests.factories import make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)
from tests.smtp_sink import SmtpSink
from tests.test_email import EMAIL_ON, link, send

EMAIL = "/api/email-settings.php"


@pytest.fixture
def sink():
    s = SmtpSink()
    yield s
    s.close()


def rows(db, table):
    return db.value(f"SELECT COUNT(*) FROM {table}")


@pytest.mark.parametrize("settings", [EMAIL_ON])
def test_email_settings_api_add_verify_switch_remove(db, client, sink):
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    h = alice["headers"]
    r = client.get(EMAIL, headers=h)
    assert r.json() == {"enabled": True, "email": None, "email_verified_at": None, "pending_email": None,
                        "notifications": {k: True for k in mail.KINDS}}
    before = (rows(db, "email_outbox"), rows(db, "email_tokens"))
    for data, field in (({"action": "add", "email": "not an address"}, "email"),
                        ({"action": "add"}, "email"),
                        ({"action": "verify", "code": "bad!"}, "code"),
                        ({"action": "notifications", "order.paid": "maybe"}, "order.paid"),
                        ({"action": "fly"}, "action")):
        r = client.post(EMAIL, data=data, headers=h)
        assert r.status == 400 and field in r.json()["error"] + str(r.json()), (data, r.text)
    assert (rows(db, "email_outbox"), rows(db, "email_tokens")) == before
    r = client.post(EMAIL, data={"action": "add", "email": "alice@example.com"}, headers=h)
    assert r.status == 200 and r.json()["pending_email"] == "alice@example.com" and r.json()["email"] is None
    assert send(db, sink) == {"sent": 1}
    code = link(sink.to("alice@example.com")[-1], "/verify-email.php")
    # an unknown code, and someone else's, do not verify my address; the code is not used up
    assert client.post(EMAIL, data={"action": "verify", "code": "x" * 43}, headers=h).status == 404
    assert client.post(EMAIL, data={"action": "verify", "code": code}, headers=bob["headers"]).status == 404
    r = client.post(EMAIL, json_body={"action": "verify", "code": code}, headers=h)
    assert r.status == 200 and r.json()["email"] == "alice@example.com" and r.json()["email_verified_at"]
    assert client.post(EMAIL, data={"action": "verify", "code": code}, headers=h).status == 404     # once
    r = client.post(EMAIL, json_body={"action": "notifications", "order.paid": "0", "dispute": False}, headers=h)
    assert r.json()["notifications"] == dict({k: True for k in mail.KINDS}, **{"order.paid": False, "dispute": False})
    r = client.post(EMAIL, data={"action": "notifications", "dispute": "1"}, headers=h)     # others unchanged
    assert r.json()["notifications"]["order.paid"] is False and r.json()["notifications"]["dispute"] is True
    assert db.value("SELECT email_off FROM users WHERE uuid = ?", (alice["uuid"],)) == "order.paid"
    r = client.post(EMAIL, data={"action": "remove"}, headers=h)
    assert r.status == 200 and r.json()["email"] is None
    assert [a["action"] for a in db.query("SELECT action FROM audit_log WHERE user_uuid = ? AND action LIKE "
                                          "'email%' ORDER BY id", (alice["uuid"],))] == \
        ["email_verification_sent", "email_verified", "email_notifications", "email_notifications", "email_removed"]
    assert client.get(EMAIL).status == 401


@pytest.mark.parametrize("settings", [{"EMAIL_ENABLED": None}])
def test_email_settings_api_without_email(db, client):
    alice = make_user(db, "alice")
    assert client.get(EMAIL, headers=alice["headers"]).json()["enabled"] is False
    for action in ("add", "remove", "notifications"):
        r = client.post(EMAIL, data={"action": action, "email": "a@example.com"}, headers=alice["headers"])
        assert r.status == 404
    assert rows(db, "email_outbox") == 0


def test_categories_api(db, client):
    w = market.world(db)
    api = "/api/categories.php"
    tree = client.get(api).json()["categories"]
    assert tree and all(set(c) == {"id", "name", "parent_id", "depth", "path", "items", "children"} for c in tree)
    before = rows(db, "item_categories")
    for data, field, status in (({"action": "add", "name": ""}, "name", 400),
                                ({"action": "add", "name": "a/b"}, "name", 400),
                                ({"action": "add", "name": "X", "parent_id": "999999"}, "parent_id", 400),
                                ({"action": "rename", "name": "Y"}, "category_id", 400),
                                ({"action": "fly"}, "action", 400)):
        r = client.post(api, data=data, headers=w.staff["headers"])
        assert r.status == status and field in r.json()["error"], (data, r.text)
    assert client.post(api, data={"action": "add", "name": "Books"}, headers=w.vendor["headers"]).status == 403
    assert rows(db, "item_categories") == before
    books = client.post(api, data={"action": "add", "name": "Books"}, headers=w.staff["headers"]).json()["category"]
    novels = client.post(api, data={"action": "add", "name": "Novels", "parent_id": str(books["id"])},
                         headers=w.staff["headers"]).json()
    assert novels["category"]["parent_id"] == books["id"]
    node = next(c for c in novels["categories"] if c["id"] == novels["category"]["id"])
    assert node["path"] == "Books / Novels" and node["depth"] == 1
    # a parent cannot move under its own child; a used one cannot be removed
    r = client.post(api, data={"action": "move", "category_id": str(books["id"]),
                               "parent_id": str(novels["category"]["id"])}, headers=w.staff["headers"])
    assert r.status == 400
    assert client.post(api, data={"action": "remove", "category_id": str(books["id"])},
                       headers=w.staff["headers"]).status == 409
    r = client.post(api, data={"action": "rename", "category_id": str(books["id"]), "name": "Old books"},
                    headers=w.admin["headers"])
    assert r.status == 200 and r.json()["category"]["name"] == "Old books"
    r = client.post(api, data={"action": "remove", "category_id": str(novels["category"]["id"])},
                    headers=w.staff["headers"])
    assert r.status == 200 and all(c["name"] != "Novels" for c in r.json()["categories"])


def test_agreement_api(db, client):
    w = market.world(db)
    api = "/api/agreement.php"
    assert client.get(api).json() == {"agreement": None, "history": [], "stores": []}
    assert client.post(api, data={"action": "accept"}, headers=w.vendor["headers"]).status == 409
    for who, data, status in ((w.vendor, {"action": "publish", "body": "Be nice."}, 403),
                              (w.admin, {"action": "publish", "body": "  "}, 400),
                              (w.admin, {"action": "publish", "body": "x" * 20001}, 400),
                              (w.admin, {"action": "fly"}, 400)):
        assert client.post(api, data=data, headers=who["headers"]).status == status
    assert rows(db, "vendor_agreements") == 0
    r = client.post(api, data={"action": "publish", "body": "Ship within three days."}, headers=w.admin["headers"])
    assert r.status == 200 and r.json()["version"] == 1 and r.json()["agreement"]["body"] == "Ship within three days."
    mine = client.get(api, headers=w.vendor["headers"]).json()
    assert [(s["storename"], s["accepted"]) for s in mine["stores"]] == [("shop", False)]
    assert client.post(api, data={"action": "accept"}, headers=w.buyer["headers"]).status == 403
    assert client.post(api, data={"action": "accept", "version": "x"}, headers=w.vendor["headers"]).status == 400
    assert client.post(api, data={"action": "accept", "version": "2"}, headers=w.vendor["headers"]).status == 409
    r = client.post(api, data={"action": "accept", "version": "1"}, headers=w.vendor["headers"])
    assert r.status == 200 and r.json()["stores"][0]["accepted"] is True
    client.post(api, data={"action": "publish", "body": "Ship within two days."}, headers=w.admin["headers"])
    state = client.get(api, headers=w.vendor["headers"]).json()
    assert state["agreement"]["version"] == 2 and state["stores"][0]["accepted"] is False
    assert [h["version"] for h in state["history"]] == [2, 1]
    # the store may not add items until it accepts again
    r = client.post("/api/items.php", data={"store_uuid": w.store["uuid"], "name": "new"}, headers=w.vendor["headers"])
    assert r.status == 403 and "agreement" in r.json()["error"]



@pytest.mark.parametrize("settings", [EMAIL_ON])
def test_concurrent_email_recovery_requests_get_exactly_the_limits(live_server, db, sink):
    alice = make_user(db, "alice")
    db.execute("UPDATE users SET email = 'alice@example.com', email_verified_at = '2026-01-01 00:00:00' "
               "WHERE uuid = ?", (alice["uuid"],))
    statuses = at_once(30, lambda i: post(live_server + "/recover-email.php", {"email": "alice@example.com"}))
    # per IP: exactly RESET_PER_IP requests counted, the rest 429
    assert statuses.count(200) == mail.RESET_PER_IP and statuses.count(429) == 30 - mail.RESET_PER_IP, statuses
    assert rows(db, "email_requests") == mail.RESET_PER_IP
    # per account: exactly RESET_PER_USER mails, however many requests raced
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE kind = 'reset'") == mail.RESET_PER_USER
    assert db.value("SELECT COUNT(*) FROM email_tokens WHERE purpose = 'reset'") == mail.RESET_PER_USER


def test_recovery_codes_api_makes_a_new_set_with_the_password(db, client):
    from lib import recovery
    alice = make_user(db, "alice")
    h = alice["headers"]
    assert client.get("/api/recovery-codes.php", headers=h).json() == {"codes_left": 0}
    for data, status in (({}, 400), ({"password": "wrong-password"}, 403)):
        assert client.post("/api/recovery-codes.php", data=data, headers=h).status == status
    assert rows(db, "recovery_codes") == 0
    r = client.post("/api/recovery-codes.php", data={"password": "password123"}, headers=h)
    assert r.status == 200 and r.header("Cache-Control") == "no-store"
    first = r.json()["recovery_codes"]
    assert len(set(first)) == 10 and r.json()["codes_left"] == 10
    second = client.post("/api/recovery-codes.php", json_body={"password": "password123"}, headers=h).json()
    assert not set(first) & set(second["recovery_codes"])
    assert not recovery.use_code(db, alice["uuid"], first[0])          # the old set stops working
    assert recovery.use_code(db, alice["uuid"], second["recovery_codes"][0])
    assert client.get("/api/recovery-codes.php", headers=h).json() == {"codes_left": 9}


def test_two_factor_api_enroll_login_and_disable(db, client, app):
    import pyotp
    from lib import recovery
    from tests.client import Client
    alice = make_user(db, "alice")
    h = alice["headers"]
    api = "/api/two-factor.php"
    assert client.get(api, headers=h).json() == {"enabled": False, "pending": False, "required": False}
    assert client.post(api, data={"action": "confirm", "otp": "123456"}, headers=h).status == 400    # not begun
    assert client.post(api, data={"action": "disable", "otp": "123456"}, headers=h).status == 409
    assert client.post(api, data={"action": "fly"}, headers=h).status == 400
    r = client.post(api, data={"action": "begin"}, headers=h)
    assert r.status == 200 and r.json()["pending"] and r.header("Cache-Control") == "no-store"
    secret = r.json()["secret"]
    assert r.json()["otpauth_uri"].startswith("otpauth://totp/") and secret in r.json()["otpauth_uri"]
    before = db.value("SELECT COUNT(*) FROM audit_log")
    assert client.post(api, data={"action": "confirm", "otp": "abcdef"}, headers=h).status == 400
    assert db.value("SELECT totp_enabled FROM users WHERE uuid = ?", (alice["uuid"],)) == 0
    assert db.value("SELECT COUNT(*) FROM audit_log") == before
    r = client.post(api, data={"action": "confirm", "otp": pyotp.TOTP(secret).now()}, headers=h)
    assert r.status == 200 and r.json() == {"ok": True, "enabled": True, "pending": False, "required": False}
    assert client.post(api, data={"action": "begin"}, headers=h).status == 409
    # a password alone no longer logs in (API client: 401 with otp_required)
    r = Client(app).post("/login.php", data={"username": "alice", "password": "password123"})
    assert r.status == 401 and r.json()["otp_required"] is True
    codes = recovery.issue_codes(db, alice["uuid"])
    r = client.post(api, data={"action": "disable", "otp": codes[0]}, headers=h)
    assert r.status == 200 and r.json()["enabled"] is False
    assert Client(app).post("/login.php", data={"username": "alice", "password": "password123"}).status == 200


def test_plan_api_reads_the_commissions_from_the_config(db, client):
    from lib import config
    w = market.world(db)
    rows = {t["tier"]: t for t in client.get("/api/plan.php").json()["tiers"]}
    assert list(rows) == list(config.TIERS)
    assert rows["gold"]["commission"] == str(config.commission(db, "gold")) and rows["gold"]["commission_percent"] == "2%"
    r = client.post("/admin/config.php", data={"gold_account_commission": "0.03"}, headers=w.admin["headers"])
    assert r.status == 200, r.text
    gold = next(t for t in client.get("/api/plan.php").json()["tiers"] if t["tier"] == "gold")
    assert gold["commission"] == "0.03" and gold["commission_percent"] == "3%"
