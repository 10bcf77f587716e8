"""Support tickets and store warnings, through the JSON API and
the pages, on SQLite and MariaDB: who sees a ticket, the status transitions, bad input
(400 naming the field, nothing written), CSRF on the pages, the audit rows."""
import re

from tests import market
from tests.client import Client
from tests.factories import login
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

API = "/api/tickets.php"
HTML = {"Accept": "text/html,application/xhtml+xml"}
TABLES = ("support_tickets", "ticket_messages", "ticket_statuses", "store_warnings", "audit_log")


def counts(db):
    return {t: db.value(f"SELECT COUNT(*) FROM {t}") for t in TABLES}


def open_ticket(client, who, **extra):
    data = dict({"action": "create", "subject": "Where is my parcel?", "body": "It has been a week."}, **extra)
    r = client.post(API, data=data, headers=who["headers"])
    assert r.status == 200, r.text
    return r.json()["ticket"]


def statuses(db, uuid):
    return [r["status"] for r in db.query("SELECT status FROM ticket_statuses WHERE ticket_uuid = ? ORDER BY id",
                                          (uuid,))]


def test_ticket_lifecycle_open_answered_open_closed(db, client):
    w = market.world(db)
    order = market.order(db, w, "COMPLETED")
    t = open_ticket(client, w.buyer, transaction_uuid=order)
    assert t["status"] == "open" and t["transaction_uuid"] == order and t["username"] == "buyer1"
    assert [m["body"] for m in t["messages"]] == ["It has been a week."]

    r = client.post(API, data={"action": "reply", "uuid": t["uuid"], "body": "We are looking."},
                    headers=w.staff["headers"])
    assert r.status == 200 and r.json()["ticket"]["status"] == "answered"
    assert r.json()["ticket"]["messages"][-1]["staff_reply"] is True
    # a second staff message leaves it answered (no new status row)
    client.post(API, data={"action": "reply", "uuid": t["uuid"], "body": "Found it."}, headers=w.staff["headers"])
    assert statuses(db, t["uuid"]) == ["open", "answered"]
    # the user's reply to an answered ticket opens it again
    r = client.post(API, data={"action": "reply", "uuid": t["uuid"], "body": "Thanks, but?"}, headers=w.buyer["headers"])
    assert r.json()["ticket"]["status"] == "open"
    r = client.post(API, data={"action": "assign", "uuid": t["uuid"], "assignee": "staff1"},
                    headers=w.admin["headers"])
    assert r.status == 200 and r.json()["ticket"]["assigned_username"] == "staff1"
    r = client.post(API, data={"action": "close", "uuid": t["uuid"], "comment": "solved"}, headers=w.staff["headers"])
    assert r.status == 200 and r.json()["ticket"]["status"] == "closed"
    assert statuses(db, t["uuid"]) == ["open", "answered", "open", "closed"]
    # closed: no more replies, no second close; nothing written
    before = counts(db)
    for who, data in ((w.buyer, {"action": "reply", "uuid": t["uuid"], "body": "again"}),
                      (w.staff, {"action": "reply", "uuid": t["uuid"], "body": "again"}),
                      (w.staff, {"action": "close", "uuid": t["uuid"]})):
        assert client.post(API, data=data, headers=who["headers"]).status == 409
    assert counts(db) == before
    audited = [r["action"] for r in db.query("SELECT action FROM audit_log WHERE target = ? ORDER BY id",
                                             (t["uuid"],))]
    assert audited == ["ticket_opened", "ticket_replied", "ticket_replied", "ticket_assigned", "ticket_closed"]
    # the queue filters by status; the opener's list has the ticket
    q = client.get(API + "?queue=1&status=closed", headers=w.staff["headers"]).json()["tickets"]
    assert [x["uuid"] for x in q] == [t["uuid"]]
    assert client.get(API + "?queue=1&status=open", headers=w.staff["headers"]).json()["tickets"] == []
    mine = client.get(API, headers=w.buyer["headers"]).json()["tickets"]
    assert [(x["uuid"], x["status"]) for x in mine] == [(t["uuid"], "closed")]


def test_only_the_opener_and_staff_see_a_ticket(db, client):
    w = market.world(db)
    t = open_ticket(client, w.buyer)
    for who in (w.stranger, w.vendor):
        assert client.get(f"{API}?uuid={t['uuid']}", headers=who["headers"]).status == 404
        r = client.post(API, data={"action": "reply", "uuid": t["uuid"], "body": "hi"}, headers=who["headers"])
        assert r.status == 404
        assert client.get(API, headers=who["headers"]).json()["tickets"] == []
        assert client.get(API + "?queue=1", headers=who["headers"]).status == 403
        for action in ("assign", "close"):
            assert client.post(API, data={"action": action, "uuid": t["uuid"]}, headers=who["headers"]).status == 403
    for who in (w.buyer, w.staff, w.admin):
        assert client.get(f"{API}?uuid={t['uuid']}", headers=who["headers"]).status == 200
    assert db.value("SELECT COUNT(*) FROM ticket_messages") == 1
    # the pages answer the same 404
    c = Client(client.app)
    login(c, "stranger1")
    assert c.get(f"/support/ticket.php?uuid={t['uuid']}", headers=HTML).status == 404
    assert c.get(f"/support/ticket.php?uuid={t['uuid']}", headers=HTML).text.count("parcel") == 0


def test_bad_input_names_the_field_and_writes_nothing(db, client):
    w = market.world(db)
    others = market.order(db, w, "COMPLETED", buyer=w.stranger)
    t = open_ticket(client, w.buyer)
    before = counts(db)
    h = w.buyer["headers"]
    cases = [
        ({"action": "create", "body": "b"}, "subject"),
        ({"action": "create", "subject": "  ", "body": "b"}, "subject"),
        ({"action": "create", "subject": "x" * 201, "body": "b"}, "subject"),
        ({"action": "create", "subject": "two\nlines", "body": "b"}, "subject"),
        ({"action": "create", "subject": "s"}, "body"),
        ({"action": "create", "subject": "s", "body": "x" * 10001}, "body"),
        ({"action": "create", "subject": "s", "body": "b", "transaction_uuid": "nope"}, "transaction_uuid"),
        ({"action": "create", "subject": "s", "body": "b", "transaction_uuid": others}, "transaction_uuid"),
        ({"action": "create", "subject": "s", "body": "b",
          "transaction_uuid": "00000000-0000-4000-8000-000000000000"}, "transaction_uuid"),
        ({"action": "reply", "uuid": t["uuid"], "body": ""}, "body"),
        ({"action": "fly"}, "action"),
    ]
    for data, field in cases:
        r = client.post(API, data=data, headers=h)
        assert r.status == 400 and field in r.json()["error"], (data, r.text)
    for data, status in (({"action": "assign", "uuid": t["uuid"], "assignee": "buyer1"}, 404),
                         ({"action": "assign", "uuid": t["uuid"], "assignee": "nobody"}, 404),
                         ({"action": "assign", "uuid": t["uuid"], "assignee": "x" * 65}, 400),
                         ({"action": "close", "uuid": t["uuid"], "comment": "x" * 256}, 400)):
        r = client.post(API, data=data, headers=w.staff["headers"])
        assert r.status == status, (data, r.text)
    assert client.get(API + "?queue=1&status=maybe", headers=w.staff["headers"]).status == 400
    assert client.get(API + "?uuid=not-a-uuid", headers=h).status == 404
    assert counts(db) == before
    # the vendor may open a ticket about an order of their store
    vendor_order = market.order(db, w, "COMPLETED")
    assert open_ticket(client, w.vendor, transaction_uuid=vendor_order)["transaction_uuid"] == vendor_order


def test_pages_open_answer_and_need_their_csrf_token(db, app):
    w = market.world(db)
    user, staff = Client(app), Client(app)
    token = login(user, "buyer1")
    staff_token = login(staff, "staff1")
    form = {"subject": "<b>Help</b>", "body": "Parcel <script>x</script> lost"}
    before = counts(db)
    assert user.post("/support/new.php", data=form, headers=HTML).status == 403
    assert counts(db) == before
    r = user.post("/support/new.php", data=dict(form, subject="", csrf_token=token), headers=HTML)
    assert r.status == 400 and 'id="subject-error"' in r.text and counts(db) == before
    r = user.post("/support/new.php", data=dict(form, csrf_token=token), headers=HTML)
    assert r.status == 303 and r.header("Location").startswith("/support/ticket.php?uuid=")
    uuid = r.header("Location").split("=", 1)[1]
    page = user.get(r.header("Location"), headers=HTML)
    assert "&lt;script&gt;" in page.text and "<script>x" not in page.text and "&lt;b&gt;Help" in page.text
    assert "<b>Help" not in user.get("/support.php", headers=HTML).text
    # staff answer from the queue
    queue = staff.get("/staff/tickets.php", headers=HTML)
    assert queue.status == 200 and uuid in queue.text
    answer = {"action": "reply", "uuid": uuid, "body": "Sent again today."}
    assert staff.post(f"/staff/tickets.php?uuid={uuid}", data=answer, headers=HTML).status == 403
    r = staff.post(f"/staff/tickets.php?uuid={uuid}", data=dict(answer, csrf_token=staff_token), headers=HTML)
    assert r.status == 303
    page = user.get(f"/support/ticket.php?uuid={uuid}", headers=HTML)
    assert "Sent again today." in page.text and re.search(r'id="ticket-status">answered<', page.text)
    # the user's reply needs the token too; with it, the ticket is open again
    assert user.post(f"/support/ticket.php?uuid={uuid}", data={"body": "ok?"}, headers=HTML).status == 403
    r = user.post(f"/support/ticket.php?uuid={uuid}", data={"body": "ok?", "csrf_token": token}, headers=HTML)
    assert r.status == 303 and statuses(db, uuid) == ["open", "answered", "open"]
    for data in ({"action": "assign", "uuid": uuid, "assignee": "staff1"}, {"action": "close", "uuid": uuid}):
        assert staff.post("/staff/tickets.php", data=data, headers=HTML).status == 403
        assert staff.post("/staff/tickets.php", data=dict(data, csrf_token=staff_token), headers=HTML).status == 303
    assert statuses(db, uuid)[-1] == "closed"
    assert "ticket-closed" in user.get(f"/support/ticket.php?uuid={uuid}", headers=HTML).text
    # a customer cannot reach the staff queue
    assert user.get("/staff/tickets.php", headers=HTML).status == 403


def test_store_warnings_shown_on_the_store_and_retired(db, client, app):
    w = market.world(db)
    api = "/api/store-warnings.php"
    before = counts(db)
    for data, field, status in (({"action": "add", "store": "shop"}, "reason", 400),
                                ({"action": "add", "store": "x" * 65, "reason": "r"}, "store", 400),
                                ({"action": "add", "reason": "r"}, "store", 400),
                                ({"action": "retire", "id": "x"}, "id", 400),
                                ({"action": "fly"}, "action", 400)):
        r = client.post(api, data=data, headers=w.staff["headers"])
        assert r.status == status and field in r.json()["error"], (data, r.text)
    r = client.post(api, data={"action": "add", "store": "shop", "reason": "x"}, headers=w.vendor["headers"])
    assert r.status == 403
    assert client.post(api, data={"action": "retire", "id": "99999"}, headers=w.staff["headers"]).status == 404
    assert client.post(api, data={"action": "add", "store": "nope", "reason": "r"},
                       headers=w.staff["headers"]).status == 404
    assert counts(db) == before
    r = client.post(api, data={"action": "add", "store": w.store["uuid"], "reason": "Ships <late>"},
                    headers=w.staff["headers"])
    assert r.status == 200
    warning = r.json()["warning"]
    assert warning["storename"] == "shop" and warning["retired_at"] is None
    store = client.get(f"/api/stores.php?uuid={w.store['uuid']}").json()
    assert [x["reason"] for x in store["warnings"]] == ["Ships <late>"]
    page = Client(app).get(f"/store.php?uuid={w.store['uuid']}", headers=HTML)
    assert 'id="store-warnings"' in page.text and "Ships &lt;late&gt;" in page.text
    r = client.post(api, data={"action": "retire", "id": str(warning["id"])}, headers=w.admin["headers"])
    assert r.status == 200 and r.json()["warning"]["retired_by_username"] == "admin1"
    assert client.post(api, data={"action": "retire", "id": str(warning["id"])},
                       headers=w.admin["headers"]).status == 409
    assert client.get(f"/api/stores.php?uuid={w.store['uuid']}").json()["warnings"] == []
    assert 'id="store-warnings"' not in Client(app).get(f"/store.php?uuid={w.store['uuid']}", headers=HTML).text
    assert client.get(api + "?retired=1", headers=w.staff["headers"]).json()["warnings"][0]["retired_at"]
    assert client.get(api, headers=w.staff["headers"]).json()["warnings"] == []
    assert [r["action"] for r in db.query("SELECT action FROM audit_log WHERE action LIKE 'store_warning%' "
                                          "ORDER BY id")] == ["store_warning_added", "store_warning_retired"]
    # the staff page: CSRF, add by name, retire
    staff = Client(app)
    token = login(staff, "staff1")
    form = {"action": "add", "store": "shop", "reason": "Slow answers"}
    assert staff.post("/staff/warnings.php", data=form, headers=HTML).status == 403
    r = staff.post("/staff/warnings.php", data=dict(form, reason="", csrf_token=token), headers=HTML)
    assert r.status == 400 and 'id="reason-error"' in r.text
    assert db.value("SELECT COUNT(*) FROM store_warnings") == 1
    assert staff.post("/staff/warnings.php", data=dict(form, csrf_token=token), headers=HTML).status == 303
    assert "Slow answers" in Client(app).get(f"/store.php?uuid={w.store['uuid']}", headers=HTML).text
    assert "Slow answers" in staff.get("/staff/warnings.php", headers=HTML).text


def test_concurrent_staff_answers_append_one_status_row(db, live_server):
    """Ten staff replies at once: ten messages, and the ticket turns answered exactly once."""
    import json
    import threading
    import urllib.request
    w = market.world(db)
    from lib import tickets
    t = tickets.create(db, w.buyer, "Help", "please")
    barrier, results = threading.Barrier(10), []

    def answer(i):
        req = urllib.request.Request(live_server + API, method="POST", headers=w.staff["headers"], data=(
            f"action=reply&uuid={t['uuid']}&body=answer+{i}").encode())
        barrier.wait()
        with urllib.request.urlopen(req, timeout=60) as resp:
            results.append(json.loads(resp.read())["ticket"]["status"])

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    assert results == ["answered"] * 10
    assert statuses(db, t["uuid"]) == ["open", "answered"]
    assert db.value("SELECT COUNT(*) FROM ticket_messages WHERE ticket_uuid = ? AND staff_reply = 1",
                    (t["uuid"],)) == 10


def test_a_staff_answer_notifies_the_opener_in_the_app_and_by_webhook(db, client):
    from lib import webhooks
    w = market.world(db)
    hook, _ = webhooks.create(db, w.buyer, "http://127.0.0.1:9/b", "ticket.answered", private_ok=True)
    t = open_ticket(client, w.buyer)

    def notes():
        return db.query("SELECT user_uuid, kind, link FROM notifications WHERE kind = 'ticket.answered'")
    assert notes() == []
    client.post(API, data={"action": "reply", "uuid": t["uuid"], "body": "Tell me more"}, headers=w.buyer["headers"])
    assert notes() == []                                   # the opener's own message notifies nobody
    r = client.post(API, data={"action": "reply", "uuid": t["uuid"], "body": "We shipped it."},
                    headers=w.staff["headers"])
    assert r.status == 200
    assert notes() == [{"user_uuid": w.buyer["uuid"], "kind": "ticket.answered",
                        "link": "/support/ticket.php?uuid=" + t["uuid"]}]
    listed = client.get("/api/notifications.php", headers=w.buyer["headers"]).json()["notifications"]
    assert listed[0]["text"] == "Staff answered your ticket: Where is my parcel?"
    events = db.query("SELECT e.body, d.webhook_id FROM webhook_events e JOIN webhook_deliveries d "
                      "ON d.event_id = e.id WHERE e.type = 'ticket.answered'")
    assert [e["webhook_id"] for e in events] == [hook["id"]]
    data = __import__("json").loads(events[0]["body"])["data"]
    assert data["ticket"]["uuid"] == t["uuid"] and data["message"]["body"] == "We shipped it."
    # a store's endpoint may not subscribe to a person's tickets
    r = client.post("/api/webhooks.php", data={"url": "http://127.0.0.1:9/s", "events": "ticket.answered",
                                                "store_uuid": w.store["uuid"]}, headers=w.vendor["headers"])
    assert r.status == 400 and "ticket.answered is for a person" in r.text, r.text
