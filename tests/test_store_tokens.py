"""Test networks pay only with ALLOW_TESTNETS=1, and a store chooses
which of the accepted tokens it takes."""

from lib import env
from tests import market
from tests.client import Client
from tests.factories import login
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

SEPOLIA = 11155111


def buy(client, w, currency="ETH", chain_id="1"):
    return client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"], "currency": currency,
                                                      "chain_id": chain_id, "refund_address": market.ADDR_A},
                       headers=w.buyer["headers"])


def quoted(client, w):
    r = client.get(f"/api/packages.php?item_uuid={w.item['uuid']}")
    assert r.status == 200
    return {(q["chain_id"], q["currency"]) for q in r.json()["packages"][0]["quotes"]}


def test_testnet_coins_do_not_pay_unless_the_operator_allows_them(db, make_client):
    w = market.world(db)
    with env.overriding({"ALLOW_TESTNETS": "1"}):   # added while allowed, then the operator turns it off
        market.add_token(db, SEPOLIA, "ETH")
        market.set_rate(db, SEPOLIA, "ETH", "2000")
    client = make_client({"ALLOW_TESTNETS": None})
    r = buy(client, w, "ETH", str(SEPOLIA))
    assert r.status == 400 and "ALLOW_TESTNETS" in r.json()["error"] and "chain_id" in r.json()["error"], r
    assert (SEPOLIA, "ETH") not in quoted(client, w)
    admin = w.admin
    r = client.post("/admin/tokens.php", data={"chain_id": str(SEPOLIA), "symbol": "USDC",
                                               "contract_address": market.USDC}, headers=admin["headers"])
    assert r.status == 400 and "test network" in r.json()["error"], r
    assert db.value("SELECT COUNT(*) FROM transactions") == 0
    client = make_client({"ALLOW_TESTNETS": "1"})
    assert (SEPOLIA, "ETH") in quoted(client, w)
    r = buy(client, w, "ETH", str(SEPOLIA))
    assert r.status == 200 and r.json()["chain_id"] == SEPOLIA, r


def test_a_store_chooses_its_tokens(db, client):
    w = market.world(db)
    market.add_token(db, 1, "USDC", contract=market.USDC, decimals=6)
    market.set_rate(db, 1, "USDC", "1", contract=market.USDC)
    assert quoted(client, w) == {(1, "ETH"), (1, "USDC")}
    settings = "/api/store-settings.php"
    r = client.post(settings, json_body={"store_uuid": w.store["uuid"], "tokens": ["1:usdc"]},
                    headers=w.vendor["headers"])
    assert r.status == 200 and r.json()["store"]["tokens"] == ["1:USDC"], r
    assert quoted(client, w) == {(1, "USDC")}
    r = buy(client, w, "ETH")
    assert r.status == 400 and "currency" in r.json()["error"] and "does not take ETH" in r.json()["error"], r
    assert buy(client, w, "USDC").status == 200
    # bad choices are 400 naming the field, and change nothing
    for bad in (["1:DAI"], ["x"], [1], {"a": 1}, "8453:ETH", ["1:ETH\x00"]):
        r = client.post(settings, json_body={"store_uuid": w.store["uuid"], "tokens": bad},
                        headers=w.vendor["headers"])
        assert r.status == 400 and "tokens" in r.json()["error"], (bad, r)
    assert db.value("SELECT COUNT(*) FROM store_tokens") == 1
    # only the owner chooses
    r = client.post(settings, data={"store_uuid": w.store["uuid"], "tokens": "all"}, headers=w.buyer["headers"])
    assert r.status in (403, 404), r
    r = client.post(settings, data={"store_uuid": w.store["uuid"], "tokens": "all"}, headers=w.vendor["headers"])
    assert r.status == 200 and r.json()["store"]["tokens"] is None
    assert quoted(client, w) == {(1, "ETH"), (1, "USDC")}


def test_store_settings_page_has_the_token_choice(db, app):
    w = market.world(db)
    market.add_token(db, 1, "USDC", contract=market.USDC, decimals=6)
    browser = Client(app)
    token = login(browser, w.vendor["username"])
    url = f"/settings/store.php?uuid={w.store['uuid']}"
    page = browser.get(url, headers={"Accept": "text/html"})
    assert page.status == 200 and 'id="store-tokens-form"' in page.text and 'name="take:1:USDC"' in page.text
    r = browser.post(url, data={"csrf_token": token, "form": "tokens", "take:1:USDC": "1"},
                     headers={"Accept": "text/html"})
    assert r.status == 303, r
    assert db.query("SELECT chain_id, symbol FROM store_tokens") == [{"chain_id": 1, "symbol": "USDC"}]
    book = browser.get(f"/book.php?package_uuid={w.package['uuid']}", headers={"Accept": "text/html"})
    # the vendor cannot buy from their own store; a buyer sees only USDC offered
    buyer = Client(app)
    login(buyer, w.buyer["username"])
    book = buyer.get(f"/book.php?package_uuid={w.package['uuid']}", headers={"Accept": "text/html"})
    assert book.status == 200 and 'value="1:USDC"' in book.text and 'value="1:ETH"' not in book.text
