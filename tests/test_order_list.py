"""GET /api/transactions.php (the order list) answers exactly what encoding the orders in
one go gives, whether an order's JSON comes from the per-process cache or not, and never
an order as it was before a change: each kind of write shows in the next request."""
import json

from lib import orders, status_machine as sm
from lib.db import utc_now
from tests import market
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)


def expected(db, user, limit=50, offset=0, scope=None):
    """The page as one json.dumps of the orders read afresh (what the API answered before
    it kept encoded orders)."""
    page = {"transactions": orders.list_orders(db, user, limit, offset, scope), "limit": limit, "offset": offset}
    return json.dumps(page, default=str, ensure_ascii=False).encode("utf-8")


def listed(client, user, query=""):
    r = client.get("/api/transactions.php" + query, headers=user["headers"])
    assert r.status == 200 and r.header("Content-Type") == "application/json", r
    return r.body


def test_the_page_is_byte_for_byte_one_encoding_cold_and_warm(db, client):
    w = market.world(db)
    item = market.item(db, w.vendor, w.store["uuid"], "Wîdget ☕ \"quoted\"")
    package = market.package(db, w.vendor, item["uuid"], "12.5", "ünï 🎁")
    for status in ("PENDING", "COMPLETED", "RELEASED"):
        market.order(db, w, status)
    orders.create_order(db, w.buyer, package["uuid"])
    market.order(db, w, "COMPLETED", dispatched=True, confirmed=True)
    for _ in range(2):
        assert listed(client, w.buyer) == expected(db, w.buyer)
        assert listed(client, w.vendor) == expected(db, w.vendor)
        assert listed(client, w.staff) == expected(db, w.staff)
        assert listed(client, w.buyer, "?limit=2&offset=1") == expected(db, w.buyer, 2, 1)
        assert listed(client, w.vendor, "?scope=buyer") == expected(db, w.vendor, scope="buyer")
    assert "ünï 🎁" in listed(client, w.buyer).decode("utf-8")
    assert listed(client, w.stranger) == b'{"transactions": [], "limit": 50, "offset": 0}'


def test_every_kind_of_change_shows_in_the_next_request(db, client):
    w = market.world(db)
    uuid = market.order(db, w, "PENDING")
    other = market.order(db, w, "COMPLETED")
    required = db.value("SELECT required_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))
    changes = [
        # what cron writes: the escrow address (and the first status), a payment without a status row, paid
        lambda: db.execute("UPDATE evm_transactions SET escrow_address = ? WHERE transaction_uuid = ?",
                           (market.ADDR_B, uuid)) and sm.append_status(db, uuid, sm.PENDING, "0"),
        lambda: db.execute("UPDATE evm_transactions SET received_amount = '7' WHERE transaction_uuid = ?", (uuid,)),
        lambda: sm.append_status(db, uuid, sm.COMPLETED, required),
        # the vendor dispatches, the buyer confirms (as an older release wrote it: no updated_at)
        lambda: sm.append_shipping(db, uuid, sm.DISPATCHED, w.vendor["uuid"]),
        lambda: db.execute("UPDATE transactions SET buyer_confirmed_at = ? WHERE uuid = ?", (utc_now(), uuid)),
        # a dispute on the other order, then only its time stamp
        lambda: orders.take_action(db, w.buyer, other, "dispute"),
        lambda: db.execute("UPDATE transactions SET updated_at = '2099-01-01 00:00:00' WHERE uuid = ?", (other,)),
    ]
    before = listed(client, w.buyer)
    for i, change in enumerate(changes):
        listed(client, w.buyer)          # the orders as they are now are the ones kept
        change()
        now = listed(client, w.buyer)
        assert now == expected(db, w.buyer), i
        assert now != before, i
        before = now
    final = json.loads(before)["transactions"]
    assert final[1]["escrow_address"] == market.ADDR_B and final[1]["received_amount"] != "0"
    assert final[1]["current_shipping_status"] == sm.DISPATCHED and final[1]["buyer_confirmed_at"]
    assert final[0]["dispute_uuid"] and final[0]["updated_at"] == "2099-01-01 00:00:00"
