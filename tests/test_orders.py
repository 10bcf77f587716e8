"""Orders API: POST/GET /api/transactions.php, privacy, user settings."""
import pytest

from lib import catalog, env, orders, status_machine as sm, users
from lib.db import utc_now
from tests import market
from tests.factories import make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

SPEC_FIELDS = {"uuid", "type", "description", "package_uuid", "store_uuid", "storename", "buyer_uuid",
               "buyer_username", "dispute_uuid", "current_status", "current_amount", "required_amount",
               "escrow_address", "chain_id", "currency", "current_shipping_status", "buyer_confirmed_at",
               "created_at", "updated_at"}

# Documented additions (lib/openapi.py "Order"): what the payment page shows besides the SPEC's fields.
EXTRA_FIELDS = {"received_amount", "token_contract", "price_usd"}
AMOUNT_FIELDS = ("current_amount", "required_amount", "received_amount")
POST_FIELDS = {"ok", "uuid", "escrow_address_pending", "required_amount", "currency", "chain_id",
               "price_usd", "usd_rate"}


def count(db, table):
    return db.value(f"SELECT COUNT(*) FROM {table}")


def buy(client, user, package_uuid, **extra):
    return client.post("/api/transactions.php", data=dict({"package_uuid": package_uuid}, **extra),
                       headers=user["headers"])


# -- checkout -----------------------------------------------------------------------

def test_create_order_prices_on_the_server(db, client):
    w = market.world(db)
    r = buy(client, w.buyer, w.package["uuid"], currency="ETH", chain_id="1",
            refund_address=market.ADDR_C, required_amount="0.0000001")
    assert r.status == 200, r
    body = r.json()
    assert body["ok"] is True and body["escrow_address_pending"] is True
    assert body["required_amount"] == "0.05" and body["currency"] == "ETH" and body["chain_id"] == 1
    evm = db.one("SELECT * FROM evm_transactions WHERE transaction_uuid = ?", (body["uuid"],))
    assert evm["required_amount"] == str(5 * 10 ** 16) and evm["usd_rate"] == "2000"
    assert evm["refund_address"] == market.ADDR_C and evm["escrow_address"] is None
    assert evm["decimals"] == 18 and evm["token_contract"] == ""
    t = db.one("SELECT * FROM transactions WHERE uuid = ?", (body["uuid"],))
    assert t["buyer_uuid"] == w.buyer["uuid"] and t["store_uuid"] == w.store["uuid"]
    assert t["price_usd"] == "100" and t["description"] == "widget - one"
    assert count(db, "transaction_statuses") == 0      # cron appends the first PENDING row
    assert sm.current_shipping(db, body["uuid"])["status"] == sm.DISPATCH_PENDING


def test_create_order_by_json_with_defaults_and_profile_refund_address(db, client):
    w = market.world(db)
    users.set_addresses(db, w.buyer["uuid"], refund_address=market.ADDR_D)
    r = client.post("/api/transactions.php", json_body={"package_uuid": w.package["uuid"]},
                    headers=w.buyer["headers"])
    assert r.status == 200, r
    evm = db.one("SELECT * FROM evm_transactions WHERE transaction_uuid = ?", (r.json()["uuid"],))
    assert evm["chain_id"] == 1 and evm["currency"] == "ETH" and evm["refund_address"] == market.ADDR_D


def test_order_in_a_6_decimal_token(db, client):
    w = market.world(db)
    market.add_token(db, 1, "USDC", market.USDC, decimals=6)
    market.set_rate(db, 1, "USDC", "0.9998", contract=market.USDC)
    r = buy(client, w.buyer, w.package["uuid"], currency="usdc")
    assert r.status == 200, r
    assert r.json()["required_amount"] == "100.020005" and r.json()["currency"] == "USDC"
    evm = db.one("SELECT * FROM evm_transactions WHERE transaction_uuid = ?", (r.json()["uuid"],))
    assert evm["token_contract"] == market.USDC and evm["decimals"] == 6 and evm["required_amount"] == "100020005"


@pytest.mark.parametrize("settings", [{"ALLOW_TESTNETS": "1"}])   # the operator takes test networks
def test_order_on_a_test_network_with_manual_price(db, client):
    w = market.world(db)
    market.add_token(db, 11155111, "ETH", manual_usd_price="4000")
    r = buy(client, w.buyer, w.package["uuid"], chain_id="11155111")
    assert r.status == 200 and r.json()["required_amount"] == "0.025"


def test_dev_chain_only_when_allowed(db, make_client):
    w = market.world(db)
    with env.overriding({"ALLOW_DEV_CHAIN": "1"}):
        market.add_token(db, 31337, "ETH", manual_usd_price="1000")
    assert buy(make_client({"ALLOW_DEV_CHAIN": "1"}), w.buyer, w.package["uuid"], chain_id="31337").status == 200
    r = buy(make_client({"ALLOW_DEV_CHAIN": "0"}), w.buyer, w.package["uuid"], chain_id="31337")
    assert r.status == 400 and "unsupported chain" in r.json()["error"]
    assert count(db, "transactions") == 1


@pytest.mark.parametrize("extra, status, text", [
    ({"package_uuid": ""}, 400, "package_uuid"),
    ({"package_uuid": "00000000-0000-0000-0000-000000000000"}, 404, "package"),
    ({"package_uuid": "not-a-uuid"}, 404, "package"),
    ({"currency": "DOGE"}, 400, "not accepted"),
    ({"currency": "X" * 40}, 400, "currency"),
    ({"chain_id": "5"}, 400, "unsupported chain"),
    ({"chain_id": "abc"}, 400, "chain_id"),
    ({"chain_id": "-1"}, 400, "chain_id"),
    ({"chain_id": "137"}, 400, "not accepted"),             # no token on Polygon
    ({"refund_address": market.BAD_CHECKSUM}, 400, "checksum"),
    ({"refund_address": market.NO_CHECKSUM}, 400, "checksum"),
    ({"refund_address": "0xnothex"}, 400, "refund_address"),
])
def test_create_order_bad_input(db, client, extra, status, text):
    w = market.world(db)
    data = dict({"package_uuid": w.package["uuid"]}, **extra)
    r = client.post("/api/transactions.php", data=data, headers=w.buyer["headers"])
    assert r.status == status, r
    assert text in r.json()["error"]
    assert count(db, "transactions") == 0 and count(db, "evm_transactions") == 0


def test_create_order_refusals_write_nothing(db, client):
    w = market.world(db)
    # unverified token
    market.add_token(db, 1, "USDC", market.USDC, decimals=6, status="unverified")
    r = buy(client, w.buyer, w.package["uuid"], currency="USDC")
    assert r.status == 409 and "unverified" in r.json()["error"]
    # stale rate
    market.set_rate(db, 1, "ETH", "2000", age_seconds=3600)
    r = buy(client, w.buyer, w.package["uuid"])
    assert r.status == 409 and "stale" in r.json()["error"]
    # missing rate
    db.execute("DELETE FROM prices")
    r = buy(client, w.buyer, w.package["uuid"])
    assert r.status == 409 and "no USD rate" in r.json()["error"]
    market.set_rate(db, 1, "ETH", "2000")
    # the vendor cannot buy from their own store
    r = buy(client, w.vendor, w.package["uuid"])
    assert r.status == 403 and "member" in r.json()["error"]
    # inactive package
    catalog.update_package(db, w.vendor, w.package["uuid"], active="0")
    assert buy(client, w.buyer, w.package["uuid"]).status == 404
    assert count(db, "transactions") == 0 and count(db, "evm_transactions") == 0
    assert count(db, "shipping_statuses") == 0
    assert client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"]}).status == 401


def test_order_json_field_names_and_decimal_string_amounts(db, client):
    """The SPEC's order field names exactly (plus the documented additions), amounts as
    decimal strings in token units, in the list and in the detail; the POST answer likewise."""
    w = market.world(db)
    r = buy(client, w.buyer, w.package["uuid"])
    assert set(r.json()) == POST_FIELDS
    assert r.json()["ok"] is True and r.json()["escrow_address_pending"] is True
    assert isinstance(r.json()["required_amount"], str) and isinstance(r.json()["chain_id"], int)
    uuid = market.order(db, w, "COMPLETED")
    listed = client.get("/api/transactions.php", headers=w.buyer["headers"]).json()["transactions"]
    detail = client.get(f"/api/transactions.php?uuid={uuid}", headers=w.buyer["headers"]).json()["transaction"]
    for order in listed + [detail]:
        assert SPEC_FIELDS | EXTRA_FIELDS <= set(order)
        for field in AMOUNT_FIELDS:
            assert isinstance(order[field], str), (field, order[field])
    assert set(listed[0]) == SPEC_FIELDS | EXTRA_FIELDS
    assert [(o["current_amount"], o["required_amount"], o["received_amount"]) for o in listed] == \
        [("0.05", "0.05", "0"), ("0", "0.05", "0")]
    assert (listed[0]["type"], listed[0]["chain_id"], listed[0]["currency"]) == ("evm", 1, "ETH")
    assert listed[0]["dispute_uuid"] is None and listed[0]["buyer_confirmed_at"] is None
    assert [s["amount"] for s in detail["statuses"]] == ["0", "0.05"]


# -- listing ------------------------------------------------------------------------

def test_list_is_scoped_newest_first_with_spec_fields(db, client):
    w = market.world(db)
    other_vendor = make_user(db, "vendor2")
    store2 = market.store(db, other_vendor, "other")
    item2 = market.item(db, other_vendor, store2["uuid"])
    package2 = market.package(db, other_vendor, item2["uuid"], "10")
    a = market.order(db, w, "COMPLETED")
    b = market.order(db, w, "PENDING")
    c = orders.create_order(db, w.stranger, package2["uuid"])["uuid"]

    mine = client.get("/api/transactions.php", headers=w.buyer["headers"]).json()["transactions"]
    assert [o["uuid"] for o in mine] == [b, a]
    assert SPEC_FIELDS <= set(mine[0])
    assert mine[1]["current_status"] == "COMPLETED" and mine[1]["current_amount"] == "0.05"
    assert mine[0]["current_status"] == "PENDING" and mine[0]["required_amount"] == "0.05"
    assert mine[0]["current_shipping_status"] == "DISPATCH PENDING"
    assert mine[0]["buyer_username"] == "buyer1" and mine[0]["storename"] == "shop"

    sold = client.get("/api/transactions.php", headers=w.vendor["headers"]).json()["transactions"]
    assert [o["uuid"] for o in sold] == [b, a]
    assert [o["uuid"] for o in client.get("/api/transactions.php", headers=other_vendor["headers"])
            .json()["transactions"]] == [c]
    assert [o["uuid"] for o in client.get("/api/transactions.php", headers=w.stranger["headers"])
            .json()["transactions"]] == [c]
    assert [o["uuid"] for o in client.get("/api/transactions.php", headers=w.staff["headers"])
            .json()["transactions"]] == [c, b, a]
    assert [o["uuid"] for o in client.get("/api/transactions.php?scope=buyer", headers=w.stranger["headers"])
            .json()["transactions"]] == [c]
    assert client.get("/api/transactions.php?scope=vendor", headers=w.stranger["headers"]
                      ).json()["transactions"] == []
    assert client.get("/api/transactions.php?scope=all", headers=w.buyer["headers"]).status == 403
    assert client.get("/api/transactions.php?scope=bogus", headers=w.buyer["headers"]).status == 400
    page = client.get("/api/transactions.php?limit=1&offset=1", headers=w.buyer["headers"]).json()
    assert [o["uuid"] for o in page["transactions"]] == [a]
    assert client.get("/api/transactions.php?limit=0", headers=w.buyer["headers"]).status == 400
    assert client.get("/api/transactions.php").status == 401


def test_list_merges_purchases_and_sales(db, client):
    """A vendor who also buys elsewhere sees both, interleaved newest first."""
    w = market.world(db)
    v2 = make_user(db, "vendor2")
    s2 = market.store(db, v2, "two")
    p2 = market.package(db, v2, market.item(db, v2, s2["uuid"])["uuid"], "10")
    sale1 = market.order(db, w)
    purchase = orders.create_order(db, w.vendor, p2["uuid"])["uuid"]
    sale2 = market.order(db, w)
    got = [o["uuid"] for o in orders.list_orders(db, w.vendor)]
    assert got == [sale2, purchase, sale1]
    assert [o["uuid"] for o in orders.list_orders(db, w.vendor, limit=2, offset=1)] == [purchase, sale1]
    assert [o["uuid"] for o in orders.list_orders(db, w.vendor, scope="buyer")] == [purchase]
    assert [o["uuid"] for o in orders.list_orders(db, w.vendor, scope="vendor")] == [sale2, sale1]


# -- detail ---------------------------------------------------------------------------

def test_detail_with_histories(db, client):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    db.execute("UPDATE evm_transactions SET escrow_address = ? WHERE transaction_uuid = ?", (market.ADDR_B, uuid))
    assert client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "dispatch"},
                       headers=w.vendor["headers"]).status == 200
    assert client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "release"},
                       headers=w.buyer["headers"]).status == 200
    now = utc_now()
    db.insert("payouts", {"intent_uuid": None, "transaction_uuid": uuid, "kind": "release",
                          "recipient_role": "vendor", "chain_id": 1, "currency": "ETH", "token_contract": "",
                          "from_address": market.ADDR_B, "to_address": market.ADDR_C,
                          "amount": str(4 * 10 ** 16), "nonce": 0, "tx_hash": "0x" + "ab" * 32,
                          "raw_tx": "0x00", "status": "broadcast", "created_at": now, "updated_at": now})
    r = client.get(f"/api/transactions.php?uuid={uuid}", headers=w.buyer["headers"])
    assert r.status == 200
    t = r.json()["transaction"]
    assert SPEC_FIELDS <= set(t)
    assert t["escrow_address"] == market.ADDR_B
    assert [s["status"] for s in t["statuses"]] == ["PENDING", "COMPLETED"]
    assert t["statuses"][1]["amount"] == "0.05"
    assert [s["status"] for s in t["shipping"]] == ["DISPATCH PENDING", "DISPATCHED"]
    assert t["current_shipping_status"] == "DISPATCHED"
    assert [(i["action"], i["status"]) for i in t["intents"]] == [("RELEASE", "pending")]
    assert t["payouts"][0]["amount"] == "0.04" and t["payouts"][0]["explorer_url"].startswith("https://etherscan.io/tx/0xabab")
    assert t["my_roles"] == ["buyer"] and t["refund_address"] == market.ADDR_A
    assert t["allowed_actions"] == []     # a payout is in progress
    vendor_view = client.get(f"/api/transactions.php?uuid={uuid}", headers=w.vendor["headers"]).json()["transaction"]
    assert vendor_view["refund_address"] is None and vendor_view["my_roles"] == ["vendor"]
    staff_view = client.get(f"/api/transactions.php?uuid={uuid}", headers=w.staff["headers"]).json()["transaction"]
    assert staff_view["my_roles"] == ["staff"]


def test_allowed_actions_for_buttons(db):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    assert orders.get_order(db, w.buyer, uuid)["allowed_actions"] == ["release", "dispute"]
    assert orders.get_order(db, w.vendor, uuid)["allowed_actions"] == ["cancel", "dispatch", "dispute"]
    assert orders.get_order(db, w.staff, uuid)["allowed_actions"] == ["release", "cancel"]


# -- privacy --------------------------------------------------------------------------

def test_other_peoples_orders_do_not_exist(db, client):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    v2 = make_user(db, "vendor2")
    market.store(db, v2, "two")
    for outsider in (w.stranger, v2):
        assert client.get("/api/transactions.php", headers=outsider["headers"]).json()["transactions"] == []
        r = client.get(f"/api/transactions.php?uuid={uuid}", headers=outsider["headers"])
        assert r.status == 404 and r.json() == {"error": "no such order"}
        for action in ("release", "cancel", "dispute", "dispatch", "confirm", "partial_refund"):
            r = client.post("/api/transaction-actions.php",
                            data={"transaction_uuid": uuid, "action": action, "refund_percent": "50"},
                            headers=outsider["headers"])
            assert r.status == 404 and r.json() == {"error": "no such order"}, (action, r)
    # an order that does not exist looks the same
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/api/transactions.php?uuid={missing}", headers=w.stranger["headers"]).json() == \
        {"error": "no such order"}
    assert count(db, "transaction_intents") == 0 and count(db, "disputes") == 0
    assert sm.current_status(db, uuid)["status"] == "COMPLETED"


# -- user settings --------------------------------------------------------------------

def test_user_settings(db, client):
    alice = make_user(db, "alice")
    r = client.get("/api/user-settings.php", headers=alice["headers"])
    assert r.json() == {"username": "alice", "user_uuid": alice["uuid"], "refund_address": None,
                        "payout_address": None}
    r = client.post("/api/user-settings.php", data={"refund_address": market.ADDR_C,
                                                    "payout_address": market.ADDR_D}, headers=alice["headers"])
    assert r.status == 200 and r.json()["refund_address"] == market.ADDR_C
    u = users.by_uuid(db, alice["uuid"])
    assert (u["refund_address"], u["payout_address"]) == (market.ADDR_C, market.ADDR_D)
    r = client.post("/api/user-settings.php", json_body={"payout_address": ""}, headers=alice["headers"])
    assert r.status == 200 and users.by_uuid(db, alice["uuid"])["payout_address"] is None
    assert users.by_uuid(db, alice["uuid"])["refund_address"] == market.ADDR_C


@pytest.mark.parametrize("data", [
    {"refund_address": market.BAD_CHECKSUM}, {"payout_address": market.NO_CHECKSUM},
    {"refund_address": market.ADDR_C, "payout_address": "0x12"}, {}, {"refund_address": 5},
])
def test_user_settings_bad_input(db, client, data):
    alice = make_user(db, "alice")
    r = client.post("/api/user-settings.php", json_body=data, headers=alice["headers"])
    assert r.status == 400, r
    u = users.by_uuid(db, alice["uuid"])
    assert u["refund_address"] is None and u["payout_address"] is None
    assert client.get("/api/user-settings.php").status == 401
