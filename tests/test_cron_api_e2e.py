"""End to end through the JSON API and cron against anvil: an order is created with
POST /api/transactions.php, paid from an anvil account, completed by cron, and released,
cancelled or partially refunded with POST /api/transaction-actions.php; every recipient
gets exactly its share on chain (SPEC sections 4, 6 and 7)."""
import pytest

from tests.chain import fresh_address
from tests.cron_support import fees, paid_fees, payout_rows, retained, run_cron
from tests.factories import make_user
from tests.market import add_token, fast_hashing, item, package, store  # noqa: F401 (fixture)

ETH = 10 ** 18


@pytest.fixture
def settings():
    return {"ALLOW_DEV_CHAIN": "1"}      # the web side accepts chain 31337


class Shop:
    def __init__(self, db, client, tier="free"):
        self.referrer_addr, self.vendor_addr, self.refund_addr, self.resolver_addr = (
            fresh_address() for _ in range(4))
        self.referrer = make_user(db, "referrer1")
        self.buyer = make_user(db, "buyer1", invite="referrer1")
        self.vendor = make_user(db, "vendor1")
        self.staff = make_user(db, "staff1", role="staff")
        for user, addr in ((self.referrer, self.referrer_addr), (self.staff, self.resolver_addr)):
            r = client.post("/api/user-settings.php", json_body={"payout_address": addr}, headers=user["headers"])
            assert r.status == 200, r.text
        self.store = store(db, self.vendor, "shop", tier=tier)
        r = client.post("/api/store-settings.php", json_body={"store_uuid": self.store["uuid"],
                                                              "payout_address": self.vendor_addr},
                        headers=self.vendor["headers"])
        assert r.status == 200, r.text
        it = item(db, self.vendor, self.store["uuid"])
        self.package = package(db, self.vendor, it["uuid"], price="100")
        add_token(db, 31337, "ETH", manual_usd_price="2000")


def order_json(client, user, uuid):
    r = client.get("/api/transactions.php?uuid=" + uuid, headers=user["headers"])
    assert r.status == 200, r.text
    return r.json()["transaction"]


def act(client, user, uuid, action, **extra):
    r = client.post("/api/transaction-actions.php", json_body=dict({"transaction_uuid": uuid, "action": action},
                                                                    **extra), headers=user["headers"])
    assert r.status == 200, r.text
    return r.json()


def paid_api_order(anvil, db, client, env, shop):
    r = client.post("/api/transactions.php", json_body={"package_uuid": shop.package["uuid"], "currency": "ETH",
                                                        "chain_id": 31337, "refund_address": shop.refund_addr},
                    headers=shop.buyer["headers"])
    assert r.status == 200, r.text
    body = r.json()
    assert body["escrow_address_pending"] is True and body["required_amount"] == "0.05"
    uuid = body["uuid"]
    assert order_json(client, shop.buyer, uuid).get("escrow_address") in (None, "")
    assert run_cron(env, db)["ok"]
    order = order_json(client, shop.buyer, uuid)
    escrow = order["escrow_address"]
    assert escrow and order["current_status"] == "PENDING"
    required = 5 * 10 ** 16                      # $100 at $2000
    anvil.send_eth(4, escrow, required)
    anvil.mine(3)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert order_json(client, shop.buyer, uuid)["current_status"] == "COMPLETED"
    return uuid, escrow, required


def settle(anvil, db, env, client, user, uuid, final):
    for _ in range(4):
        r = run_cron(env, db)
        assert r["ok"], r["errors"]
        if order_json(client, user, uuid)["current_status"] == final:
            return
        anvil.mine(3)
    raise AssertionError(order_json(client, user, uuid))


def test_api_order_paid_and_released(anvil, db, client, env):
    shop = Shop(db, client)
    uuid, escrow, amount = paid_api_order(anvil, db, client, env, shop)
    result = act(client, shop.buyer, uuid, "release")
    assert result["intent"] == "RELEASE" and result["intent_detail"]["action"] == "RELEASE"
    settle(anvil, db, env, client, shop.buyer, uuid, "RELEASED")
    rows = payout_rows(db, uuid)
    commission = amount // 5
    referrer = commission // 2
    assert anvil.balance(shop.vendor_addr) == amount - commission
    assert anvil.balance(shop.referrer_addr) == referrer
    assert anvil.balance(env["COMMISSION_WALLET_DEV"]) == commission - referrer - fees(rows)
    assert anvil.balance(escrow) == retained(db, uuid)[0] == fees(rows) - paid_fees(rows)
    order = order_json(client, shop.vendor, uuid)
    assert order["current_status"] == "RELEASED"
    assert len(order["payouts"]) == 3


def test_api_order_cancelled_by_vendor_is_refunded(anvil, db, client, env):
    shop = Shop(db, client)
    uuid, escrow, amount = paid_api_order(anvil, db, client, env, shop)
    act(client, shop.vendor, uuid, "cancel")
    settle(anvil, db, env, client, shop.buyer, uuid, "CANCELLED")
    rows = payout_rows(db, uuid)
    assert anvil.balance(shop.refund_addr) == amount - fees(rows)
    assert anvil.balance(shop.vendor_addr) == 0
    assert anvil.balance(escrow) == retained(db, uuid)[0] == fees(rows) - paid_fees(rows)


@pytest.mark.parametrize("percent", [40, 100])
def test_api_dispute_and_partial_refund(anvil, db, client, env, percent):
    shop = Shop(db, client)
    uuid, escrow, amount = paid_api_order(anvil, db, client, env, shop)
    act(client, shop.buyer, uuid, "dispute", comment="arrived broken")
    assert order_json(client, shop.buyer, uuid)["current_status"] == "FROZEN"
    result = act(client, shop.staff, uuid, "partial_refund", refund_percent=str(percent))
    assert result["intent"] == "PARTIAL_REFUND" and result["intent_detail"]["refund_percent"] == percent
    settle(anvil, db, env, client, shop.buyer, uuid, "CANCELLED")
    rows = payout_rows(db, uuid)
    resolver = amount // 10
    buyer = (amount - resolver) * percent // 100
    assert anvil.balance(shop.resolver_addr) == resolver
    assert anvil.balance(shop.refund_addr) == buyer - fees(rows)
    assert anvil.balance(shop.vendor_addr) == amount - resolver - buyer
    assert anvil.balance(escrow) == retained(db, uuid)[0] == fees(rows) - paid_fees(rows)


def test_api_erc20_order_released_with_gas_station_top_up(anvil, db, client, env):
    """An ERC-20 token added unverified is verified by cron on chain, then an order in it is
    created through the API, paid with the token, released by the buyer: the gas station
    tops up exactly the legs' gas and every recipient gets its token share to the unit."""
    from lib import tokens
    from tests.cron_support import wallet
    shop = Shop(db, client)
    token = anvil.deploy_token(symbol="TUSD", decimals=6)
    anvil.mine(3)
    row = tokens.add_token(db, 31337, "TUSD", token, None, "1")
    assert row["status"] == "unverified"
    station = wallet().gas_station_address()
    anvil.send_eth(2, station, ETH)
    assert run_cron(env, db)["ok"]
    row = tokens.get_token(db, row["id"])
    assert row["status"] == "active" and row["decimals"] == 6, row
    r = client.post("/api/transactions.php", json_body={"package_uuid": shop.package["uuid"], "currency": "TUSD",
                                                        "chain_id": 31337, "refund_address": shop.refund_addr},
                    headers=shop.buyer["headers"])
    assert r.status == 200, r.text
    assert r.json()["required_amount"] == "100" and r.json()["currency"] == "TUSD"
    uuid = r.json()["uuid"]
    assert run_cron(env, db)["ok"]
    escrow = order_json(client, shop.buyer, uuid)["escrow_address"]
    amount = 100 * 10 ** 6 + 3                    # a little more than required: all of it is paid out
    anvil.token_transfer(token, 0, escrow, amount)
    anvil.mine(3)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert order_json(client, shop.buyer, uuid)["current_status"] == "COMPLETED"
    assert anvil.balance(escrow) == 0                 # no gas of its own
    station_before = anvil.balance(station)
    act(client, shop.buyer, uuid, "release")
    settle(anvil, db, env, client, shop.buyer, uuid, "RELEASED")
    rows = payout_rows(db, uuid)
    gas = [x for x in rows if x["kind"] == "gas"]
    legs = [x for x in rows if x["kind"] == "payout"]
    assert len(gas) == 1 and gas[0]["from_address"] == station and gas[0]["to_address"] == escrow
    assert sorted(x["recipient_role"] for x in legs) == ["commission", "referrer", "vendor"]
    assert int(gas[0]["amount"]) == sum(int(x["fee"]) for x in legs)     # exactly the legs' gas limits
    commission = amount // 5
    referrer = commission // 2
    assert anvil.token_balance(token, shop.vendor_addr) == amount - commission
    assert anvil.token_balance(token, shop.referrer_addr) == referrer
    assert anvil.token_balance(token, env["COMMISSION_WALLET_DEV"]) == commission - referrer
    assert anvil.token_balance(token, escrow) == 0
    assert station_before - anvil.balance(station) == int(gas[0]["amount"]) + paid_fees(gas)
    # Native coin left in the escrow (README, Fee policy): the part of the reserved gas the
    # network did not charge, recorded as the gas station's, never refunded as the buyer's.
    assert anvil.balance(escrow) == int(gas[0]["amount"]) - paid_fees(legs) == retained(db, uuid)[1]
    order = order_json(client, shop.vendor, uuid)
    assert order["current_status"] == "RELEASED" and len(order["payouts"]) == 4   # the top-up and 3 legs
    ref = db.one("SELECT * FROM referral_payments WHERE transaction_uuid = ?", (uuid,))
    assert ref["referrer_uuid"] == shop.referrer["uuid"] and int(ref["amount"]) == referrer
