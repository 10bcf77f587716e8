"""What a client of the original (its Python SDK, its MCP plugin, scripts) reads,
call by call. Each test makes one SDK-style call the way the original's client does
(form-encoded bodies, .php URLs, a key in one of the three transports or a session cookie
without a CSRF token) and asserts the fields and types that client reads. Our answers are
supersets: extra fields are fine, these must stay. On both databases."""
import re

import pytest

from lib import config, disputes, orders
from tests import market
from tests.client import Client
from tests.factories import login, make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")


@pytest.fixture
def w(db):
    return market.world(db)


def post(client, path, user, **data):
    r = client.post(path, data=data, headers=user["headers"])
    assert r.status == 200, r
    return r.json()


def get(client, path, user=None):
    r = client.get(path, headers=user["headers"] if user else None)
    assert r.status == 200, r
    return r.json()


# -- accounts and keys (the MCP plugin logs in with a password, then uses the cookie) ----------

def test_register_and_login_answer_text(client, db):
    r = client.post("/register.php", data={"username": "agent_1", "password": "password123"})
    assert r.status == 200 and r.text == "Registered as agent_1"
    r = Client(client.app).post("/login.php", data={"username": "agent_1", "password": "password123"})
    assert r.status == 200 and r.text == "Logged in as agent_1" and r.header("Set-Cookie")


def test_create_key_with_the_session_cookie_and_no_csrf_token(client, db):
    make_user(db, "agent")
    login(client, "agent")
    r = client.post("/api/keys.php", data={"name": "sdk"})
    assert r.status == 200, r
    body = r.json()
    assert body["ok"] is True and re.fullmatch(r"[0-9a-f]{64}", body["api_key"]) and isinstance(body["id"], int)
    assert body["name"] == "sdk" and body["api_key"].startswith(body["key_prefix"])


@pytest.mark.parametrize("transport", ["bearer", "header", "query"])
def test_auth_user_with_each_key_transport(client, db, transport):
    user = make_user(db, "agent")
    key = user["api_key"]
    headers = {"bearer": {"Authorization": f"Bearer {key}"}, "header": {"X-API-Key": key}, "query": {}}[transport]
    path = "/api/auth-user.php" + (f"?token={key}" if transport == "query" else "")
    body = client.get(path, headers=headers).json()
    assert (body["username"], body["role"], body["user_uuid"]) == ("agent", "customer", user["uuid"])


def test_list_and_revoke_keys(client, db):
    user = make_user(db, "agent")
    keys = get(client, "/api/keys.php", user)["keys"]
    assert {"id", "name", "key_prefix", "created_at", "last_used_at"} <= set(keys[0])
    other = post(client, "/api/keys.php", user, name="second")
    assert post(client, "/api/keys-revoke.php", user, id=str(other["id"]))["ok"] is True


# -- catalog -------------------------------------------------------------------------------

def test_list_stores(client, w):
    stores = get(client, "/api/stores.php")["stores"]
    assert {"uuid", "storename", "description", "vendorship_agreed_at", "created_at"} <= set(stores[0])
    assert stores[0]["storename"] == "shop" and UUID.match(stores[0]["uuid"])


def test_create_store_by_session_without_csrf_token(client, db):
    make_user(db, "agent")
    login(client, "agent")
    r = client.post("/api/stores.php", data={"storename": "agentshop", "description": "d", "vendorship_agree": "1"})
    assert r.status == 200, r
    body = r.json()
    assert body["ok"] is True and UUID.match(body["uuid"])


def test_create_and_list_items(client, w):
    body = post(client, "/api/items.php", w.vendor, name="gizmo", store_uuid=w.store["uuid"], description="d")
    assert body["ok"] is True and UUID.match(body["uuid"])
    items = get(client, f"/api/items.php?store_uuid={w.store['uuid']}")["items"]
    assert {"uuid", "name", "description", "store_uuid"} <= set(items[0])


def test_create_and_list_packages_with_price_usd(client, w):
    body = post(client, "/api/packages.php", w.vendor, item_uuid=w.item["uuid"], name="two", price_usd="12.50")
    assert body["ok"] is True and UUID.match(body["uuid"])
    packages = get(client, f"/api/packages.php?item_uuid={w.item['uuid']}")["packages"]
    assert {"uuid", "name", "price_usd"} <= set(packages[0]) and DECIMAL.match(packages[0]["price_usd"])


# -- orders ----------------------------------------------------------------------------------

def test_create_order(client, w):
    body = post(client, "/api/transactions.php", w.buyer, package_uuid=w.package["uuid"], currency="ETH",
                chain_id="1", refund_address=market.ADDR_A, required_amount="0.000001")
    assert body["ok"] is True and UUID.match(body["uuid"]) and body["escrow_address_pending"] is True
    assert DECIMAL.match(body["required_amount"]) and body["required_amount"] == "0.05"  # priced by the server
    assert (body["currency"], body["chain_id"]) == ("ETH", 1)


ORDER_FIELDS = {"uuid", "type", "description", "package_uuid", "store_uuid", "storename", "buyer_uuid",
                "buyer_username", "dispute_uuid", "current_status", "current_amount", "required_amount",
                "escrow_address", "chain_id", "currency", "current_shipping_status", "buyer_confirmed_at",
                "created_at", "updated_at"}


def test_list_and_read_orders(client, w, db):
    uuid = market.order(db, w, "COMPLETED")
    listed = get(client, "/api/transactions.php", w.buyer)["transactions"]
    assert ORDER_FIELDS <= set(listed[0]) and listed[0]["uuid"] == uuid and listed[0]["type"] == "evm"
    one = get(client, f"/api/transactions.php?uuid={uuid}", w.buyer)["transaction"]
    assert ORDER_FIELDS | {"statuses", "shipping", "intents", "payouts"} <= set(one)
    assert one["current_status"] == "COMPLETED" and TIME.match(one["created_at"])


@pytest.mark.parametrize("state, who, action, extra, intent", [
    ("COMPLETED", "buyer", "release", {}, "RELEASE"),
    ("PENDING", "buyer", "cancel", {}, "CANCEL"),
    ("DISPUTED", "staff", "partial_refund", {"refund_percent": "100"}, "PARTIAL_REFUND"),
    ("DISPUTED", "staff", "partial_refund", {"refund_percent": "1"}, "PARTIAL_REFUND"),
    ("COMPLETED", "vendor", "dispatch", {}, None),
    ("COMPLETED", "buyer", "dispute", {"comment": "where is it"}, None),
])
def test_transaction_action_answers_the_intent_name(client, w, db, state, who, action, extra, intent):
    uuid = market.order(db, w, "COMPLETED" if state == "DISPUTED" else state)
    if state == "DISPUTED":
        orders.take_action(db, w.buyer, uuid, "dispute")
    body = post(client, "/api/transaction-actions.php", w[who], transaction_uuid=uuid, action=action, **extra)
    assert body["ok"] is True and body["action"] == action and body["transaction_uuid"] == uuid
    assert body["intent"] == intent                              # a string (or null), as the original
    if intent:
        assert body["intent_detail"]["action"] == intent and body["intent_detail"]["status"] == "pending"
        if "refund_percent" in extra:
            assert body["intent_detail"]["refund_percent"] == int(extra["refund_percent"])
    else:
        assert body["intent_detail"] is None


def test_list_disputes_with_resolver_user_uuid(client, w, db):
    uuid = market.order(db, w, "COMPLETED")
    orders.take_action(db, w.buyer, uuid, "dispute", comment="empty box")
    dispute_uuid = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (uuid,))
    listed = get(client, "/api/disputes.php", w.buyer)["disputes"]
    assert listed[0]["uuid"] == dispute_uuid and listed[0]["resolver_user_uuid"] is None
    disputes.resolve(db, w.staff, dispute_uuid, "partial_refund", 100)
    listed = get(client, "/api/disputes.php", w.buyer)["disputes"]
    assert listed[0]["resolver_user_uuid"] == listed[0]["resolved_by"] == w.staff["uuid"]
    assert listed[0]["refund_percent"] == 100 and listed[0]["status"] == "resolved"


# -- deposits ----------------------------------------------------------------------------------

def test_list_deposits_with_crypto_and_fiat_values(client, w, db):
    deposit = post(client, "/api/deposits.php", w.vendor, store_uuid=w.store["uuid"], currency="ETH", chain_id="1")
    db.execute("UPDATE deposits SET balance = ? WHERE uuid = ?", ("1500000000000000000", deposit["uuid"]))
    item = get(client, "/api/deposits.php", w.vendor)["deposits"][0]
    assert (item["crypto"], item["crypto_value"], item["currency_rate"], item["fiat_value"]) == \
        ("ETH", "1.5", "2000", "3000.00")
    assert item["balance"] == "1.5"


def test_deposit_values_are_null_without_a_usable_rate(client, w, db):
    deposit = post(client, "/api/deposits.php", w.vendor, store_uuid=w.store["uuid"], currency="ETH", chain_id="1")
    market.set_rate(db, 1, "ETH", "2000", age_seconds=10 * 3600)        # older than price_max_age
    item = get(client, f"/api/deposits.php?store_uuid={w.store['uuid']}", w.vendor)["deposits"][0]
    assert item["uuid"] == deposit["uuid"]
    assert (item["crypto"], item["crypto_value"], item["currency_rate"], item["fiat_value"]) == \
        ("ETH", "0", None, None)


@pytest.mark.parametrize("settings", [{"ALLOW_TESTNETS": "1"}])      # a manual price is for test networks
def test_deposit_fiat_value_from_manual_usd_price(client, db):
    vendor = make_user(db, "testnet")
    store = market.store(db, vendor, "tshop")
    market.add_token(db, 11155111, "ETH", manual_usd_price="2500.5")
    deposit = post(client, "/api/deposits.php", vendor, store_uuid=store["uuid"], currency="ETH",
                   chain_id="11155111")
    db.execute("UPDATE deposits SET balance = ? WHERE uuid = ?", ("333333333333333333", deposit["uuid"]))
    item = get(client, f"/api/deposits.php?uuid={deposit['uuid']}", vendor)["deposit"]
    assert (item["crypto_value"], item["currency_rate"], item["fiat_value"]) == ("0.333333333333333333",
                                                                               "2500.5", "833.49")


# -- admin ------------------------------------------------------------------------------------

def test_admin_config_is_the_flat_object(client, db):
    admin = make_user(db, "root", role="admin")
    body = get(client, "/admin/config.php", admin)
    for name, (_, default, _) in config.KEYS.items():
        assert body[name] == default, name
    assert body["pending_duration"] == "24h" and body["price_max_age"] == "15m"
    assert not set(body) - set(config.KEYS) - {"config", "keys"}
    body = post(client, "/admin/config.php", admin, price_max_age="30m")
    assert body["ok"] is True and body["price_max_age"] == "30m" and body["changed"] == {"price_max_age": "30m"}
    assert get(client, "/admin/config.php", admin)["price_max_age"] == "30m"


def test_admin_add_token_has_id_at_the_top(client, db):
    admin = make_user(db, "root", role="admin")
    body = post(client, "/admin/tokens.php", admin, chain_id="1", symbol="USDC", contract_address=market.USDC)
    assert body["ok"] is True and isinstance(body["id"], int)
    assert (body["chain_id"], body["symbol"], body["contract_address"], body["status"]) == \
        (1, "USDC", market.USDC, "unverified")
    assert body["token"]["id"] == body["id"]
    tokens = get(client, "/admin/tokens.php", admin)["tokens"]
    assert {"id", "chain_id", "symbol", "contract_address", "decimals", "status", "manual_usd_price"} <= set(tokens[0])
    assert post(client, "/admin/tokens-remove.php", admin, id=str(body["id"])) == {"ok": True, "id": body["id"]}


# -- refund_percent 100 all the way to the payout plan ----------------------------------------

def test_partial_refund_of_100_percent_pays_the_vendor_nothing(db, w):
    import types
    from decimal import Decimal
    from cron import payouts
    shares = payouts.split_partial_refund(10 ** 18 + 7, Decimal("0.10"), 100)
    assert shares["vendor"] == 0 and shares["buyer"] + shares["resolver"] == 10 ** 18 + 7
    # the store and its owner have no payout address: not needed when the vendor gets nothing
    order = {"chain_id": 1, "store_uuid": w.store["uuid"], "refund_address": market.ADDR_A,
             "buyer_uuid": w.buyer["uuid"]}
    ctx = types.SimpleNamespace(db=db, env={"COMMISSION_WALLET_1": market.ADDR_B})
    intent = {"action": "PARTIAL_REFUND", "refund_percent": 100, "requested_by": w.staff["uuid"]}
    gross = payouts.order_gross(ctx, intent, order, 1000)
    assert gross == [("buyer", market.ADDR_A, 900), ("resolver", market.ADDR_B, 100), ("vendor", None, 0)]
    with pytest.raises(payouts.PayoutRefused, match="vendor has no payout address"):
        payouts.order_gross(ctx, dict(intent, refund_percent=99), order, 1000)
