"""Signed webhooks, on SQLite and MariaDB: endpoints through the API,
the outbox written in the transaction of each change, delivery by cron/webhooks.py to a
local receiver that checks every signature with the endpoint's secret; retries, no retry
on 4xx, redelivery with the same id, private addresses refused, a SIGKILLed delivery run
losing nothing, a rolled-back change never reported, and a whole order lifecycle through
the API and cron on anvil seen exactly once per event, in order."""
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from cron import webhooks as delivery
from lib import intents, webhooks
from tests import market
from tests.factories import make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRON_ENV = {"WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_BACKOFF_SECONDS": "0,0,0"}


class Receiver:
    """http.server in a thread; answers per path from a plan (then 200) and checks the
    signature of every request with the secret registered for its path."""

    def __init__(self):
        self.requests = []          # (path, status answered, parsed body, raw body, headers)
        self.plan, self.secrets, self.bad = {}, {}, []
        self.delay = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(outer.delay)
                with outer.lock:
                    secret = outer.secrets.get(self.path)
                    sig = self.headers.get("X-Marketplace-Signature")
                    if secret is None or not webhooks.verify(secret, sig, raw):
                        outer.bad.append((self.path, sig))
                    plan = outer.plan.get(self.path) or []
                    status = plan.pop(0) if plan else 200
                    outer.requests.append((self.path, status, json.loads(raw), raw, dict(self.headers)))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return self.base + path

    def got(self, path, ok_only=True):
        with self.lock:
            return [body for p, status, body, _raw, _h in self.requests
                    if p == path and (200 <= status < 300 or not ok_only)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def settings(request):
    """The web side takes endpoints on 127.0.0.1 in the tests that start a receiver there."""
    return {"WEBHOOK_ALLOW_PRIVATE": "1"} if "receiver" in request.fixturenames else {}


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def register(client, rec, user, path, **fields):
    r = client.post("/api/webhooks.php", json_body=dict({"url": rec.url(path)}, **fields), headers=user["headers"])
    assert r.status == 200, r.text
    body = r.json()
    rec.secrets[path] = body["secret"]
    return body["webhook"]


def deliveries(client, user, hook_id):
    r = client.get("/api/webhook-deliveries.php?webhook_id=%d" % hook_id, headers=user["headers"])
    assert r.status == 200, r.text
    return r.json()["deliveries"]


def run(db, **extra):
    return delivery.deliver(dict(CRON_ENV, **extra), db)


# -- endpoints -----------------------------------------------------------------------

def test_register_list_delete_and_privacy(db, client, receiver):
    w = market.world(db)
    member = make_user(db, "clerk1")
    db.insert("store_users", {"store_uuid": w.store["uuid"], "user_uuid": member["uuid"], "role": "member",
                              "created_at": "2026-01-01 00:00:00"})
    r = client.post("/api/webhooks.php", data={"url": receiver.url("/b"), "events": "order.paid, order.created"},
                    headers=w.buyer["headers"])
    assert r.status == 200, r.text
    body = r.json()
    receiver.secrets["/b"] = body["secret"]
    assert body["secret"].startswith("whsec_") and len(body["secret"]) == 70
    assert body["webhook"]["events"] == ["order.paid", "order.created"]
    assert body["webhook"]["secret_prefix"] == body["secret"][:10]
    store_hook = register(client, receiver, w.vendor, "/s", store_uuid=w.store["uuid"])
    assert store_hook["events"] == list(webhooks.ORDER_EVENTS + webhooks.DISPUTE_EVENTS + webhooks.MESSAGE_EVENTS)  # all
    # the secret is never shown again; a store's endpoint is its members'
    listed = client.get("/api/webhooks.php", headers=w.buyer["headers"]).json()["webhooks"]
    assert [h["id"] for h in listed] == [body["webhook"]["id"]] and "secret" not in listed[0]
    assert [h["id"] for h in client.get("/api/webhooks.php", headers=member["headers"]).json()["webhooks"]] \
        == [store_hook["id"]]
    assert client.get("/api/webhooks.php", headers=w.stranger["headers"]).json()["webhooks"] == []
    for path, data in (("/api/webhooks-delete.php", {"id": str(store_hook["id"])}),
                       ("/api/webhook-redeliver.php", {"delivery_id": "1"})):
        assert client.post(path, data=data, headers=w.stranger["headers"]).status == 404
    assert client.get("/api/webhook-deliveries.php?webhook_id=%d" % store_hook["id"],
                      headers=w.stranger["headers"]).status == 404
    # bad input
    for data, status in (({"url": "ftp://example.org/x"}, 400), ({"url": ""}, 400),
                         ({"url": receiver.url("/x"), "events": "order.shipped"}, 400),
                         ({"url": "http://user:pw@93.184.216.34/"}, 400),
                         ({"url": receiver.url("/x"), "events": "payout.needs_attention"}, 403),
                         ({"url": receiver.url("/x"), "store_uuid": w.store["uuid"]}, 403)):
        r = client.post("/api/webhooks.php", json_body=data, headers=w.stranger["headers"])
        assert r.status == status, (data, r.text)
    r = client.post("/api/webhooks.php", json_body={"url": receiver.url("/st"), "events": ["payout.needs_attention"]},
                    headers=w.staff["headers"])
    assert r.status == 200, r.text
    # a member deletes the store's endpoint: nothing more is sent to it
    assert client.post("/api/webhooks-delete.php", data={"id": str(store_hook["id"])},
                       headers=member["headers"]).json() == {"ok": True, "id": store_hook["id"], "deleted": True}
    assert client.post("/api/webhooks-delete.php", data={"id": str(store_hook["id"])},
                       headers=member["headers"]).status == 404
    market.order(db, w)
    run(db)
    assert receiver.got("/s") == [] and [e["type"] for e in receiver.got("/b")] == ["order.created"]
    assert receiver.bad == []


@pytest.mark.parametrize("settings", [{"WEBHOOK_ALLOW_PRIVATE": None}])
def test_private_addresses_are_refused_unless_allowed(db, client, make_client):
    user = make_user(db, "alice")
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/", "http://192.168.0.10/",
                "http://172.16.0.1/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://0.0.0.0/",
                "http://224.0.0.1/", "http://100.64.0.1/", "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/",
                "http://[fc00::1]/"):
        r = client.post("/api/webhooks.php", data={"url": url}, headers=user["headers"])
        assert r.status == 400, (url, r.text)
        assert "address" in r.json()["error"] or "resolve" in r.json()["error"], r.text
    assert db.value("SELECT COUNT(*) FROM webhooks") == 0
    r = client.post("/api/webhooks.php", data={"url": "https://93.184.216.34/hook"}, headers=user["headers"])
    assert r.status == 200, r.text
    # a name that resolves (today) to a private address: refused too
    with pytest.raises(webhooks.UrlRefused):
        webhooks.check_url("https://hooks.example.org/x", resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"])
    assert webhooks.check_url("https://hooks.example.org/x", resolver=lambda h, p: ["93.184.216.34"])[1] \
        == "hooks.example.org"
    allowed = make_client({"WEBHOOK_ALLOW_PRIVATE": "1"})
    assert allowed.post("/api/webhooks.php", data={"url": "http://127.0.0.1:9/x"}, headers=user["headers"]).status == 200


def test_address_is_checked_again_at_delivery(db, client, receiver):
    """An endpoint accepted while private addresses were allowed is not called once they
    are not (the same check runs before every attempt): failed, not retried."""
    w = market.world(db)
    hook = register(client, receiver, w.buyer, "/b")
    market.order(db, w)
    assert run(db, WEBHOOK_ALLOW_PRIVATE="0") == {"failed": 1}
    assert receiver.requests == []
    d, = deliveries(client, w.buyer, hook["id"])
    assert d["status"] == "failing" and "loopback" in d["last_error"] and d["attempt_log"][0]["outcome"] == "failed"


# -- the outbox ----------------------------------------------------------------------

def test_an_event_of_a_rolled_back_change_is_never_sent(db, client, receiver):
    w = market.world(db)
    register(client, receiver, w.buyer, "/b")
    uuid = market.order(db, w, "COMPLETED")
    events_before = db.value("SELECT COUNT(*) FROM webhook_events")

    class Boom(Exception):
        pass
    with pytest.raises(Boom):
        with db.transaction():
            db.execute("UPDATE transactions SET updated_at = ? WHERE uuid = ?", ("2030-01-01 00:00:00", uuid))
            assert webhooks.order_event(db, "order.paid", uuid)
            raise Boom()
    assert db.value("SELECT COUNT(*) FROM webhook_events") == events_before
    # an action refused after its checks writes nothing either (409: wrong state)
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "confirm"},
                    headers=w.buyer["headers"])
    assert r.status == 409
    with pytest.raises(RuntimeError):
        webhooks.order_event(db, "order.paid", uuid)           # outside a transaction: refused
    run(db)
    assert [e["type"] for e in receiver.got("/b")] == ["order.created"]


def test_events_reach_the_people_concerned_only(db, client, receiver):
    w = market.world(db)
    register(client, receiver, w.buyer, "/buyer")
    register(client, receiver, w.vendor, "/vendor")                       # a member's own endpoint
    register(client, receiver, w.vendor, "/store", store_uuid=w.store["uuid"])
    register(client, receiver, w.stranger, "/stranger")
    register(client, receiver, w.staff, "/staff")
    register(client, receiver, w.admin, "/admin", events="payout.needs_attention")
    uuid = market.order(db, w, "COMPLETED")
    assert client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "dispute",
                                                             "comment": "broken"}, headers=w.buyer["headers"]).status == 200
    dispute_uuid = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (uuid,))
    r = client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "claim": "it works"},
                    headers=w.vendor["headers"])
    assert r.status == 200, r.text
    r = client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "resolution": "refund"},
                    headers=w.staff["headers"])
    assert r.status == 200, r.text
    intent = intents.open_row(db, uuid)
    intents.needs_attention(db, intents.ORDERS, intent, "refund leg failed", chain_id=1)
    run(db)
    order_flow = ["order.created", "dispute.opened", "dispute.claim_added", "dispute.resolved"]
    for path in ("/buyer", "/vendor", "/store"):
        assert [e["type"] for e in receiver.got(path)] == order_flow, path
    assert receiver.got("/stranger") == []
    # staff: their own orders' events (none) and the staff event; admin subscribed to that only
    assert [e["type"] for e in receiver.got("/staff")] == ["payout.needs_attention"]
    staff_event, = receiver.got("/admin")
    assert staff_event["data"]["intent"]["uuid"] == intent["uuid"] and staff_event["data"]["reason"] == "refund leg failed"
    claim = receiver.got("/buyer")[2]["data"]
    assert claim["claim"]["claim"] == "it works" and claim["dispute"]["uuid"] == dispute_uuid
    assert claim["order"]["current_status"] == "FROZEN"
    assert receiver.got("/buyer")[3]["data"]["dispute"]["resolution"] == "refund"
    assert receiver.bad == []


# -- delivery --------------------------------------------------------------------------

def test_body_headers_and_signature(db, client, receiver):
    w = market.world(db)
    hook = register(client, receiver, w.buyer, "/b")
    uuid = market.order(db, w)
    assert run(db) == {"delivered": 1}
    (path, status, body, raw, headers), = receiver.requests
    assert set(body) == {"id", "type", "created_at", "data"} and body["type"] == "order.created"
    assert body["data"]["order"]["uuid"] == uuid and body["data"]["order"]["required_amount"] == "0.05"
    assert headers["Content-Type"] == "application/json" and headers["User-Agent"].startswith("Marketplace-Webhooks/")
    assert headers["X-Marketplace-Event-Id"] == body["id"]
    t, v1 = (p.split("=", 1)[1] for p in headers["X-Marketplace-Signature"].split(","))
    import hashlib
    import hmac
    secret = receiver.secrets["/b"]
    assert v1 == hmac.new(secret.encode(), (t + ".").encode() + raw, hashlib.sha256).hexdigest()
    assert abs(int(t) - time.time()) < 60
    assert not webhooks.verify("whsec_other", headers["X-Marketplace-Signature"], raw)
    assert not webhooks.verify(secret, headers["X-Marketplace-Signature"], raw + b" ")
    assert not webhooks.verify(secret, headers["X-Marketplace-Signature"], raw, now=int(t) + 3600)   # a replay
    d, = deliveries(client, w.buyer, hook["id"])
    assert d["status"] == "delivered" and d["attempts"] == 1 and d["last_status_code"] == 200
    assert d["event_id"] == body["id"] and d["attempt_log"][0]["status_code"] == 200
    assert run(db) == {}                                                  # nothing sent twice


def test_a_receiver_failing_twice_gets_the_event_on_the_third_try(db, client, receiver):
    w = market.world(db)
    hook = register(client, receiver, w.buyer, "/b")
    receiver.plan["/b"] = [500, 503]
    market.order(db, w)
    assert run(db) == {"retry": 1}          # an endpoint that failed is not tried again in the same pass
    assert run(db) == {"retry": 1}
    assert run(db) == {"delivered": 1}
    ids = [e["id"] for e in receiver.got("/b", ok_only=False)]
    assert len(ids) == 3 and len(set(ids)) == 1
    d, = deliveries(client, w.buyer, hook["id"])
    assert d["status"] == "delivered" and d["attempts"] == 3
    assert [(a["status_code"], a["outcome"]) for a in d["attempt_log"]] == [(500, "retry"), (503, "retry"),
                                                                           (200, "delivered")]
    assert receiver.bad == []


def test_backoff_then_failing_after_the_last_try(db, client, receiver):
    """Backoff 10 s, 1 min, then 10 min; after WEBHOOK_MAX_ATTEMPTS tries the delivery is
    failing, and an endpoint with WEBHOOK_FAILING_AFTER failures in a row is flagged."""
    w = market.world(db)
    hook = register(client, receiver, w.buyer, "/b")
    receiver.plan["/b"] = [500] * 10
    market.order(db, w)
    assert delivery.deliver({"WEBHOOK_ALLOW_PRIVATE": "1"}, db) == {"retry": 1}
    d, = deliveries(client, w.buyer, hook["id"])
    import datetime
    due = datetime.datetime.strptime(d["next_attempt_at"], "%Y-%m-%d %H:%M:%S")
    assert 8 <= (due - datetime.datetime.utcnow()).total_seconds() <= 11
    assert delivery.deliver({"WEBHOOK_ALLOW_PRIVATE": "1"}, db) == {}      # not due yet
    assert delivery.Settings({}).backoff == [10, 60, 600] and delivery.Settings({}).wait(7) == 600
    env = dict(CRON_ENV, WEBHOOK_MAX_ATTEMPTS="3", WEBHOOK_FAILING_AFTER="2")
    db.execute("UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01 00:00:00'")
    assert delivery.deliver(env, db) == {"retry": 1}
    assert client.get("/api/webhooks.php", headers=w.buyer["headers"]).json()["webhooks"][0]["status"] == "failing"
    assert delivery.deliver(env, db) == {"failed": 1}
    assert delivery.deliver(env, db) == {}
    d, = deliveries(client, w.buyer, hook["id"])
    assert d["status"] == "failing" and d["attempts"] == 3 and d["next_attempt_at"] is None
    assert len(receiver.got("/b", ok_only=False)) == 3
    # a failing endpoint still gets new events; its first success makes it active again
    receiver.plan["/b"] = []
    market.order(db, w)
    assert delivery.deliver(env, db) == {"delivered": 1}
    hook_now, = client.get("/api/webhooks.php", headers=w.buyer["headers"]).json()["webhooks"]
    assert hook_now["status"] == "active" and hook_now["consecutive_failures"] == 0


@pytest.mark.parametrize("code", [410, 400])
def test_4xx_is_not_retried(db, client, receiver, code):
    w = market.world(db)
    hook = register(client, receiver, w.buyer, "/b")
    receiver.plan["/b"] = [code]
    market.order(db, w)
    assert run(db) == {"failed": 1}
    assert run(db) == {}
    assert len(receiver.got("/b", ok_only=False)) == 1
    d, = deliveries(client, w.buyer, hook["id"])
    assert d["status"] == "failing" and d["last_status_code"] == code and d["attempts"] == 1


def test_redeliver_sends_the_same_event_id(db, client, receiver):
    w = market.world(db)
    hook = register(client, receiver, w.buyer, "/b")
    market.order(db, w)
    run(db)
    d, = deliveries(client, w.buyer, hook["id"])
    r = client.post("/api/webhook-redeliver.php", data={"delivery_id": str(d["id"])}, headers=w.buyer["headers"])
    assert r.status == 200, r.text
    assert r.json()["deliveries"][0]["status"] == "pending"
    again = client.post("/api/webhook-redeliver.php", data={"delivery_id": str(d["id"])}, headers=w.buyer["headers"])
    assert again.status == 409
    run(db)
    r = client.post("/api/webhook-redeliver.php", json_body={"event_id": d["event_id"]}, headers=w.buyer["headers"])
    assert r.status == 200, r.text
    run(db)
    raws = [raw for p, s, body, raw, h in receiver.requests]
    assert len(raws) == 3 and len(set(raws)) == 1              # the same id, the very same body
    d, = deliveries(client, w.buyer, hook["id"])
    assert d["status"] == "delivered" and len(d["attempt_log"]) == 3
    assert receiver.bad == []


def test_events_of_one_order_stay_in_order_behind_a_retry(db, client, receiver):
    w = market.world(db)
    register(client, receiver, w.vendor, "/s", store_uuid=w.store["uuid"])
    receiver.plan["/s"] = [500]
    first = market.order(db, w, "COMPLETED")
    other = market.order(db, w, "COMPLETED")
    for uuid in (first, other):
        r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "dispatch"},
                        headers=w.vendor["headers"])
        assert r.status == 200, r.text
    assert run(db) == {"retry": 1}
    assert run(db) == {"delivered": 4}
    got = [(e["type"], e["data"]["order"]["uuid"]) for e in receiver.got("/s")]
    for uuid in (first, other):
        assert [t for t, u in got if u == uuid] == ["order.created", "order.dispatched"]
    assert len(got) == 4


def test_two_workers_never_send_one_delivery_twice(db, client, receiver):
    w = market.world(db)
    register(client, receiver, w.buyer, "/b")
    for _ in range(6):
        market.order(db, w)
    receiver.delay = 0.05
    d = db.value("SELECT MIN(id) FROM webhook_deliveries")
    assert delivery.claim(db, d, "worker-a", 60) is True
    assert delivery.claim(db, d, "worker-b", 60) is False
    db.execute("UPDATE webhook_deliveries SET next_attempt_at = '2000-01-01 00:00:00'")
    results = []
    threads = [threading.Thread(target=lambda n=n: results.append(delivery.deliver(CRON_ENV, db, worker="w%d" % n)))
               for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [e["id"] for e in receiver.got("/b")]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert sum(r.get("delivered", 0) for r in results) == 6


def webhook_process(db, extra):
    penv = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "WEBHOOK_", "CRON_"))}
    penv.update({"DB_DSN": db.dsn, "DB_USER": db.user or "", "DB_PASSWORD": db.password or "",
                 "ENV_FILE": os.path.join(ROOT, "tests", "no-such.env"), "PYTHONUNBUFFERED": "1"})
    penv.update(CRON_ENV)
    penv.update(extra)
    return subprocess.run([sys.executable, os.path.join(ROOT, "cron", "webhooks.py")], env=penv, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("point", ["webhook_after_claim", "webhook_after_send"])
def test_a_killed_delivery_run_loses_nothing(db, client, receiver, point):
    w = market.world(db)
    hook = register(client, receiver, w.buyer, "/b")
    market.order(db, w)
    market.order(db, w)
    proc = webhook_process(db, {"CRON_CRASH_AT": point, "WEBHOOK_LEASE_SECONDS": "2"})
    assert proc.returncode == -9, proc.stdout + proc.stderr
    sent = len(receiver.got("/b"))
    assert sent == (1 if point == "webhook_after_send" else 0)
    # the claim holds until its lease runs out: no second worker sends it meanwhile
    proc = webhook_process(db, {})
    assert proc.returncode == 0, proc.stderr
    assert len(receiver.got("/b")) == sent + 1                # only the other event went out
    time.sleep(2.5)
    proc = webhook_process(db, {})
    assert proc.returncode == 0, proc.stderr
    events = receiver.got("/b")
    assert {e["data"]["order"]["uuid"] for e in events} == {r["uuid"] for r in db.query("SELECT uuid FROM transactions")}
    assert len({e["id"] for e in events}) == 2                # at least once: a resend has the same id
    assert all(d["status"] == "delivered" for d in deliveries(client, w.buyer, hook["id"]))
    assert receiver.bad == []


# -- the whole lifecycle on anvil -------------------------------------------------------

@pytest.mark.parametrize("settings", [{"WEBHOOK_ALLOW_PRIVATE": "1", "ALLOW_DEV_CHAIN": "1"}])
def test_order_lifecycle_through_the_api_and_cron_on_anvil(anvil, db, client, receiver, tmp_path):
    from tests.cron_support import cron_env, run_cron
    from tests.test_cron_api_e2e import Shop, act, order_json, settle
    env = cron_env(anvil.url, tmp_path, **CRON_ENV)
    shop = Shop(db, client)
    register(client, receiver, shop.buyer, "/buyer")
    register(client, receiver, shop.vendor, "/store", store_uuid=shop.store["uuid"])
    register(client, receiver, shop.staff, "/staff")
    register(client, receiver, shop.referrer, "/referrer")
    r = client.post("/api/transactions.php", json_body={"package_uuid": shop.package["uuid"], "currency": "ETH",
                                                        "chain_id": 31337, "refund_address": shop.refund_addr},
                    headers=shop.buyer["headers"])
    assert r.status == 200, r.text
    uuid = r.json()["uuid"]
    assert run_cron(env, db)["ok"]
    escrow = order_json(client, shop.buyer, uuid)["escrow_address"]
    anvil.send_eth(4, escrow, 2 * 10 ** 16)
    anvil.mine(3)
    assert run_cron(env, db)["ok"]
    anvil.send_eth(4, escrow, 3 * 10 ** 16)
    anvil.mine(3)
    result = run_cron(env, db)
    assert result["ok"], result["errors"]
    assert order_json(client, shop.buyer, uuid)["current_status"] == "COMPLETED"
    act(client, shop.vendor, uuid, "dispatch")
    act(client, shop.buyer, uuid, "confirm")
    act(client, shop.buyer, uuid, "release")
    settle(anvil, db, env, client, shop.buyer, uuid, "RELEASED")
    assert run_cron(env, db)["ok"]
    flow = ["order.created", "order.partially_paid", "order.paid", "order.dispatched", "order.confirmed",
            "order.released"]
    for path in ("/buyer", "/store"):
        events = receiver.got(path)
        assert [e["type"] for e in events] == flow, (path, [e["type"] for e in events])
        assert len({e["id"] for e in events}) == len(flow)
        assert {e["data"]["order"]["uuid"] for e in events} == {uuid}
        assert [e["data"]["order"]["current_status"] for e in events] == [
            "PENDING", "PENDING", "COMPLETED", "COMPLETED", "COMPLETED", "RELEASED"]
        assert events[1]["data"]["order"]["received_amount"] == "0.02"
    assert receiver.got("/staff") == [] and receiver.got("/referrer") == []
    assert len(receiver.requests) == 2 * len(flow)            # exactly once each
    assert receiver.bad == []
    assert result["counts"]["webhooks"] == {"delivered": 2}   # the cron duty delivered order.paid


def test_bad_input_is_a_clear_4xx_and_writes_nothing(db, client, receiver):
    w = market.world(db)
    hook = register(client, receiver, w.buyer, "/b")
    market.order(db, w)
    h = w.buyer["headers"]

    def snapshot():
        return [db.value("SELECT COUNT(*) FROM %s" % t) for t in ("webhooks", "webhook_events", "webhook_deliveries")] \
            + [db.value("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")]
    before = snapshot()
    P = "/api/webhooks.php"
    bad = [(P, {"url": ["http://x/"]}), (P, {"url": 5}), (P, {"url": receiver.url("/b"), "events": {"a": 1}}),
           (P, {"url": receiver.url("/b"), "events": [1, 2]}), (P, {"url": receiver.url("/b"), "events": ","}),
           (P, {"url": receiver.url("/b"), "store_uuid": ["x"]}), (P, {"url": receiver.url("/b"), "store_uuid": "nope"}),
           (P, {"url": receiver.url("/b"), "description": "a\x00b"}), (P, {"url": "http://" + "a" * 3000 + "/"}),
           (P, {"url": "http://exa mple.org/"}), (P, {"url": "http://[::1/"}), (P, {"url": "http://x:99999/"}),
           (P, {"url": "javascript:alert(1)"}), (P, {"url": "https://no-such-host.invalid/x"}),
           ("/api/webhooks-delete.php", {"id": -1}), ("/api/webhooks-delete.php", {"id": "1e3"}),
           ("/api/webhooks-delete.php", {"id": "9" * 40}), ("/api/webhooks-delete.php", {"id": True}),
           ("/api/webhook-redeliver.php", {"delivery_id": ["1"]}), ("/api/webhook-redeliver.php", {"event_id": 7}),
           ("/api/webhook-redeliver.php", {"event_id": "not-a-uuid"}),
           ("/api/webhook-redeliver.php", {"event_id": "00000000-0000-4000-8000-000000000000"}),
           ("/api/webhook-redeliver.php", {"delivery_id": "1", "webhook_id": "x"})]
    for path, body in bad:
        r = client.post(path, json_body=body, headers=h)
        assert 400 <= r.status < 500 and "error" in r.json(), (path, body, r.status, r.text)
    for query in ("", "webhook_id=", "webhook_id=abc", "webhook_id=%d&limit=0" % hook["id"],
                  "webhook_id=%d&offset=-1" % hook["id"], "webhook_id=" + "9" * 30):
        r = client.get("/api/webhook-deliveries.php?" + query, headers=h)
        assert 400 <= r.status < 500, (query, r.text)
    assert snapshot() == before
