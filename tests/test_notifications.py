"""in-app notifications, on SQLite and MariaDB: one for each event kind
(new message, order status changes, dispute updates) to the people concerned, the unread
count in the navigation, mark read / mark all read, privacy (404 on another's), and the
message.created webhook event."""
import re

from lib import disputes, orders, webhooks
from tests import market
from tests.client import Client
from tests.factories import login
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

API = "/api/notifications.php"
HTML = {"Accept": "text/html"}


def kinds_of(db, user):
    return [r["kind"] for r in db.query("SELECT kind FROM notifications WHERE user_uuid = ? ORDER BY id",
                                        (user["uuid"],))]


def test_every_event_kind_notifies_the_people_concerned(db, client):
    w = market.world(db)
    b, v, st, x = w.buyer, w.vendor, w.staff, w.stranger
    uuid = market.order(db, w, "PENDING")                          # order.created: the store hears of it
    assert kinds_of(db, v) == ["order.created"] and kinds_of(db, b) == []
    with db.transaction():                                          # as cron reports a payment
        webhooks.order_event(db, "order.paid", uuid)
    assert kinds_of(db, b) == ["order.paid"] and kinds_of(db, v)[-1] == "order.paid"
    db.execute("UPDATE evm_transactions SET escrow_address = ? WHERE transaction_uuid = ?", (market.ADDR_B, uuid))
    for s in ("PENDING", "COMPLETED"):
        from lib import status_machine as sm
        sm.append_status(db, uuid, s, "1")
    orders.take_action(db, v, uuid, "dispatch", comment="sent")
    assert kinds_of(db, b)[-1] == "order.dispatched"
    orders.take_action(db, b, uuid, "dispute", comment="broken")
    assert kinds_of(db, v)[-1] == "dispute.opened"
    assert "dispute.opened" not in kinds_of(db, b)                  # the buyer opened it
    dispute_uuid = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (uuid,))
    disputes.add_claim(db, v, dispute_uuid, "it was fine when it left")
    assert kinds_of(db, b)[-1] == "dispute.claim_added" and "dispute.claim_added" not in kinds_of(db, v)
    disputes.resolve(db, st, dispute_uuid, "refund")
    assert kinds_of(db, b)[-1] == "dispute.resolved" and kinds_of(db, v)[-1] == "dispute.resolved"
    with db.transaction():                                          # as cron reports the refund confirmed
        webhooks.payout_event(db, "CANCEL", uuid)
    assert kinds_of(db, b)[-1] == "order.cancelled"
    other = market.order(db, w, "COMPLETED")
    with db.transaction():
        webhooks.payout_event(db, "RELEASE", other)
    assert kinds_of(db, v)[-1] == "order.released"
    assert client.post("/api/messages.php", data={"to": "buyer1", "body": "hi"}, headers=v["headers"]).status == 200
    assert kinds_of(db, b)[-1] == "message"
    # the links lead to the order, the dispute, the conversation; nobody else hears anything
    links = {r["kind"]: r["link"] for r in db.query("SELECT kind, link FROM notifications WHERE user_uuid = ?",
                                                    (b["uuid"],))}
    assert links["order.paid"] == f"/payment.php?uuid={uuid}"
    assert links["dispute.resolved"] == f"/dispute.php?uuid={dispute_uuid}"
    assert links["message"] == "/messages.php?with=vendor1"
    assert kinds_of(db, x) == [] and kinds_of(db, st) == []


def test_api_list_mark_read_and_privacy(db, client):
    w = market.world(db)
    b, x = w.buyer, w.stranger
    for text in ("one", "two", "three"):
        client.post("/api/messages.php", data={"to": "buyer1", "body": text}, headers=w.vendor["headers"])
    r = client.get(API, headers=b["headers"]).json()
    assert r["unread"] == 3 and len(r["notifications"]) == 3
    ids = [n["id"] for n in r["notifications"]]
    assert ids == sorted(ids, reverse=True)                         # newest first
    # an outsider: 404 on someone else's notification, and it stays unread
    r = client.post(API, data={"id": str(ids[0])}, headers=x["headers"])
    assert r.status == 404, r
    assert client.get(API, headers=x["headers"]).json() == {"notifications": [], "unread": 0, "limit": 50,
                                                            "offset": 0}
    assert client.get(API, headers=b["headers"]).json()["unread"] == 3
    # bad input: 400 naming the field, nothing changes
    for data, field in (({}, "id"), ({"id": "abc"}, "id"), ({"id": "-1"}, "id"), ({"all": "yes"}, "all")):
        r = client.post(API, data=data, headers=b["headers"])
        assert r.status == 400 and field in r.json()["error"], (data, r)
    assert client.get(API + "?unread=2", headers=b["headers"]).status == 400
    assert db.value("SELECT COUNT(*) FROM notifications WHERE read_at IS NULL") == 3
    # mark one, then all
    r = client.post(API, data={"id": str(ids[1])}, headers=b["headers"]).json()
    assert r["notification"]["read"] is True and r["notification"]["id"] == ids[1]
    unread = client.get(API + "?unread=1", headers=b["headers"]).json()
    assert [n["id"] for n in unread["notifications"]] == [ids[0], ids[2]] and unread["unread"] == 2
    assert client.post(API, data={"all": "1"}, headers=b["headers"]).json() == {"ok": True, "marked": 2}
    assert client.get(API, headers=b["headers"]).json()["unread"] == 0


def badge(text):
    m = re.search(r'<span class="badge unread" id="unread-badge"[^>]*>(\d+)</span>', text)
    return int(m.group(1)) if m else 0


def test_the_unread_count_is_in_the_navigation(db, app, client):
    w = market.world(db)
    c = Client(app)
    token = login(c, "vendor1")
    assert badge(c.get("/marketplace.php", headers=HTML).text) == 0
    client.post("/api/messages.php", data={"to": "vendor1", "body": "hello"}, headers=w.buyer["headers"])
    market.order(db, w, "PENDING")
    page = c.get("/marketplace.php", headers=HTML).text
    assert badge(page) == 2 and 'href="/notifications.php"' in page
    assert badge(Client(app).get("/marketplace.php", headers=HTML).text) == 0   # anonymous: no count at all
    # the list page, newest first, with mark-read forms carrying the CSRF token
    listing = c.get("/notifications.php", headers=HTML).text
    assert listing.index("New order") < listing.index("New message from buyer1")
    assert f'name="csrf_token" value="{token}"' in listing
    # opening the conversation marks its notification read
    c.get("/messages.php?with=buyer1", headers=HTML)
    assert badge(c.get("/marketplace.php", headers=HTML).text) == 1
    # mark all read by the page: refused without the token, done with it
    assert c.post("/notifications.php", data={"action": "read_all"}, headers=HTML).status == 403
    assert badge(c.get("/marketplace.php", headers=HTML).text) == 1
    r = c.post("/notifications.php", data={"action": "read_all", "csrf_token": token}, headers=HTML)
    assert r.status == 303
    assert badge(c.get("/marketplace.php", headers=HTML).text) == 0
    # mark one read and follow it; someone else's is 404
    client.post("/api/messages.php", data={"to": "vendor1", "body": "again"}, headers=w.buyer["headers"])
    note = db.value("SELECT id FROM notifications WHERE read_at IS NULL")
    other = Client(app)
    other_token = login(other, "stranger1")
    r = other.post("/notifications.php", data={"action": "read", "id": str(note), "csrf_token": other_token},
                   headers=HTML)
    assert r.status == 404
    r = c.post("/notifications.php", data={"action": "read", "id": str(note), "go": "1", "csrf_token": token},
               headers=HTML)
    assert r.status == 303 and r.header("Location") == "/messages.php?with=buyer1"
    assert db.value("SELECT COUNT(*) FROM notifications WHERE read_at IS NULL") == 0


def test_the_nav_count_is_one_indexed_query(db, app):
    """The badge costs one COUNT on idx_notifications_unread for a signed-in user, none otherwise."""
    from lib import notifications, web
    w = market.world(db)
    seen = []
    real = db.value

    def spy(sql, *a, **kw):
        if "notifications" in sql:
            seen.append(sql)
        return real(sql, *a, **kw)
    db.value = spy
    try:
        assert web._unread_notifications(db, None) == 0
        assert seen == []
        notifications.notify(db, w.buyer["uuid"], "message", "hi", "/messages.php?with=vendor1")
        assert web._unread_notifications(db, w.buyer) == 1
    finally:
        del db.value
    assert seen == ["SELECT COUNT(*) FROM notifications WHERE user_uuid = ? AND read_at IS NULL"]
    if db.is_sqlite:
        plan = db.query("EXPLAIN QUERY PLAN " + seen[0], (w.buyer["uuid"],))
        assert "idx_notifications_unread" in " ".join(str(r.get("detail")) for r in plan), plan
    else:
        plan = db.query("EXPLAIN " + seen[0], (w.buyer["uuid"],))
        assert plan[0]["key"] == "idx_notifications_unread", plan


def test_messages_reach_webhooks_of_the_people_concerned(db, client):
    w = market.world(db)
    buyer_hook, _ = webhooks.create(db, w.buyer, "http://127.0.0.1:9/b", "message.created", private_ok=True)
    store_hook, _ = webhooks.create(db, w.vendor, "http://127.0.0.1:9/s", "message.created",
                                    store_uuid=w.store["uuid"], private_ok=True)
    stranger_hook, _ = webhooks.create(db, w.stranger, "http://127.0.0.1:9/x", "", private_ok=True)
    assert "message.created" in stranger_hook["events"]
    client.post("/api/messages.php", data={"to": "buyer1", "body": "private"}, headers=w.vendor["headers"])
    order_uuid = market.order(db, w, "COMPLETED")
    client.post("/api/messages.php", data={"transaction_uuid": order_uuid, "body": "order talk"},
                headers=w.buyer["headers"])
    rows = db.query("SELECT d.webhook_id, e.type, e.body FROM webhook_deliveries d JOIN webhook_events e "
                    "ON e.id = d.event_id WHERE e.type = 'message.created' ORDER BY d.id")
    import json
    got = [(r["webhook_id"], json.loads(r["body"])["data"]["message"]["body"]) for r in rows]
    assert got == [(buyer_hook["id"], "private"), (buyer_hook["id"], "order talk"), (store_hook["id"], "order talk")]
    assert all(r["webhook_id"] != stranger_hook["id"] for r in rows)
    private = json.loads(rows[0]["body"])["data"]
    assert private["thread"]["peer"]["username"] == "vendor1" and private["message"]["sender_username"] == "vendor1"
    assert json.loads(rows[2]["body"])["data"]["thread"]["transaction_uuid"] == order_uuid
