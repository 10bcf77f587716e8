"""evm_transactions.closed_at, the index of open orders the cron duties select from.

append_status sets it, in the same transaction, exactly when it appends a final status;
the cron selections (poll, expire, timeouts, escrow addresses) follow closed_at and the
current status, so closed orders cost nothing per run however many there are.
"""
import os
import re

import pytest

from cron import tasks
from lib import intents
from lib import status_machine as sm
from tests.cron_support import (HOUR, Parties, backdate, escrow, make_order, paid_order, run_cron,
                                settle, status)

ETH = 10 ** 18
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def closed_at(db, uuid):
    return db.value("SELECT closed_at FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))


def give_escrow(db, uuid, n):
    db.execute("UPDATE evm_transactions SET escrow_address = ?, derivation_index = ? WHERE transaction_uuid = ?",
               ("0x%040x" % (0xabc000 + n), 900000 + n, uuid))


@pytest.mark.parametrize("path", [
    (sm.PENDING, sm.PENDING, sm.COMPLETED, sm.FROZEN, sm.RELEASED),
    (sm.PENDING, sm.COMPLETED, sm.RELEASED),
    (sm.PENDING, sm.COMPLETED, sm.CANCELLED),
    (sm.PENDING, sm.PENDING, sm.CANCELLED),
    (sm.PENDING, sm.FAILED),
])
def test_closed_at_is_set_exactly_when_a_final_status_is_appended(db, path):
    p = Parties(db)
    uuid = make_order(db, p.buyer, p.store, ETH)
    assert closed_at(db, uuid) is None
    for status_ in path:
        sm.append_status(db, uuid, status_, "1")
        if status_ in sm.FINAL:
            final_row = sm.current_status(db, uuid)
            assert closed_at(db, uuid) == final_row["time"]
        else:
            assert closed_at(db, uuid) is None, "closed after %s" % status_
    # Nothing may follow a final status, and the refused append leaves closed_at alone.
    stamp = closed_at(db, uuid)
    with pytest.raises(sm.TransitionError):
        sm.append_status(db, uuid, sm.PENDING, "0")
    assert closed_at(db, uuid) == stamp


def test_a_refused_or_rolled_back_final_status_does_not_close_the_order(db):
    p = Parties(db)
    uuid = make_order(db, p.buyer, p.store, ETH)
    sm.append_status(db, uuid, sm.PENDING, "0")
    with pytest.raises(sm.TransitionError):
        sm.append_status(db, uuid, sm.RELEASED, "0")        # PENDING -> RELEASED is not allowed
    assert closed_at(db, uuid) is None
    with pytest.raises(RuntimeError):
        with db.transaction():
            sm.append_status(db, uuid, sm.FAILED, "0")
            raise RuntimeError("the caller's transaction fails after the append")
    assert status(db, uuid) == sm.PENDING and closed_at(db, uuid) is None


def test_only_append_status_writes_closed_at():
    writers = []
    for top in ("lib", "cron", "public"):
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    with open(path, encoding="utf-8") as f:
                        if re.search(r"closed_at\s*=\s*\?|\"closed_at\"\s*:", f.read()):
                            writers.append(os.path.relpath(path, ROOT))
    assert writers == [os.path.join("lib", "status_machine.py")]


def test_selections_follow_closed_at_and_the_current_status(db):
    p = Parties(db)
    fresh = make_order(db, p.buyer, p.store, ETH)                  # no address yet: not polled
    pending, completed, frozen, released, failed, stale = (make_order(db, p.buyer, p.store, ETH) for _ in range(6))
    for n, uuid in enumerate((pending, completed, frozen, released, failed, stale)):
        give_escrow(db, uuid, n)
        sm.append_status(db, uuid, sm.PENDING, "0")
    for uuid in (completed, frozen, released):
        sm.append_status(db, uuid, sm.COMPLETED, str(ETH))
    sm.append_status(db, frozen, sm.FROZEN, str(ETH))
    sm.append_status(db, released, sm.RELEASED, str(ETH))
    sm.append_status(db, failed, sm.FAILED, "0")
    # An order marked closed whose newest row is still PENDING: cron goes by closed_at.
    db.execute("UPDATE evm_transactions SET closed_at = '2026-01-01 00:00:00' WHERE transaction_uuid = ?", (stale,))

    pending_rows = db.query(tasks.PENDING_SQL)
    assert [r["transaction_uuid"] for r in pending_rows] == [pending]
    row = pending_rows[0]
    assert row["escrow_address"] == escrow(db, pending) and row["required_amount"] == str(ETH)
    assert row["created_at"] == db.value("SELECT created_at FROM transactions WHERE uuid = ?", (pending,))
    completed_rows = db.query(tasks.COMPLETED_SQL)
    assert [r["transaction_uuid"] for r in completed_rows] == [completed]
    assert completed_rows[0]["updated_at"] == sm.current_status(db, completed)["time"]
    # Every order with a final status is closed, every other one open.
    open_ = {r["transaction_uuid"] for r in db.query("SELECT transaction_uuid FROM evm_transactions "
                                                      "WHERE closed_at IS NULL")}
    assert open_ == {fresh, pending, completed, frozen}


def test_plans_use_the_open_orders_index(db):
    p = Parties(db)
    orders = [make_order(db, p.buyer, p.store, ETH) for _ in range(3)]
    for n, uuid in enumerate(orders):
        give_escrow(db, uuid, n)
        sm.append_status(db, uuid, sm.PENDING, "0")
    # Mostly closed orders, as in a marketplace that has run a while (the planners go by counts).
    package, created = db.one("SELECT package_uuid, created_at FROM transactions WHERE uuid = ?",
                              (orders[0],)).values()
    with db.transaction():
        for n in range(300):
            uuid = "closed-%04d" % n
            db.insert("transactions", {"uuid": uuid, "package_uuid": package, "store_uuid": p.store["uuid"],
                                       "buyer_uuid": p.buyer["uuid"], "price_usd": "10", "created_at": created,
                                       "updated_at": created})
            db.insert("evm_transactions", {"transaction_uuid": uuid, "chain_id": 31337, "currency": "ETH",
                                           "decimals": 18, "required_amount": "1", "usd_rate": "1",
                                           "escrow_address": "0x%040x" % (0xdef000 + n), "created_at": created,
                                           "closed_at": created})
    if not db.is_sqlite:
        db.query("ANALYZE TABLE evm_transactions, transaction_statuses")
    for sql in (tasks.PENDING_SQL, tasks.COMPLETED_SQL):
        if db.is_sqlite:
            plan = " | ".join(r["detail"] for r in db.query("EXPLAIN QUERY PLAN " + sql)) + " "
            assert "idx_evm_transactions_open" in plan, plan
            assert "SCAN e " not in plan and "SCAN s " not in plan, plan
        else:
            plan = db.query("EXPLAIN " + sql)
            rows = {r["table"]: r for r in plan}
            assert plan[0]["table"] == "e" and plan[0]["key"] == "idx_evm_transactions_open", plan
            assert rows["s"]["key"] == "PRIMARY" and rows["s2"]["key"] == "idx_transaction_statuses_tx", plan


def test_cron_leaves_closed_orders_alone(anvil, db, env):
    p = Parties(db)
    done, _ = paid_order(anvil, db, env, p, ETH // 10)
    assert closed_at(db, done) is None
    intents.open_intent(db, done, sm.RELEASE, p.buyer["uuid"])
    settle(anvil, env, db, done, sm.RELEASED)
    assert closed_at(db, done) == sm.current_status(db, done)["time"]
    waiting = make_order(db, p.buyer, p.store, ETH, refund=p.refund)
    backdate(db, done, 400 * HOUR)                    # past every pending / dispatch / stuck limit
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert r["counts"]["poll"]["escrows"] == 1       # only the new order's escrow is polled
    assert status(db, done) == sm.RELEASED and status(db, waiting) == sm.PENDING
    assert closed_at(db, waiting) is None


def test_count_by_status_matches_the_view(db):
    """Staff counts (one final row per closed order + open orders) agree with the view."""
    p = Parties(db)
    paths = [(), (sm.PENDING,), (sm.PENDING, sm.PENDING), (sm.PENDING, sm.COMPLETED),
             (sm.PENDING, sm.COMPLETED, sm.FROZEN), (sm.PENDING, sm.COMPLETED, sm.RELEASED),
             (sm.PENDING, sm.COMPLETED, sm.FROZEN, sm.CANCELLED), (sm.PENDING, sm.FAILED),
             (sm.PENDING, sm.COMPLETED, sm.RELEASED)]
    for path in paths:
        uuid = make_order(db, p.buyer, p.store, ETH)
        for status_ in path:
            sm.append_status(db, uuid, status_, "1")
    view = {r["current_status"]: int(r["n"]) for r in db.query(
        "SELECT current_status, COUNT(*) AS n FROM v_current_transaction_statuses GROUP BY current_status")}
    assert sm.count_by_status(db) == view == {
        "PENDING": 3, "COMPLETED": 1, "FROZEN": 1, "RELEASED": 2, "CANCELLED": 1, "FAILED": 1}
