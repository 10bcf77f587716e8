"""The CSRF line (SPEC section 4): a state-changing request authenticated by the
session cookie needs its csrf_token only when it carries a browser signal (Origin, Referer,
any Sec-Fetch-* header, or an Accept asking for HTML). The original's MCP plugin logs in
with a password and POSTs with the cookie and nothing else: that passes. The same request
with any one browser signal and no token is 403 and changes nothing. On both databases."""
import pytest

from tests import market
from tests.client import Client
from tests.factories import login

SIGNALS = [{"Origin": "http://testserver"}, {"Origin": "https://evil.example"},
           {"Referer": "http://testserver/marketplace.php"}, {"Sec-Fetch-Site": "cross-site"},
           {"Sec-Fetch-Mode": "navigate"},
           {"Accept": "text/html,application/xhtml+xml"}]


def calls(w):
    """(name, path, body, table counted) for create store, item, order and key."""
    return [("store", "/api/stores.php", {"storename": "newshop", "vendorship_agree": "1"}, "stores"),
            ("item", "/api/items.php", {"name": "gadget", "store_uuid": w.store["uuid"]}, "items"),
            ("order", "/api/transactions.php", {"package_uuid": w.package["uuid"], "currency": "ETH",
                                                "chain_id": "1", "refund_address": market.ADDR_A},
             "transactions"),
            ("key", "/api/keys.php", {"name": "plugin"}, "api_keys")]


def count(db, table):
    return db.value(f"SELECT COUNT(*) FROM {table}")


@pytest.fixture
def w(db):
    return market.world(db)


@pytest.mark.parametrize("name", ["store", "item", "order", "key"])
def test_session_post_without_browser_signals_needs_no_token(db, app, w, name):
    c = Client(app)
    login(c, "buyer1" if name == "order" else "vendor1")
    _, path, body, table = next(x for x in calls(w) if x[0] == name)
    before = count(db, table)
    r = c.post(path, data=body)
    assert r.status == 200, r
    assert r.json()["ok"] is True
    assert count(db, table) == before + 1
    # JSON bodies too (what an SDK sends)
    if name == "key":
        r = c.post(path, json_body={"name": "plugin2"})
        assert r.status == 200 and count(db, table) == before + 2


@pytest.mark.parametrize("name", ["store", "item", "order", "key"])
@pytest.mark.parametrize("signal", SIGNALS, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()))
def test_session_post_with_a_browser_signal_needs_the_token(db, app, w, name, signal):
    c = Client(app)
    token = login(c, "buyer1" if name == "order" else "vendor1")
    _, path, body, table = next(x for x in calls(w) if x[0] == name)
    before = count(db, table)
    r = c.post(path, data=body, headers=signal)
    assert r.status == 403 and "CSRF" in r.text, r
    assert count(db, table) == before
    # the same request with its token passes
    r = c.post(path, data=body, headers=dict(signal, **{"X-CSRF-Token": token}))
    assert r.status in (200, 303), r
    assert count(db, table) == before + 1


def test_a_wrong_token_is_refused_even_without_browser_signals(db, app, w):
    c = Client(app)
    login(c, "vendor1")
    r = c.post("/api/keys.php", data={"name": "k", "csrf_token": "0" * 64})
    assert r.status == 403 and "invalid CSRF" in r.json()["error"]
    r = c.post("/api/keys.php", data={"name": "k"}, headers={"X-CSRF-Token": "0" * 64})
    assert r.status == 403
    assert count(db, "api_keys") == 5  # the world's five users' keys only


def test_api_key_requests_need_no_token_with_browser_signals(db, app, w):
    r = Client(app).post("/api/keys.php", data={"name": "k"},
                         headers=dict(w.vendor["headers"], Origin="https://evil.example"))
    assert r.status == 200
