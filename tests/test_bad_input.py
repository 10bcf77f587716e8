"""Bad input on every marketplace endpoint: a clear 4xx (never a 500) and nothing written.

Each field of each POST is replaced by values of the wrong type or shape (JSON lists,
objects, booleans, numbers, control characters, huge strings); GET parameters likewise.
"""
import pytest

from tests import market
from tests.client import Client
from tests.factories import login
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)


@pytest.fixture
def settings():
    """These tests add Sepolia tokens: the operator allows test networks."""
    return {"ALLOW_TESTNETS": "1"}


BAD_VALUES = [[], {"a": 1}, True, False, 12345, -1, 1.5, None, "", " ", "\x00", "x" * 20000,
              "0x" + "g" * 40, "'; DROP TABLE users; --", "%", "../../etc"]
TABLES = ("stores", "store_users", "items", "packages", "package_prices", "transactions", "evm_transactions",
          "transaction_statuses", "shipping_statuses", "transaction_intents", "disputes", "dispute_claims",
          "deposits", "deposit_history", "deposit_withdraw_intents", "accepted_tokens", "config", "prices",
          "audit_log")


def snapshot(db):
    rows = {t: db.value(f"SELECT COUNT(*) FROM {t}") for t in TABLES}
    rows["addresses"] = db.query("SELECT refund_address, payout_address FROM users ORDER BY id")
    rows["store"] = db.query("SELECT description, payout_address, suspended FROM stores ORDER BY id")
    rows["config_values"] = db.query("SELECT name, value FROM config ORDER BY name")
    rows["users"] = db.query("SELECT role, banned FROM users ORDER BY id")
    return rows


@pytest.fixture
def setup(db, app):
    w = market.world(db)
    order = market.order(db, w, "COMPLETED")
    disputed = market.order(db, w, "COMPLETED")
    from lib import deposits, orders
    orders.take_action(db, w.buyer, disputed, "dispute")
    dispute = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (disputed,))
    dep = deposits.open_deposit(db, w.vendor, w.store["uuid"], "ETH", "1")
    sessions = {}
    for role in ("vendor", "buyer", "staff", "admin"):
        c = Client(app)
        sessions[role] = (c, login(c, w[role]["username"]))
    return w, sessions, {"order": order, "dispute": dispute, "deposit": dep["uuid"]}


def cases(w, ids):
    """(role, path, valid body) of every POST endpoint of this issue."""
    return [
        ("buyer", "/api/stores.php", {"storename": "newshop", "description": "d", "vendorship_agree": "1"}),
        ("vendor", "/api/items.php", {"store_uuid": w.store["uuid"], "name": "n", "description": "d",
                                      "category_id": None}),
        ("vendor", "/api/packages.php", {"item_uuid": w.item["uuid"], "name": "n", "description": "d",
                                         "price_usd": "5"}),
        ("buyer", "/api/transactions.php", {"package_uuid": w.package["uuid"], "currency": "ETH", "chain_id": "1",
                                            "refund_address": market.ADDR_C}),
        ("vendor", "/api/transaction-actions.php", {"transaction_uuid": ids["order"], "action": "dispatch",
                                                    "comment": "c"}),
        ("staff", "/api/transaction-actions.php", {"transaction_uuid": ids["order"], "action": "partial_refund",
                                                   "refund_percent": "50"}),
        ("buyer", "/api/disputes.php", {"dispute_uuid": ids["dispute"], "claim": "c"}),
        ("staff", "/api/disputes.php", {"dispute_uuid": ids["dispute"], "resolution": "partial_refund",
                                        "refund_percent": "50", "comment": "c"}),
        ("vendor", "/api/deposits.php", {"store_uuid": w.store["uuid"], "currency": "ETH", "chain_id": "137"}),
        ("vendor", "/api/deposit-withdraw.php", {"deposit_uuid": ids["deposit"]}),
        ("vendor", "/api/store-settings.php", {"store_uuid": w.store["uuid"], "description": "d",
                                               "payout_address": market.ADDR_C}),
        ("buyer", "/api/user-settings.php", {"refund_address": market.ADDR_C, "payout_address": market.ADDR_D}),
        ("admin", "/admin/tokens.php", {"chain_id": "8453", "symbol": "ETH", "contract_address": "",
                                        "decimals": None, "manual_usd_price": None}),
        ("admin", "/admin/tokens-remove.php", {"id": "999999"}),
        ("admin", "/admin/config.php", {"price_max_age": "20m"}),
    ]


def test_wrong_types_and_shapes_never_500_and_write_nothing(db, setup):
    w, sessions, ids = setup
    problems = []
    for role, path, valid in cases(w, ids):
        client, token = sessions[role]
        for field in valid:
            for bad in BAD_VALUES:
                body = dict(valid, csrf_token=token)
                body[field] = bad
                if bad is None:
                    del body[field]
                before = snapshot(db)
                r = client.post(path, json_body=body)
                if r.status >= 500:
                    problems.append(f"{path} {field}={bad!r:.40}: {r.status} {r.text[:100]}")
                elif r.status >= 400:
                    if "error" not in r.json():
                        problems.append(f"{path} {field}={bad!r:.40}: no error message")
                    if snapshot(db) != before:
                        problems.append(f"{path} {field}={bad!r:.40}: {r.status} but something was written")
    assert not problems, "\n".join(problems)


def test_bad_query_parameters_never_500(db, setup):
    w, sessions, ids = setup
    client, _ = sessions["staff"]
    paths = ["/api/stores.php?uuid=", "/api/stores.php?mine=", "/api/items.php?uuid=", "/api/items.php?q=",
             "/api/items.php?store_uuid=", "/api/items.php?category_id=", "/api/packages.php?item_uuid=",
             "/api/transactions.php?uuid=", "/api/transactions.php?scope=", "/api/disputes.php?uuid=",
             "/api/disputes.php?status=", "/api/deposits.php?uuid=", "/api/deposits.php?store_uuid=",
             "/api/transactions.php?limit=", "/api/transactions.php?offset="]
    values = ["%00", "x" * 5000, "-1", "1e9", "%27%20OR%201=1", "%F0%9F%92%A9", "99999999999999999999999"]
    problems = []
    for path in paths:
        for value in values:
            r = client.get(path + value)
            if r.status >= 500 or r.header("Content-Type") != "application/json":
                problems.append(f"{path}{value[:20]}: {r.status}")
    assert not problems, "\n".join(problems)


def issue_cases(w, ids):
    """The bad inputs the issue names, one or more per kind: (kind, role, path, body, status, words)."""
    order, dispute = ids["order"], ids["dispute"]
    pkg, item, store = w.package["uuid"], w.item["uuid"], w.store["uuid"]
    zero = "00000000-0000-0000-0000-000000000000"
    return [
        ("unknown package", "buyer", "/api/transactions.php", {"package_uuid": zero}, 404, "no such package"),
        ("unknown token", "buyer", "/api/transactions.php", {"package_uuid": pkg, "currency": "DOGE"}, 400,
         "DOGE is not accepted on chain 1"),
        ("unknown token", "vendor", "/api/deposits.php", {"store_uuid": store, "currency": "DOGE"}, 400,
         "DOGE is not accepted"),
        ("unknown token", "admin", "/admin/tokens-remove.php", {"id": "999999"}, 404, "no accepted token"),
        ("wrong chain", "buyer", "/api/transactions.php", {"package_uuid": pkg, "chain_id": "5"}, 400,
         "unsupported chain 5"),
        ("wrong chain", "buyer", "/api/transactions.php", {"package_uuid": pkg, "chain_id": "137"}, 400,
         "ETH is not accepted on chain 137"),
        ("wrong chain", "vendor", "/api/deposits.php", {"store_uuid": store, "chain_id": "56"}, 400,
         "unsupported chain 56"),
        ("wrong chain", "admin", "/admin/tokens.php", {"chain_id": "5", "symbol": "ETH"}, 400, "unsupported chain"),
        ("bad checksum", "buyer", "/api/transactions.php", {"package_uuid": pkg,
                                                            "refund_address": market.BAD_CHECKSUM}, 400, "checksum"),
        ("bad checksum", "vendor", "/api/store-settings.php", {"store_uuid": store,
                                                               "payout_address": market.NO_CHECKSUM}, 400, "checksum"),
        ("bad checksum", "buyer", "/api/user-settings.php", {"refund_address": market.BAD_CHECKSUM}, 400,
         "checksum"),
        ("bad checksum", "admin", "/admin/tokens.php", {"chain_id": "1", "symbol": "USDC",
                                                        "contract_address": market.BAD_CHECKSUM}, 400, "checksum"),
        ("non-numeric percent", "staff", "/api/transaction-actions.php",
         {"transaction_uuid": order, "action": "partial_refund", "refund_percent": "half"}, 400, "refund_percent"),
        ("non-numeric percent", "staff", "/api/disputes.php",
         {"dispute_uuid": dispute, "resolution": "partial_refund", "refund_percent": "12.5"}, 400, "refund_percent"),
        ("out-of-range percent", "staff", "/api/disputes.php",
         {"dispute_uuid": dispute, "resolution": "partial_refund", "refund_percent": "101"}, 400, "between 1 and 100"),
        ("out-of-range percent", "staff", "/api/disputes.php",
         {"dispute_uuid": dispute, "resolution": "partial_refund", "refund_percent": "0"}, 400, "between 1 and 100"),
        ("negative price", "vendor", "/api/packages.php", {"item_uuid": item, "name": "p", "price_usd": "-5"}, 400,
         "price_usd"),
        ("absurd price", "vendor", "/api/packages.php", {"item_uuid": item, "name": "p", "price_usd": "1e309"},
         400, "price_usd"),
        ("absurd price", "vendor", "/api/packages.php",
         {"item_uuid": item, "name": "p", "price_usd": "1000000000000"}, 400, "price_usd"),
        ("negative price", "admin", "/admin/tokens.php", {"chain_id": "11155111", "symbol": "ETH",
                                                          "manual_usd_price": "-2000"}, 400, "manual_usd_price"),
        ("absurd price", "admin", "/admin/tokens.php", {"chain_id": "11155111", "symbol": "ETH",
                                                        "manual_usd_price": "9" * 30}, 400, "manual_usd_price"),
        ("overlong name", "buyer", "/api/stores.php", {"storename": "s" * 17, "vendorship_agree": "1"}, 400,
         "storename"),
        ("overlong name", "vendor", "/api/items.php", {"store_uuid": store, "name": "n" * 65}, 400,
         "name is longer than 64"),
        ("overlong name", "vendor", "/api/packages.php", {"item_uuid": item, "name": "n" * 65, "price_usd": "5"},
         400, "name is longer than 64"),
        ("overlong name", "admin", "/admin/tokens.php", {"chain_id": "1", "symbol": "T" * 17,
                                                         "contract_address": market.DAI}, 400, "symbol"),
        ("duplicate store name", "buyer", "/api/stores.php", {"storename": "SHOP", "vendorship_agree": "1"}, 409,
         "the store name SHOP is taken"),
    ]


def test_the_issues_bad_inputs_are_clear_4xx_and_write_nothing(db, setup):
    """Unknown package or token, wrong chain, bad checksum, non-numeric or out-of-range
    percent, negative or absurd prices, overlong names, duplicate store names."""
    w, sessions, ids = setup
    problems = []
    for kind, role, path, body, status, words in issue_cases(w, ids):
        before = snapshot(db)
        r = sessions[role][0].post(path, data=dict(body, csrf_token=sessions[role][1]))
        error = r.json().get("error", "") if r.header("Content-Type") == "application/json" else ""
        if r.status != status or words not in error:
            problems.append(f"{kind}: {path} {body}: {r.status} {r.text[:160]} (expected {status}, {words!r})")
        if snapshot(db) != before:
            problems.append(f"{kind}: {path} {body}: something was written")
    assert not problems, "\n".join(problems)
