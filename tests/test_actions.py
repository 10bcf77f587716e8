"""/api/transaction-actions.php and /api/disputes.php: the full action matrix (every
action x every role x every status), disputes and their resolution, and one open intent
per order under concurrent requests (SPEC section 6)."""
import json
import threading
import urllib.error
import urllib.request

import pytest

from lib import intents, orders, status_machine as sm
from tests import market
from tests.client import Client
from tests.factories import login
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

ACTIONS = ("release", "cancel", "partial_refund", "dispatch", "confirm", "dispute")
ROLES = ("buyer", "vendor", "staff", "admin", "stranger")

# Who may ever take each action (SPEC section 6); others get 403.
WHO = {"release": {"buyer", "vendor", "staff", "admin"}, "cancel": {"buyer", "vendor", "staff", "admin"},
       "partial_refund": {"staff", "admin"}, "dispatch": {"vendor"}, "confirm": {"buyer"},
       "dispute": {"buyer", "vendor"}}

# The states of the matrix and, written out from the SPEC table, who gets 200 in each.
STATES = ("PENDING", "COMPLETED", "DISPATCHED", "CONFIRMED", "FROZEN", "DISPUTED",
          "RELEASED", "CANCELLED", "FAILED", "INTENT_OPEN")
STAFF = {"staff", "admin"}
ALLOWED = {
    "PENDING": {"cancel": {"buyer"} | STAFF},
    "COMPLETED": {"release": {"buyer"} | STAFF, "cancel": {"vendor"} | STAFF, "dispatch": {"vendor"},
                  "dispute": {"buyer", "vendor"}},
    "DISPATCHED": {"release": {"buyer"} | STAFF, "cancel": STAFF, "confirm": {"buyer"},
                   "dispute": {"buyer", "vendor"}},
    "CONFIRMED": {"release": {"buyer", "vendor"} | STAFF, "cancel": STAFF, "dispute": {"buyer", "vendor"}},
    "FROZEN": {"release": STAFF, "cancel": STAFF},                 # frozen by cron, no dispute
    "DISPUTED": {"release": STAFF, "cancel": STAFF, "partial_refund": STAFF},
    "RELEASED": {}, "CANCELLED": {}, "FAILED": {},
    "INTENT_OPEN": {},                                             # a payout is in progress
}


def make_in_state(db, w, state):
    if state == "DISPATCHED":
        return market.order(db, w, "COMPLETED", dispatched=True)
    if state == "CONFIRMED":
        return market.order(db, w, "COMPLETED", dispatched=True, confirmed=True)
    if state == "DISPUTED":
        uuid = market.order(db, w, "COMPLETED")
        orders.take_action(db, w.buyer, uuid, "dispute", comment="never arrived")
        return uuid
    if state == "INTENT_OPEN":
        uuid = market.order(db, w, "COMPLETED", dispatched=True, confirmed=True)
        intents.open_intent(db, uuid, sm.RELEASE, w.buyer["uuid"])
        return uuid
    return market.order(db, w, state)


def snapshot(db, uuid):
    """Everything an action could write about one order (a refusal must change none of it)."""
    return (db.value("SELECT COUNT(*) FROM transaction_statuses WHERE transaction_uuid = ?", (uuid,)),
            db.value("SELECT COUNT(*) FROM shipping_statuses WHERE transaction_uuid = ?", (uuid,)),
            db.value("SELECT COUNT(*) FROM transaction_intents WHERE transaction_uuid = ?", (uuid,)),
            db.value("SELECT COUNT(*) FROM disputes WHERE transaction_uuid = ? AND status = 'open'", (uuid,)),
            db.value("SELECT buyer_confirmed_at FROM transactions WHERE uuid = ?", (uuid,)),
            db.value("SELECT COUNT(*) FROM disputes WHERE transaction_uuid = ?", (uuid,)),
            db.value("SELECT COUNT(*) FROM dispute_claims c JOIN disputes d ON d.uuid = c.dispute_uuid "
                     "WHERE d.transaction_uuid = ?", (uuid,)),
            db.one("SELECT dispute_uuid, updated_at FROM transactions WHERE uuid = ?", (uuid,)),
            db.value("SELECT COUNT(*) FROM audit_log WHERE target = ?", (uuid,)))


def check_effect(db, uuid, action, before):
    """What a 200 must have written, and nothing else."""
    after = snapshot(db, uuid)
    intent = intents.open_row(db, uuid)
    if action in ("release", "cancel", "partial_refund"):
        assert intent["action"] == {"release": "RELEASE", "cancel": "CANCEL",
                                    "partial_refund": "PARTIAL_REFUND"}[action]
        assert intent["status"] == "pending"
        assert intent["refund_percent"] == (40 if action == "partial_refund" else None)
        assert after[2] == before[2] + 1
        assert after[0] == before[0]             # the payment status moves only when cron pays
        # staff moving funds on a disputed order resolves the dispute
        assert db.value("SELECT COUNT(*) FROM disputes WHERE transaction_uuid = ? AND status = 'open'",
                        (uuid,)) == 0
    elif action == "dispatch":
        assert sm.current_shipping(db, uuid)["status"] == sm.DISPATCHED
        assert after[:3] == (before[0], before[1] + 1, before[2])
    elif action == "confirm":
        assert db.value("SELECT buyer_confirmed_at FROM transactions WHERE uuid = ?", (uuid,)) is not None
        assert after[:4] == before[:4]
    elif action == "dispute":
        assert sm.current_status(db, uuid)["status"] == sm.FROZEN
        assert after[0] == before[0] + 1 and after[2] == before[2]
        assert db.value("SELECT COUNT(*) FROM disputes WHERE transaction_uuid = ? AND status = 'open'",
                        (uuid,)) == 1
        assert after[7]["dispute_uuid"] is not None
    if action in ("dispatch", "confirm", "dispute"):
        assert intent is None
    assert after[8] == before[8] + 1             # one audit row per action taken


def test_action_matrix(db, app):
    """Every action x role x status over HTTP with session logins: 200, 403, 409 or 404."""
    w = market.world(db)
    clients = {}
    for role in ROLES:
        c = Client(app)
        token = login(c, w[role]["username"])
        clients[role] = (c, token)
    failures = []
    for state in STATES:
        probe = make_in_state(db, w, state)
        for action in ACTIONS:
            for role in ROLES:
                allowed = role in ALLOWED[state].get(action, set())
                uuid = make_in_state(db, w, state) if allowed else probe
                before = snapshot(db, uuid)
                c, token = clients[role]
                r = c.post("/api/transaction-actions.php",
                           data={"transaction_uuid": uuid, "action": action, "refund_percent": "40",
                                 "csrf_token": token})
                expected = 404 if role == "stranger" else 200 if allowed else 409 if role in WHO[action] else 403
                if r.status != expected:
                    failures.append(f"{state} {action} {role}: {r.status} (expected {expected}) {r.text}")
                    continue
                if expected == 200:
                    body = r.json()
                    assert body["ok"] is True and body["action"] == action and body["transaction_uuid"] == uuid
                    moves = {"release": "RELEASE", "cancel": "CANCEL", "partial_refund": "PARTIAL_REFUND"}
                    assert body["intent"] == moves.get(action)        # the original's action name
                    assert (body["intent_detail"] is not None) == (action in moves)
                    if action in moves:
                        assert body["intent_detail"]["action"] == body["intent"]
                    check_effect(db, uuid, action, before)
                else:
                    assert "error" in r.json()
                    assert snapshot(db, uuid) == before, f"{state} {action} {role} changed the order"
    assert not failures, "\n".join(failures)


def test_actions_by_api_key_and_bad_input(db, client):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    post = lambda who, data: client.post("/api/transaction-actions.php", data=data, headers=w[who]["headers"])  # noqa
    assert post("buyer", {"transaction_uuid": uuid, "action": "launch"}).status == 400
    assert post("buyer", {"transaction_uuid": uuid}).status == 400
    assert post("buyer", {"action": "release"}).status == 400
    assert post("buyer", {"transaction_uuid": "nope", "action": "release"}).status == 404
    assert post("buyer", {"transaction_uuid": uuid, "action": "dispute", "comment": "c" * 5001}).status == 400
    assert client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "release"}
                       ).status == 401
    assert snapshot(db, uuid)[:5] == (2, 1, 0, 0, None)
    r = post("buyer", {"transaction_uuid": uuid, "action": "release"})
    assert r.status == 200
    assert r.json()["intent"] == "RELEASE"
    intent = r.json()["intent_detail"]
    assert intent["action"] == "RELEASE" and intent["status"] == "pending"
    assert db.value("SELECT requested_by FROM transaction_intents WHERE uuid = ?", (intent["uuid"],)) == w.buyer["uuid"]
    r = post("buyer", {"transaction_uuid": uuid, "action": "release"})
    assert r.status == 409 and "in progress" in r.json()["error"]


@pytest.mark.parametrize("percent", ["", "abc", "0", "101", "-5", "50.5", "1e1", "999999"])
def test_partial_refund_bad_percent(db, client, percent):
    w = market.world(db)
    uuid = make_in_state(db, w, "DISPUTED")
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "partial_refund",
                                                          "refund_percent": percent}, headers=w.staff["headers"])
    assert r.status == 400 and "refund_percent" in r.json()["error"]
    assert db.value("SELECT COUNT(*) FROM transaction_intents") == 0
    assert db.value("SELECT status FROM disputes") == "open"


# -- disputes -------------------------------------------------------------------------

def test_dispute_claims_and_staff_resolution(db, client):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "dispute",
                                                          "comment": "box was empty"}, headers=w.buyer["headers"])
    assert r.status == 200 and r.json()["intent"] is None
    assert [s["status"] for s in sm.history(db, uuid)] == ["PENDING", "COMPLETED", "FROZEN"]
    dispute_uuid = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (uuid,))
    assert dispute_uuid

    r = client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "claim": "it was full"},
                    headers=w.vendor["headers"])
    assert r.status == 200 and r.json()["claim"]["username"] == "vendor1"
    assert client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "claim": "me too"},
                       headers=w.stranger["headers"]).status == 404
    assert client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "claim": ""},
                       headers=w.buyer["headers"]).status == 400
    assert client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "claim": "x" * 5001},
                       headers=w.buyer["headers"]).status == 400
    assert client.post("/api/disputes.php", data={"claim": "x"}, headers=w.buyer["headers"]).status == 400

    detail = client.get(f"/api/disputes.php?uuid={dispute_uuid}", headers=w.buyer["headers"]).json()["dispute"]
    assert detail["status"] == "open" and detail["transaction_uuid"] == uuid
    assert [(c["username"], c["claim"]) for c in detail["claims"]] == [("buyer1", "box was empty"),
                                                                       ("vendor1", "it was full")]
    assert client.get(f"/api/disputes.php?uuid={dispute_uuid}", headers=w.stranger["headers"]).status == 404
    for who, n in (("buyer", 1), ("vendor", 1), ("staff", 1), ("stranger", 0)):
        listed = client.get("/api/disputes.php", headers=w[who]["headers"]).json()["disputes"]
        assert len(listed) == n, who
    assert client.get("/api/disputes.php?status=resolved", headers=w.staff["headers"]).json()["disputes"] == []
    assert client.get("/api/disputes.php?status=bogus", headers=w.staff["headers"]).status == 400

    # only staff resolve; bad resolutions write nothing
    r = client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "resolution": "refund"},
                    headers=w.buyer["headers"])
    assert r.status == 403
    assert client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "resolution": "refund"},
                       headers=w.stranger["headers"]).status == 404
    for bad in ({"resolution": "split"}, {"resolution": "partial_refund", "refund_percent": "0"},
                {"resolution": "partial_refund", "refund_percent": "abc"},
                {"resolution": "partial_refund"}):
        r = client.post("/api/disputes.php", data=dict({"dispute_uuid": dispute_uuid}, **bad),
                        headers=w.staff["headers"])
        assert r.status == 400, (bad, r)
    assert db.value("SELECT COUNT(*) FROM transaction_intents") == 0

    r = client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "resolution": "partial_refund",
                                               "refund_percent": "30", "comment": "half-empty box"},
                    headers=w.staff["headers"])
    assert r.status == 200, r
    body = r.json()
    assert body["resolution"] == "partial_refund" and body["intent"] == "PARTIAL_REFUND"
    assert body["intent_detail"]["action"] == "PARTIAL_REFUND" and body["intent_detail"]["refund_percent"] == 30
    listed = client.get(f"/api/disputes.php?uuid={dispute_uuid}", headers=w.buyer["headers"]).json()["dispute"]
    assert listed["resolved_by"] == listed["resolver_user_uuid"] == w.staff["uuid"]
    d = db.one("SELECT * FROM disputes WHERE uuid = ?", (dispute_uuid,))
    assert (d["status"], d["resolution"], d["refund_percent"], d["resolved_by"]) == \
        ("resolved", "partial_refund", 30, w.staff["uuid"])
    assert client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "claim": "late"},
                       headers=w.buyer["headers"]).status == 409
    r = client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "resolution": "release"},
                    headers=w.staff["headers"])
    assert r.status == 409
    assert db.value("SELECT COUNT(*) FROM transaction_intents") == 1


def test_staff_release_through_actions_closes_the_dispute(db, client):
    w = market.world(db)
    uuid = make_in_state(db, w, "DISPUTED")
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "release"},
                    headers=w.admin["headers"])
    assert r.status == 200 and r.json()["intent"] == "RELEASE"
    d = db.one("SELECT status, resolution, resolved_by FROM disputes WHERE transaction_uuid = ?", (uuid,))
    assert d == {"status": "resolved", "resolution": "release", "resolved_by": w.admin["uuid"]}


def test_refund_resolution(db):
    from lib import disputes
    w = market.world(db)
    uuid = make_in_state(db, w, "DISPUTED")
    dispute_uuid = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (uuid,))
    result = disputes.resolve(db, w.staff, dispute_uuid, "refund")
    assert result["intent"]["action"] == "CANCEL" and result["resolution"] == "refund"
    assert db.value("SELECT resolution FROM disputes WHERE uuid = ?", (dispute_uuid,)) == "refund"


# -- concurrency ----------------------------------------------------------------------

def _post_json(url, data, headers):
    req = urllib.request.Request(url, data=json.dumps(data).encode(), method="POST",
                                 headers=dict(headers, **{"Content-Type": "application/json"}))
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("who_and_what", [
    [("buyer", "release")] * 8,
    [("buyer", "release"), ("vendor", "cancel"), ("staff", "cancel"), ("admin", "release")] * 2,
])
def test_one_open_intent_under_concurrent_requests(db, live_server, who_and_what):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    results = []
    barrier = threading.Barrier(len(who_and_what))

    def attempt(who, action):
        barrier.wait()
        results.append(_post_json(f"{live_server}/api/transaction-actions.php",
                                  {"transaction_uuid": uuid, "action": action}, w[who]["headers"]))

    threads = [threading.Thread(target=attempt, args=pair) for pair in who_and_what]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * (len(who_and_what) - 1), results
    assert db.value("SELECT COUNT(*) FROM transaction_intents WHERE transaction_uuid = ?", (uuid,)) == 1


def test_concurrent_disputes_open_one(db, live_server):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    results = []
    barrier = threading.Barrier(6)

    def attempt(who):
        barrier.wait()
        results.append(_post_json(f"{live_server}/api/transaction-actions.php",
                                  {"transaction_uuid": uuid, "action": "dispute"}, w[who]["headers"]))

    threads = [threading.Thread(target=attempt, args=(who,)) for who in ("buyer", "vendor") * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [409] * 5, results
    assert db.value("SELECT COUNT(*) FROM disputes") == 1
    assert [s["status"] for s in sm.history(db, uuid)].count("FROZEN") == 1
