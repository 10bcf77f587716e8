"""Private messages and order threads, by the API and the pages, on
SQLite and MariaDB: privacy (404 for outsiders), staff only on disputed orders, blocking,
the per-user limit exact under concurrency, bad input refused with nothing written."""
import pytest

from lib import messages, orders
from tests import market
from tests.client import Client
from tests.concurrency import at_once, post
from tests.factories import login
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

API = "/api/messages.php"
HTML = {"Accept": "text/html"}


def counts(db):
    return {t: db.value(f"SELECT COUNT(*) FROM {t}") for t in
            ("messages", "message_threads", "message_reads", "user_blocks", "notifications", "login_attempts")}


def send(client, who, **data):
    return client.post(API, data=data, headers=who["headers"])


def test_private_conversation_list_unread_and_read(db, client):
    w = market.world(db)
    b, v = w.buyer, w.vendor
    r = send(client, b, to="vendor1", body="Hello\nis the widget blue?")
    assert r.status == 200, r
    sent = r.json()
    assert sent["ok"] and sent["message"]["body"] == "Hello\nis the widget blue?"
    assert sent["thread"]["peer"] == {"uuid": v["uuid"], "username": "vendor1"}
    assert send(client, b, to="VENDOR1", body="second").status == 200      # names are case-insensitive
    # the vendor's list: one conversation, the last message, two unread
    listing = client.get(API, headers=v["headers"]).json()
    assert len(listing["conversations"]) == 1
    conv = listing["conversations"][0]
    assert conv["kind"] == "private" and conv["peer"]["username"] == "buyer1"
    assert conv["unread"] == 2 and conv["last_message"]["preview"] == "second"
    assert conv["link"] == "/messages.php?with=buyer1"
    # the sender has read their own messages
    assert client.get(API, headers=b["headers"]).json()["conversations"][0]["unread"] == 0
    # reading the thread marks it read
    thread = client.get(API + "?with=buyer1", headers=v["headers"]).json()
    assert [m["body"] for m in thread["messages"]] == ["Hello\nis the widget blue?", "second"]
    assert thread["blocked_by_me"] is False
    assert client.get(API, headers=v["headers"]).json()["conversations"][0]["unread"] == 0
    # a reply: one thread for the pair
    assert send(client, v, to="buyer1", body="Yes, blue.").status == 200
    assert db.value("SELECT COUNT(*) FROM message_threads") == 1
    assert client.get(API, headers=b["headers"]).json()["conversations"][0]["unread"] == 1
    by_uuid = client.get(API + "?thread=" + sent["thread"]["uuid"], headers=b["headers"]).json()
    assert [m["body"] for m in by_uuid["messages"]][-1] == "Yes, blue."


def test_outsiders_get_404_and_see_nothing(db, client, app):
    w = market.world(db)
    b, v, x = w.buyer, w.vendor, w.stranger
    thread_uuid = send(client, b, to="vendor1", body="private words").json()["thread"]["uuid"]
    order_uuid = market.order(db, w, "COMPLETED")
    order_thread = send(client, b, transaction_uuid=order_uuid, body="where is it?").json()["thread"]["uuid"]
    # by API: the private thread by uuid, the order thread by order and by uuid
    for path in (f"{API}?thread={thread_uuid}", f"{API}?thread={order_thread}",
                 f"{API}?transaction_uuid={order_uuid}"):
        r = client.get(path, headers=x["headers"])
        assert r.status == 404, (path, r)
        assert "private words" not in r.text and "where is it" not in r.text
    r = send(client, x, transaction_uuid=order_uuid, body="let me in")
    assert r.status == 404, r
    # the stranger's own list and conversation with the vendor are empty
    assert client.get(API, headers=x["headers"]).json()["conversations"] == []
    assert client.get(API + "?with=vendor1", headers=x["headers"]).json()["messages"] == []
    # by page
    c = Client(app)
    login(c, "stranger1")
    for path in ("/messages.php?order=" + order_uuid, "/messages.php?order=nonsense"):
        r = c.get(path, headers=HTML)
        assert r.status == 404, (path, r)
        assert "where is it" not in r.text
    assert "private words" not in c.get("/messages.php?with=vendor1", headers=HTML).text
    assert "private words" not in c.get("/messages.php", headers=HTML).text
    assert db.value("SELECT COUNT(*) FROM messages") == 2


def test_order_thread_parties_and_staff_only_when_disputed(db, client, app):
    w = market.world(db)
    b, v, st = w.buyer, w.vendor, w.staff
    order_uuid = market.order(db, w, "COMPLETED")
    assert send(client, b, transaction_uuid=order_uuid, body="ship soon please").status == 200
    assert send(client, v, transaction_uuid=order_uuid, body="tomorrow").status == 200
    seen = client.get(f"{API}?transaction_uuid={order_uuid}", headers=b["headers"]).json()
    assert [m["body"] for m in seen["messages"]] == ["ship soon please", "tomorrow"] and seen["can_post"]
    assert seen["order"]["buyer_username"] == "buyer1" and seen["thread"]["kind"] == "order"
    # the vendor's conversation list includes the order thread
    conv = client.get(API, headers=v["headers"]).json()["conversations"]
    assert [c["kind"] for c in conv] == ["order"] and conv[0]["order"]["uuid"] == order_uuid
    # staff: not disputed -> 404, reading and writing
    assert client.get(f"{API}?transaction_uuid={order_uuid}", headers=st["headers"]).status == 404
    r = send(client, st, transaction_uuid=order_uuid, body="staff here")
    assert r.status == 404, r
    c = Client(app)
    login(c, "staff1")
    page = c.get("/payment.php?uuid=" + order_uuid, headers=HTML)
    assert page.status == 200 and "ship soon please" not in page.text
    assert c.get("/messages.php?order=" + order_uuid, headers=HTML).status == 404
    # disputed: staff see and write, and the parties are notified
    orders.take_action(db, b, order_uuid, "dispute", comment="nothing came")
    seen = client.get(f"{API}?transaction_uuid={order_uuid}", headers=st["headers"]).json()
    assert seen["can_post"] and len(seen["messages"]) == 2
    assert send(client, st, transaction_uuid=order_uuid, body="staff here").status == 200
    note = db.query("SELECT user_uuid FROM notifications WHERE kind = 'message' AND text LIKE '%staff1%'")
    assert {n["user_uuid"] for n in note} == {b["uuid"], v["uuid"]}
    page = c.get("/payment.php?uuid=" + order_uuid, headers=HTML)
    assert "ship soon please" in page.text and 'id="order-message-form"' in page.text
    assert "staff here" in c.get("/messages.php?order=" + order_uuid, headers=HTML).text
    # resolved: staff still read, may not write (403), nothing stored
    from lib import disputes
    disputes.resolve(db, st, db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (order_uuid,)),
                     "refund")
    before = counts(db)
    r = send(client, st, transaction_uuid=order_uuid, body="late word")
    assert r.status == 403 and "dispute is open" in r.json()["error"]
    assert counts(db) == before
    assert client.get(f"{API}?transaction_uuid={order_uuid}", headers=st["headers"]).json()["can_post"] is False
    # the parties still write
    assert send(client, b, transaction_uuid=order_uuid, body="thanks").status == 200


def test_blocking_refuses_messages_and_stores_nothing(db, client, app):
    w = market.world(db)
    b, v = w.buyer, w.vendor
    assert send(client, b, to="vendor1", body="hi").status == 200
    r = send(client, v, action="block", username="buyer1")
    assert r.status == 200 and [u["username"] for u in r.json()["blocked"]] == ["buyer1"]
    assert send(client, v, action="block", username="buyer1").status == 200          # idempotent
    assert db.value("SELECT COUNT(*) FROM user_blocks") == 1
    before = counts(db)
    r = send(client, b, to="vendor1", body="are you there?")
    assert r.status == 403 and r.json()["error"] == "vendor1 has blocked you: your message was not sent"
    r = send(client, v, to="buyer1", body="one more thing")
    assert r.status == 403 and "unblock" in r.json()["error"]
    assert counts(db) == before
    assert client.get(API + "?with=buyer1", headers=v["headers"]).json()["blocked_by_me"] is True
    # the page shows the refusal and the unblock form
    c = Client(app)
    token = login(c, "buyer1")
    before = counts(db)
    r = c.post("/messages.php?with=vendor1", data={"csrf_token": token, "action": "send", "body": "hello?"},
               headers=HTML)
    assert r.status == 403 and "vendor1 has blocked you" in r.text
    assert counts(db) == before
    cv = Client(app)
    vtoken = login(cv, "vendor1")
    assert 'id="unblock-form"' in cv.get("/messages.php?with=buyer1", headers=HTML).text
    r = cv.post("/messages.php?with=buyer1", data={"csrf_token": vtoken, "action": "unblock", "username": "buyer1"},
                headers=HTML)
    assert r.status == 303
    assert db.value("SELECT COUNT(*) FROM user_blocks") == 0
    assert send(client, b, to="vendor1", body="are you there?").status == 200


def test_bad_input_names_the_field_and_changes_nothing(db, client):
    w = market.world(db)
    b = w.buyer
    order_uuid = market.order(db, w, "COMPLETED")
    before = counts(db)
    cases = [
        ({"to": "vendor1"}, "body"),
        ({"to": "vendor1", "body": "   "}, "body"),
        ({"to": "vendor1", "body": "x" * 10001}, "body"),
        ({"to": "vendor1", "body": "bell\x07"}, "body"),
        ({"body": "hi"}, "to"),
        ({"to": "no such <b>", "body": "hi"}, "to"),
        ({"to": "buyer1", "body": "hi"}, "to"),                       # yourself
        ({"to": "x" * 17, "body": "hi"}, "to"),
        ({"transaction_uuid": order_uuid, "body": ""}, "body"),
        ({"transaction_uuid": order_uuid, "to": "vendor1", "body": "hi"}, "to"),
        ({"action": "shout", "to": "vendor1", "body": "hi"}, "action"),
        ({"action": "block"}, "username"),
        ({"action": "block", "username": "buyer1"}, "username"),
    ]
    for data, field in cases:
        r = send(client, b, **data)
        assert r.status == 400, (data, r)
        assert field in r.json()["error"], (data, r.text)
    r = client.post(API, json_body={"to": "vendor1", "body": ["not", "text"]}, headers=b["headers"])
    assert r.status == 400 and "body" in r.json()["error"]
    r = send(client, b, to="nobody9", body="hi")
    assert r.status == 404 and "nobody9" in r.json()["error"]
    r = send(client, b, transaction_uuid="not-a-uuid", body="hi")
    assert r.status == 404
    assert client.get(API + "?with=a!b", headers=b["headers"]).status == 400
    assert client.get(API + "?with=vendor1&transaction_uuid=" + order_uuid, headers=b["headers"]).status == 400
    assert client.get(API + "?thread=nope", headers=b["headers"]).status == 404
    assert counts(db) == before
    # exactly 10000 characters are fine
    assert send(client, b, to="vendor1", body="y" * 10000).status == 200


def test_bodies_are_shown_as_escaped_text_with_newlines(db, client, app):
    w = market.world(db)
    hostile = "<script>alert(1)</script>\nline two"
    assert send(client, w.buyer, to="vendor1", body=hostile).status == 200
    order_uuid = market.order(db, w, "COMPLETED")
    assert send(client, w.buyer, transaction_uuid=order_uuid, body=hostile).status == 200
    c = Client(app)
    login(c, "vendor1")
    for path in ("/messages.php", "/messages.php?with=buyer1", "/messages.php?order=" + order_uuid,
                 "/payment.php?uuid=" + order_uuid):
        text = c.get(path, headers=HTML).text
        assert "<script>alert" not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
    thread = c.get("/messages.php?with=buyer1", headers=HTML).text
    assert "&lt;/script&gt;\nline two" in thread      # the newline is kept (the thread is pre-wrap)


def test_pages_send_reply_and_return_to_the_order(db, app):
    w = market.world(db)
    c = Client(app)
    token = login(c, "buyer1")
    r = c.post("/messages.php", data={"csrf_token": token, "action": "send", "to": "vendor1", "body": "from the page"},
               headers=HTML)
    assert r.status == 303 and r.header("Location") == "/messages.php?with=vendor1"
    r = c.post("/messages.php", data={"csrf_token": token, "action": "send", "to": "", "body": "x"}, headers=HTML)
    assert r.status == 400 and 'id="to-error"' in r.text
    r = c.post("/messages.php", data={"action": "send", "to": "vendor1", "body": "no token"}, headers=HTML)
    assert r.status == 403
    order_uuid = market.order(db, w, "COMPLETED")
    r = c.post("/messages.php?order=" + order_uuid,
               data={"csrf_token": token, "action": "send", "body": "about the order", "return_to": "payment"},
               headers=HTML)
    assert r.status == 303 and r.header("Location") == f"/payment.php?uuid={order_uuid}#order-messages"
    page = c.get("/payment.php?uuid=" + order_uuid, headers=HTML).text
    assert "about the order" in page and 'id="order-message-form"' in page
    assert db.value("SELECT COUNT(*) FROM messages") == 2


def test_the_limit_is_exact_under_concurrency(db, live_server, monkeypatch):
    monkeypatch.setattr(messages, "MESSAGES_PER_WINDOW", 5)
    w = market.world(db)
    order_uuid = market.order(db, w, "COMPLETED")
    n = 16

    def send_one(i):
        data = {"to": "vendor1", "body": f"m{i}"} if i % 2 else {"transaction_uuid": order_uuid, "body": f"m{i}"}
        return post(live_server + API, headers={"Authorization": "Bearer " + w.buyer["api_key"]}, json_body=data)
    results = at_once(n, send_one)
    assert results == [200] * 5 + [429] * (n - 5), results
    assert db.value("SELECT COUNT(*) FROM messages") == 5
    assert db.value("SELECT COUNT(*) FROM login_attempts WHERE kind = 'message'") == 5
    # another user has a limit of their own
    c = Client(__import__("wsgi").application)
    assert send(c, w.vendor, to="buyer1", body="mine").status == 200
    r = send(c, w.buyer, to="vendor1", body="one too many")
    assert r.status == 429 and int(r.header("Retry-After")) > 0


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("settings", [{"EMAIL_ENABLED": "1"}])
def test_a_new_message_mails_a_recipient_who_enabled_it(db, client, enabled):
    from lib import mail
    w = market.world(db)
    db.execute("UPDATE users SET email = 'v@example.com', email_verified_at = '2026-01-01 00:00:00', "
               "email_off = ? WHERE uuid = ?", (None if enabled else "message", w.vendor["uuid"]))
    assert "message" in mail.KINDS
    assert send(client, w.buyer, to="vendor1", body="secret body").status == 200
    rows = db.query("SELECT to_addr, kind, subject, body FROM email_outbox")
    if not enabled:
        assert rows == []
        return
    assert len(rows) == 1 and rows[0]["to_addr"] == "v@example.com" and rows[0]["kind"] == "message"
    assert "buyer1" in rows[0]["subject"] and "/messages.php?with=buyer1" in rows[0]["body"]
    assert "secret body" not in rows[0]["body"]
