"""The append-only status machine and the shared decision table (SPEC section 6)."""
import threading

import pytest

from lib import intents
from lib import status_machine as sm
from lib.db import utc_now


def make_order(db, uuid="order-1"):
    now = utc_now()
    db.insert("users", {"uuid": "buyer-1", "username": "buyer", "username_lower": "buyer",
                        "password_hash": "x", "created_at": now, "updated_at": now})
    db.insert("stores", {"uuid": "store-1", "storename": "s", "storename_lower": "s",
                         "vendorship_agreed_at": now, "created_at": now, "updated_at": now})
    db.insert("items", {"uuid": "item-1", "store_uuid": "store-1", "name": "i",
                        "created_at": now, "updated_at": now})
    db.insert("packages", {"uuid": "pkg-1", "item_uuid": "item-1", "name": "p", "price_usd": "10",
                           "created_at": now, "updated_at": now})
    db.insert("transactions", {"uuid": uuid, "package_uuid": "pkg-1", "store_uuid": "store-1",
                               "buyer_uuid": "buyer-1", "price_usd": "10", "created_at": now,
                               "updated_at": now})
    return uuid


def test_current_status_is_highest_id_even_within_one_second(db):
    tx = make_order(db)
    # Insert rows sharing one timestamp: time cannot order them, the id does.
    for status in ("PENDING", "COMPLETED", "FROZEN"):
        db.insert("transaction_statuses", {"transaction_uuid": tx, "time": "2026-01-01 00:00:00",
                                           "amount": "5", "status": status})
    assert sm.current_status(db, tx)["status"] == "FROZEN"
    view = db.one("SELECT current_status FROM v_current_transaction_statuses WHERE transaction_uuid = ?", (tx,))
    assert view["current_status"] == "FROZEN"


def test_order_without_status_row_counts_as_pending_in_view(db):
    tx = make_order(db)
    assert sm.current_status(db, tx) is None
    view = db.one("SELECT current_status, current_amount FROM v_current_transaction_statuses "
                  "WHERE transaction_uuid = ?", (tx,))
    assert view == {"current_status": "PENDING", "current_amount": "0"}


def test_append_follows_lifecycle(db):
    tx = make_order(db)
    sm.append_status(db, tx, "PENDING")
    sm.append_status(db, tx, "PENDING", amount="3")  # a partial payment
    sm.append_status(db, tx, "COMPLETED", amount="10")
    sm.append_status(db, tx, "FROZEN", amount="10")
    sm.append_status(db, tx, "RELEASED", amount="10")
    assert [r["status"] for r in sm.history(db, tx)] == ["PENDING", "PENDING", "COMPLETED", "FROZEN", "RELEASED"]


@pytest.mark.parametrize("path,bad", [
    ([], "COMPLETED"), (["PENDING"], "RELEASED"), (["PENDING"], "FROZEN"),
    (["PENDING", "FAILED"], "PENDING"), (["PENDING", "COMPLETED", "RELEASED"], "CANCELLED"),
    (["PENDING", "CANCELLED"], "COMPLETED"), (["PENDING"], "BOGUS"),
])
def test_illegal_moves_are_refused_and_nothing_appended(db, path, bad):
    tx = make_order(db)
    for s in path:
        sm.append_status(db, tx, s)
    with pytest.raises(sm.TransitionError):
        sm.append_status(db, tx, bad)
    assert len(sm.history(db, tx)) == len(path)


def test_shipping_log(db):
    tx = make_order(db)
    sm.append_shipping(db, tx, sm.DISPATCH_PENDING)
    sm.append_shipping(db, tx, sm.DISPATCHED, comment="tracking 123")
    assert sm.current_shipping(db, tx)["status"] == "DISPATCHED"
    assert [r["status"] for r in sm.shipping_history(db, tx)] == ["DISPATCH PENDING", "DISPATCHED"]


def test_one_open_intent_per_order(db):
    tx = make_order(db)
    first = intents.open_intent(db, tx, sm.RELEASE, "buyer-1")
    with pytest.raises(intents.IntentConflict):
        intents.open_intent(db, tx, sm.CANCEL, "buyer-1")
    assert intents.claim(db, intents.ORDERS, first, "worker-a") is True
    assert intents.claim(db, intents.ORDERS, first, "worker-b") is False  # claimed once only
    with pytest.raises(intents.IntentConflict):
        intents.open_intent(db, tx, sm.CANCEL, "buyer-1")  # processing is still open
    intents.needs_attention(db, intents.ORDERS, first, "vendor leg reverted")
    with pytest.raises(intents.IntentConflict):
        intents.open_intent(db, tx, sm.CANCEL, "buyer-1")  # needs_attention keeps the order locked
    intents.finish(db, intents.ORDERS, first, "failed", "vendor has no payout address")
    second = intents.open_intent(db, tx, sm.CANCEL, "buyer-1")
    rows = intents.of_order(db, tx)
    assert [(r["action"], r["status"], r["error"]) for r in rows] == [
        ("RELEASE", "failed", "vendor has no payout address"), ("CANCEL", "pending", None)]
    assert intents.open_row(db, tx)["id"] == second["id"]
    flags = db.query("SELECT kind, intent_uuid, reason FROM staff_flags")
    assert flags == [{"kind": "leg_failed", "intent_uuid": first["uuid"], "reason": "vendor leg reverted"}]


def test_concurrent_intents_only_one_wins(db):
    tx = make_order(db)
    results = []

    def attempt():
        try:
            intents.open_intent(db, tx, sm.RELEASE, "buyer-1")
            results.append("ok")
        except intents.IntentConflict:
            results.append("conflict")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and results.count("conflict") == 7
    assert db.value("SELECT COUNT(*) FROM transaction_intents") == 1


S = sm.OrderState


@pytest.mark.parametrize("action,parties,state,expected", [
    ("release", {"buyer"}, S("COMPLETED"), 200),
    ("release", {"buyer"}, S("PENDING"), 409),
    ("release", {"buyer"}, S("COMPLETED", dispute_open=True), 409),
    ("release", {"vendor"}, S("COMPLETED"), 409),
    ("release", {"vendor"}, S("COMPLETED", dispatched=True, buyer_confirmed=True), 200),
    ("release", {"staff"}, S("COMPLETED"), 200),
    ("release", {"staff"}, S("FROZEN", dispute_open=True), 200),
    ("release", set(), S("COMPLETED"), 403),
    ("release", {"buyer"}, S("COMPLETED", intent_open=True), 409),
    ("cancel", {"buyer"}, S("PENDING"), 200),
    ("cancel", {"buyer"}, S("COMPLETED"), 409),
    ("cancel", {"vendor"}, S("COMPLETED"), 200),
    ("cancel", {"vendor"}, S("COMPLETED", dispatched=True), 409),
    ("cancel", {"vendor"}, S("PENDING"), 409),
    ("cancel", {"staff"}, S("FROZEN"), 200),
    ("cancel", {"staff"}, S("RELEASED"), 409),
    ("partial_refund", {"staff"}, S("FROZEN", dispute_open=True), 200),
    ("partial_refund", {"staff"}, S("COMPLETED"), 409),
    ("partial_refund", {"buyer"}, S("FROZEN", dispute_open=True), 403),
    ("dispatch", {"vendor"}, S("COMPLETED"), 200),
    ("dispatch", {"vendor"}, S("COMPLETED", dispatched=True), 409),
    ("dispatch", {"buyer"}, S("COMPLETED"), 403),
    ("dispatch", {"staff"}, S("COMPLETED"), 403),
    ("confirm", {"buyer"}, S("COMPLETED", dispatched=True), 200),
    ("confirm", {"buyer"}, S("COMPLETED"), 409),
    ("confirm", {"vendor"}, S("COMPLETED", dispatched=True), 403),
    ("dispute", {"buyer"}, S("COMPLETED"), 200),
    ("dispute", {"vendor"}, S("COMPLETED"), 200),
    ("dispute", {"buyer"}, S("PENDING"), 409),
    ("dispute", {"staff"}, S("COMPLETED"), 403),
    ("dispute", {"buyer"}, S("COMPLETED", dispute_open=True), 409),
    ("launch", {"buyer"}, S("COMPLETED"), 400),
])
def test_decide(action, parties, state, expected):
    status, message = sm.decide(action, parties, state)
    assert status == expected, message
