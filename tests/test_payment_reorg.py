"""A payment counted and then reorganised away returns the order to
PENDING (with a status row saying so) before anything is paid.

The reorganisations are anvil's own (`anvil_reorg` replaces the newest blocks with empty
ones; the transactions in them are dropped, not put back in the pool). The cron duties
are called directly on a tasks.Context, without the payout engine.
"""
import pytest

from cron import tasks
from lib import intents
from lib import status_machine as sm
from tests.cron_support import HOUR, Parties, backdate, escrow, make_order, status
from tests.duties import duty

ETH = 10 ** 18


def pay(anvil, addr, wei):
    """Send wei to addr; returns the block it was mined in."""
    tx = anvil.send_eth(1, addr, wei)
    return int(anvil.rpc("eth_getTransactionReceipt", tx)["blockNumber"], 16)


def reorg_from(anvil, block):
    """Replace every block from `block` to the head with empty ones (same height)."""
    head = anvil.block_number()
    anvil.rpc("anvil_reorg", head - block + 1, [])
    assert anvil.block_number() == head


def completed_order(anvil, db, env, p, amount):
    uuid = make_order(db, p.buyer, p.store, amount, refund=p.refund)
    duty(env, db, tasks.fill_escrow_addresses)
    addr = escrow(db, uuid)
    block = pay(anvil, addr, amount)
    anvil.mine(3)
    duty(env, db, tasks.poll_pending)
    assert status(db, uuid) == sm.COMPLETED
    return uuid, addr, block


def received(db, uuid):
    return db.value("SELECT received_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))


def test_reorged_payment_returns_the_order_to_pending_and_fails_its_pending_intent(anvil, db, env):
    p = Parties(db)
    amount = ETH // 10
    uuid, addr, block = completed_order(anvil, db, env, p, amount)
    intent = intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    reorg_from(anvil, block)
    assert anvil.balance(addr) == 0                     # the payment is gone from the chain

    ctx = duty(env, db, tasks.poll_pending)
    assert ctx.counts["poll"]["reorged"] == 1
    assert status(db, uuid) == sm.PENDING
    row = sm.current_status(db, uuid)
    assert row["amount"] == "0"
    assert "no longer on chain (chain reorganisation)" in row["comment"]
    assert "0 of 0.1 confirmed, 0.1 was counted" in row["comment"]
    assert received(db, uuid) == "0"
    closed = db.one("SELECT * FROM transaction_intents WHERE id = ?", (intent["id"],))
    assert closed["status"] == "failed" and closed["open_key"] is None
    assert "chain reorganisation" in closed["error"]

    rows = len(sm.history(db, uuid))
    duty(env, db, tasks.poll_pending)                   # nothing more to say
    assert len(sm.history(db, uuid)) == rows

    pay(anvil, addr, amount)                            # the buyer pays again
    anvil.mine(3)
    duty(env, db, tasks.poll_pending)
    assert status(db, uuid) == sm.COMPLETED
    assert [h["status"] for h in sm.history(db, uuid)] == [sm.PENDING, sm.COMPLETED, sm.PENDING, sm.COMPLETED]
    assert received(db, uuid) == str(amount)
    assert [s["status"] for s in sm.shipping_history(db, uuid)] == [sm.DISPATCH_PENDING]
    assert anvil.balance(addr) == amount


def test_partly_reorged_payment_keeps_the_part_still_on_chain(anvil, db, env):
    p = Parties(db)
    amount = ETH // 10
    uuid = make_order(db, p.buyer, p.store, amount, refund=p.refund)
    duty(env, db, tasks.fill_escrow_addresses)
    addr = escrow(db, uuid)
    first = amount * 3 // 5
    pay(anvil, addr, first)
    anvil.mine(3)
    duty(env, db, tasks.poll_pending)
    assert status(db, uuid) == sm.PENDING and received(db, uuid) == str(first)
    block = pay(anvil, addr, amount - first)
    anvil.mine(3)
    duty(env, db, tasks.poll_pending)
    assert status(db, uuid) == sm.COMPLETED
    reorg_from(anvil, block)                            # only the second part is dropped
    duty(env, db, tasks.poll_pending)
    row = sm.current_status(db, uuid)
    assert row["status"] == sm.PENDING and row["amount"] == str(first)
    assert "0.06 of 0.1 confirmed, 0.1 was counted" in row["comment"]
    assert received(db, uuid) == str(first)


def test_completed_order_whose_payment_is_still_there_is_left_alone(anvil, db, env):
    p = Parties(db)
    uuid, addr, _ = completed_order(anvil, db, env, p, ETH // 10)
    before = sm.history(db, uuid)
    anvil.mine(2)
    for _ in range(2):
        ctx = duty(env, db, tasks.poll_pending)
        assert ctx.counts["poll"]["rechecked"] == 1 and "reorged" not in ctx.counts["poll"]
    assert sm.history(db, uuid) == before
    assert received(db, uuid) == str(ETH // 10)


@pytest.mark.parametrize("held", ["processing", "needs_attention"])
def test_an_order_whose_intent_is_executing_or_held_by_staff_is_not_touched(anvil, db, env, held):
    p = Parties(db)
    uuid, _, block = completed_order(anvil, db, env, p, ETH // 10)
    intent = intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    db.execute("UPDATE transaction_intents SET status = ? WHERE id = ?", (held, intent["id"]))
    reorg_from(anvil, block)
    ctx = duty(env, db, tasks.poll_pending)
    assert "rechecked" not in ctx.counts.get("poll", {})
    assert status(db, uuid) == sm.COMPLETED
    assert db.value("SELECT status FROM transaction_intents WHERE id = ?", (intent["id"],)) == held


def test_only_recently_completed_orders_are_rechecked(anvil, db, env):
    p = Parties(db)
    uuid, _, block = completed_order(anvil, db, env, p, ETH // 10)
    backdate(db, uuid, 25 * HOUR)                       # paid more than a day ago
    reorg_from(anvil, block)
    ctx = duty(env, db, tasks.poll_pending)
    assert "rechecked" not in ctx.counts.get("poll", {})
    assert status(db, uuid) == sm.COMPLETED
