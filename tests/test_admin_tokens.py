"""/admin/tokens.php, /admin/tokens-remove.php, /admin/config.php."""
import pytest

from lib import config
from tests import market
from tests.factories import make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)


@pytest.fixture
def settings():
    """These tests add Sepolia tokens: the operator allows test networks."""
    return {"ALLOW_TESTNETS": "1"}


@pytest.fixture
def admin(db):
    return make_user(db, "root", role="admin")


def count(db):
    return db.value("SELECT COUNT(*) FROM accepted_tokens")


def test_add_list_and_remove_tokens(db, client, admin):
    r = client.post("/admin/tokens.php", data={"chain_id": "1", "symbol": "ETH", "contract_address": ""},
                    headers=admin["headers"])
    assert r.status == 200, r
    eth = r.json()["token"]
    assert (eth["chain_id"], eth["symbol"], eth["contract_address"], eth["decimals"], eth["status"]) == \
        (1, "ETH", "", 18, "unverified")
    r = client.post("/admin/tokens.php", json_body={"chain_id": 1, "symbol": "USDC",
                                                    "contract_address": market.USDC}, headers=admin["headers"])
    assert r.status == 200 and r.json()["token"]["decimals"] is None      # cron reads decimals()
    r = client.post("/admin/tokens.php", data={"chain_id": "11155111", "symbol": "ETH",
                                               "manual_usd_price": "2500.50"}, headers=admin["headers"])
    assert r.status == 200 and r.json()["token"]["manual_usd_price"] == "2500.5"
    r = client.post("/admin/tokens.php", data={"chain_id": "137", "symbol": "POL"}, headers=admin["headers"])
    assert r.status == 200 and r.json()["token"]["symbol"] == "POL"
    tokens = client.get("/admin/tokens.php", headers=admin["headers"]).json()["tokens"]
    assert [(t["chain_id"], t["symbol"]) for t in tokens] == [(1, "ETH"), (1, "USDC"), (137, "POL"),
                                                              (11155111, "ETH")]
    assert set(tokens[0]) >= {"id", "chain_id", "symbol", "contract_address", "decimals", "status",
                              "manual_usd_price"}
    r = client.post("/admin/tokens-remove.php", data={"id": str(eth["id"])}, headers=admin["headers"])
    assert r.status == 200 and r.json() == {"ok": True, "id": eth["id"]}
    assert count(db) == 3
    assert client.post("/admin/tokens-remove.php", data={"id": str(eth["id"])}, headers=admin["headers"]).status == 404
    assert client.post("/admin/tokens-remove.php", data={"id": "x"}, headers=admin["headers"]).status == 400
    assert client.post("/admin/tokens-remove.php", data={}, headers=admin["headers"]).status == 400
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action IN ('token_added', 'token_removed')") == 5


@pytest.mark.parametrize("data, status, text", [
    ({"chain_id": "5", "symbol": "ETH"}, 400, "unsupported chain"),
    ({"chain_id": "31337", "symbol": "ETH"}, 400, "unsupported chain"),       # ALLOW_DEV_CHAIN is off
    ({"chain_id": "abc", "symbol": "ETH"}, 400, "chain_id"),
    ({"chain_id": "1", "symbol": ""}, 400, "symbol"),
    ({"chain_id": "1", "symbol": "A" * 17}, 400, "symbol"),
    ({"chain_id": "1", "symbol": "<b>"}, 400, "symbol"),
    ({"chain_id": "1", "symbol": "DOGE"}, 400, "native coin"),                # no contract: must be ETH
    ({"chain_id": "1", "symbol": "USDC", "contract_address": market.BAD_CHECKSUM}, 400, "checksum"),
    ({"chain_id": "1", "symbol": "USDC", "contract_address": market.NO_CHECKSUM}, 400, "checksum"),
    ({"chain_id": "1", "symbol": "USDC", "contract_address": "0x123"}, 400, "contract_address"),
    ({"chain_id": "1", "symbol": "USDC", "contract_address": market.USDC, "decimals": "99"}, 400, "decimals"),
    ({"chain_id": "1", "symbol": "ETH", "manual_usd_price": "2000"}, 400, "test networks"),
    ({"chain_id": "11155111", "symbol": "ETH", "manual_usd_price": "-1"}, 400, "manual_usd_price"),
    ({"chain_id": "11155111", "symbol": "ETH", "manual_usd_price": "abc"}, 400, "manual_usd_price"),
    ({"chain_id": "11155111", "symbol": "ETH", "manual_usd_price": "1" * 20}, 400, "manual_usd_price"),
])
def test_add_token_bad_input(db, make_client, admin, data, status, text):
    r = make_client({"ALLOW_DEV_CHAIN": "0"}).post("/admin/tokens.php", data=data, headers=admin["headers"])
    assert r.status == status, r
    assert text in r.json()["error"]
    assert count(db) == 0


def test_dev_chain_token_when_allowed(db, make_client, admin):
    r = make_client({"ALLOW_DEV_CHAIN": "1"}).post("/admin/tokens.php", data={"chain_id": "31337", "symbol": "ETH", "manual_usd_price": "1"},
                    headers=admin["headers"])
    assert r.status == 200


def test_duplicate_tokens_are_409(db, client, admin):
    h = admin["headers"]
    assert client.post("/admin/tokens.php", data={"chain_id": "1", "symbol": "ETH"}, headers=h).status == 200
    assert client.post("/admin/tokens.php", data={"chain_id": "1", "symbol": "eth"}, headers=h).status == 409
    assert client.post("/admin/tokens.php", data={"chain_id": "1", "symbol": "USDC",
                                                  "contract_address": market.USDC}, headers=h).status == 200
    r = client.post("/admin/tokens.php", data={"chain_id": "1", "symbol": "USDC2",
                                               "contract_address": market.USDC}, headers=h)
    assert r.status == 409
    r = client.post("/admin/tokens.php", data={"chain_id": "1", "symbol": "usdc",
                                               "contract_address": market.DAI}, headers=h)
    assert r.status == 409
    # the same contract on another chain is another token
    assert client.post("/admin/tokens.php", data={"chain_id": "8453", "symbol": "USDC",
                                                  "contract_address": market.USDC}, headers=h).status == 200
    assert count(db) == 3


@pytest.mark.parametrize("path", ["/admin/tokens.php", "/admin/config.php"])
def test_admin_only(db, client, path):
    staff = make_user(db, "staffer", role="staff")
    vendor = make_user(db, "vend", role="vendor")
    assert client.get(path).status == 401
    assert client.get(path, headers=staff["headers"]).status == 403
    assert client.post(path, data={"chain_id": "1", "symbol": "ETH", "price_max_age": "1h"},
                       headers=vendor["headers"]).status == 403
    assert client.post("/admin/tokens-remove.php", data={"id": "1"}, headers=staff["headers"]).status == 403
    assert count(db) == 0 and db.value("SELECT COUNT(*) FROM config") == 0


def test_config_get_and_set(db, client, admin):
    body = client.get("/admin/config.php", headers=admin["headers"]).json()
    assert body["config"]["price_max_age"] == "15m" and len(body["keys"]) == len(config.KEYS)
    assert body["keys"][0] == {"name": "pending_duration", "value": "24h", "default": "24h", "kind": "duration",
                               "description": config.KEYS["pending_duration"][2]}
    r = client.post("/admin/config.php", data={"price_max_age": "30m", "gold_account_commission": "0.015"},
                    headers=admin["headers"])
    assert r.status == 200, r
    assert r.json()["changed"] == {"price_max_age": "30m", "gold_account_commission": "0.015"}
    assert config.raw(db, "price_max_age") == "30m" and str(config.commission(db, "gold")) == "0.015"
    r = client.post("/admin/config.php", json_body={"required_confirmations": 5}, headers=admin["headers"])
    assert r.status == 200 and config.count(db, "required_confirmations") == 5


@pytest.mark.parametrize("data, name", [
    ({"no_such_key": "1"}, "no_such_key"),
    ({"price_max_age": "15"}, "price_max_age"),
    ({"price_max_age": "0m"}, "price_max_age"),
    ({"completion_tolerance": "1.5"}, "completion_tolerance"),
    ({"completion_tolerance": "-0.1"}, "completion_tolerance"),
    ({"gold_account_commission": "abc"}, "gold_account_commission"),
    ({"required_confirmations": "-1"}, "required_confirmations"),
    ({"price_max_age": "1h", "stuck_duration": "forever"}, "stuck_duration"),   # all or nothing
])
def test_config_bad_values_name_the_key(db, client, admin, data, name):
    config.set_values(db, {"price_max_age": "30m", "stuck_duration": "100h"})
    before = db.query("SELECT name, value, updated_at FROM config ORDER BY name")
    r = client.post("/admin/config.php", data=data, headers=admin["headers"])
    assert r.status == 400 and name in r.json()["error"]
    assert db.query("SELECT name, value, updated_at FROM config ORDER BY name") == before
    assert config.raw(db, "price_max_age") == "30m"
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'config_changed'") == 0


def test_config_empty_post(db, client, admin):
    r = client.post("/admin/config.php", data={}, headers=admin["headers"])
    assert r.status == 400 and "price_max_age" in r.json()["error"]
    r = client.post("/admin/config.php", json_body={"price_max_age": ["1h"]}, headers=admin["headers"])
    assert r.status == 400
