"""Inputs that used to give a 500 now get a clear 4xx and change nothing."""
import json

import pytest

from tests import market
from tests.client import Client
from tests.factories import login, make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)


def post_json(client, path, text, headers=None):
    return client.request("POST", path, body=text.encode("utf-8"), content_type="application/json",
                          headers=headers)


def count(db, table):
    return db.value(f"SELECT COUNT(*) FROM {table}")


@pytest.mark.parametrize("path", ["/api/stores.php", "/login.php", "/register.php", "/api/keys.php"])
def test_deeply_nested_json_is_400(db, client, path):
    user = make_user(db, "alice")
    deep = '{"a": ' * 100000 + "1" + "}" * 100000
    r = post_json(client, path, deep, headers=user["headers"])
    assert r.status == 400, r
    assert "nested" in r.text
    medium = '{"name": ' + "[" * 40 + "]" * 40 + "}"
    r = post_json(client, path, medium, headers=user["headers"])
    assert r.status == 400 and "nested" in r.text, r


def test_deep_json_is_refused_before_parsing_even_with_a_high_recursion_limit(db, client):
    """The C JSON parser would overflow the C stack (a crash) under a raised limit."""
    import sys
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        r = post_json(client, "/login.php", '{"username": ' + "[" * 500000 + "]" * 500000 + "}")
    finally:
        sys.setrecursionlimit(old)
    assert r.status == 400 and "nested" in r.text
    from lib.http import json_depth
    # brackets inside strings do not count; the deepest point is the trailing run of 40
    assert json_depth('{"a": "[[[[" , "b": [[1]]}' + " " * 40 + "[" * 40) == 40
    assert json_depth("[" * 20 + '"]]]"' + "{" * 20) == 40


def test_lone_surrogates_are_400_naming_the_field(db, client):
    user = make_user(db, "alice")
    keys = count(db, "api_keys")
    r = post_json(client, "/api/keys.php", '{"name": "x\\ud800"}', headers=user["headers"])
    assert r.status == 400 and "name" in r.json()["error"], r
    assert count(db, "api_keys") == keys
    r = post_json(client, "/login.php", '{"username": "alice", "password": "\\udfff1234567"}')
    assert r.status == 400 and "password" in r.text, r
    r = post_json(client, "/register.php", '{"username": "bob", "password": "pass\\ud800word"}')
    assert r.status == 400 and "password" in r.text, r
    assert count(db, "users") == 1
    w = market.world(db)
    r = post_json(client, "/api/transactions.php", json.dumps(
        {"package_uuid": w.package["uuid"], "currency": "ETH", "refund_address": market.ADDR_A})
        .replace('"ETH"', '"E\\ud800"'), headers=w.buyer["headers"])
    assert r.status == 400 and "currency" in r.json()["error"], r
    # A form page that re-shows the body (settings) gets the same 400.
    browser = Client(client.app)
    token = login(browser, "alice")
    r = browser.request("POST", "/settings/user.php", body=json.dumps(
        {"csrf_token": token, "refund_address": "x"}).replace('"x"', '"\\ud800"').encode(),
        content_type="application/json", headers={"Accept": "text/html"})
    assert r.status == 400, r
    assert count(db, "transactions") == 0


@pytest.mark.parametrize("origin", ["http://[::1", "http://[zz]/", "https://[::1]:99999999/"])
def test_malformed_origin_on_login_and_register_is_403(db, client, origin):
    make_user(db, "alice")
    for path, data in (("/login.php", {"username": "alice", "password": "password123"}),
                       ("/register.php", {"username": "bob", "password": "password123"})):
        r = client.post(path, data=data, headers={"Origin": origin})
        assert r.status == 403, r
        r = client.post(path, data=data, headers={"Referer": origin})
        assert r.status == 403, r
    assert count(db, "users") == 1


@pytest.mark.parametrize("digits", ["\u00b9", "\u0661", "\uff11", "\u00b2", "1\u0662"])
def test_unicode_digits_are_not_ids(db, client, digits):
    admin = make_user(db, "root", role="admin")
    market.add_token(db, 1, "ETH")
    tokens = count(db, "accepted_tokens")
    r = client.post("/admin/tokens-remove.php", data={"id": digits}, headers=admin["headers"])
    assert r.status == 400 and "id" in r.json()["error"], r
    assert count(db, "accepted_tokens") == tokens
    r = client.post("/api/keys-revoke.php", data={"id": digits}, headers=admin["headers"])
    assert r.status == 400 and "id" in r.json()["error"], r
    r = client.post("/admin/tokens.php", data={"chain_id": "1", "symbol": "USDC", "contract_address": market.USDC,
                                               "decimals": digits}, headers=admin["headers"])
    assert r.status == 400 and "decimals" in r.json()["error"], r
    r = client.get(f"/api/stores.php?limit={digits}")
    assert r.status == 400 and "limit" in r.json()["error"], r
    assert count(db, "accepted_tokens") == tokens


@pytest.mark.parametrize("big", [str(2 ** 63), str(2 ** 64 + 1), "9" * 19, "9" * 40])
def test_ids_beyond_64_bits_are_400(db, client, big):
    admin = make_user(db, "root", role="admin")
    r = client.post("/admin/tokens-remove.php", data={"id": big}, headers=admin["headers"])
    assert r.status == 400, r
    r = client.post("/api/keys-revoke.php", data={"id": big}, headers=admin["headers"])
    assert r.status == 400, r
    r = client.get(f"/api/stores.php?offset={big}")
    assert r.status == 400, r
    r = client.post("/admin/tokens-remove.php", json_body={"id": 2 ** 70}, headers=admin["headers"])
    assert r.status == 400, r
    r = client.post("/admin/tokens-remove.php", json_body={"id": str(2 ** 63 - 1)}, headers=admin["headers"])
    assert r.status == 404, r


def test_nul_byte_in_a_static_path_is_404(db, client):
    for path in ("/static/style.css%00", "/static/%00", "/static/a%00b/c.css", "/x%00.php"):
        r = client.get(path)
        assert r.status == 404, (path, r)


def test_login_redirect_drops_a_long_next(db, client):
    long_query = "q=" + "a" * 5000
    r = client.get("/payments.php?" + long_query, headers={"Accept": "text/html"})
    assert r.status == 303
    assert r.header("Location") == "/login.php", r.header("Location")[:100]
    r = client.get("/payments.php?q=short", headers={"Accept": "text/html"})
    assert r.header("Location") == "/login.php?next=%2Fpayments.php%3Fq%3Dshort"


def test_dev_server_log_line_is_redacted_and_escaped():
    import wsgi
    line = wsgi.loggable('"GET /api/x.php?a=1&token=' + "ab" * 32 + '&b=2 HTTP/1.1" 200 5 \x00\x1b[31m')
    assert "ab" * 32 not in line and "?a=1&token=REDACTED HTTP/1.1" in line
    assert "\x00" not in line and "\x1b" not in line and "\\x00" in line


def test_only_a_literal_token_parameter_is_a_key(db, client):
    user = make_user(db, "alice")
    r = client.get(f"/api/auth-user.php?token={user['api_key']}")
    assert r.status == 200 and r.json()["username"] == "alice"
    # Percent-encoding the name would slip past the logs' redaction: not a key.
    r = client.get(f"/api/auth-user.php?%74oken={user['api_key']}")
    assert r.status == 401, r


# -- point 6: addresses ------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["\x1f", "\x1f\x1f", "\x1c" + market.ADDR_B, market.ADDR_B + "\x1e",
                                 "\x0b", "\x85", "0x" + "0" * 40])
def test_address_fields_refuse_control_characters_and_the_zero_address(db, client, bad):
    w = market.world(db)
    from lib import users
    users.set_addresses(db, w.buyer["uuid"], refund_address=market.ADDR_A, payout_address=market.ADDR_A)
    for field in ("refund_address", "payout_address"):
        r = client.post("/api/user-settings.php", data={field: bad}, headers=w.buyer["headers"])
        assert r.status == 400 and field in r.json()["error"], (field, r)
        r = client.post("/api/user-settings.php", json_body={field: bad}, headers=w.buyer["headers"])
        assert r.status == 400 and field in r.json()["error"], (field, r)
    row = db.one("SELECT refund_address, payout_address FROM users WHERE uuid = ?", (w.buyer["uuid"],))
    assert row == {"refund_address": market.ADDR_A, "payout_address": market.ADDR_A}
    db.execute("UPDATE stores SET payout_address = ? WHERE uuid = ?", (market.ADDR_A, w.store["uuid"]))
    r = client.post("/api/store-settings.php", data={"store_uuid": w.store["uuid"], "payout_address": bad},
                    headers=w.vendor["headers"])
    assert r.status == 400 and "payout_address" in r.json()["error"], r
    assert db.value("SELECT payout_address FROM stores WHERE uuid = ?", (w.store["uuid"],)) == market.ADDR_A
    r = client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"], "refund_address": bad},
                    headers=w.buyer["headers"])
    assert r.status == 400 and "refund_address" in r.json()["error"], r
    assert count(db, "transactions") == 0


def test_an_empty_address_still_clears_it(db, client):
    w = market.world(db)
    r = client.post("/api/user-settings.php", data={"payout_address": market.ADDR_A}, headers=w.buyer["headers"])
    assert r.status == 200 and r.json()["payout_address"] == market.ADDR_A
    r = client.post("/api/user-settings.php", data={"payout_address": ""}, headers=w.buyer["headers"])
    assert r.status == 200 and r.json()["payout_address"] is None


# -- point 8: logout from a browser, sign out everywhere, the dev server's backlog ----------

@pytest.mark.parametrize("headers", [
    {"Accept": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"},
    {"Sec-Fetch-Dest": "image", "Accept": "*/*"},
    {"Referer": "http://testserver/item.php"},
    {"Accept": "text/html"},
])
def test_a_browser_get_does_not_log_out(db, client, headers):
    make_user(db, "alice")
    login(client, "alice")
    r = client.get("/logout.php", headers=headers)
    assert r.status == 200 and "logout-everywhere-form" in r.text
    assert count(db, "sessions") == 1
    assert client.get("/api/auth-user.php").status == 200
    # an API client without browser signals keeps the original's GET
    r = client.get("/logout.php")
    assert r.status == 200 and r.text == "Logged out" and count(db, "sessions") == 0


def test_sign_out_everywhere_ends_sessions_and_revokes_keys(db, app):
    user = make_user(db, "alice")
    phone, laptop = Client(app), Client(app)
    login(phone, "alice")
    token = login(laptop, "alice")
    assert count(db, "sessions") == 2
    r = laptop.post("/logout.php", data={"everywhere": "1"}, headers={"Origin": "http://testserver"})
    assert r.status == 403  # a browser's session request still needs its CSRF token
    r = laptop.post("/logout.php", data={"everywhere": "1", "csrf_token": token})
    assert r.status == 200 and "1 API keys revoked" in r.text, r
    assert count(db, "sessions") == 0
    assert phone.get("/api/auth-user.php").status == 401
    assert Client(app).get("/api/auth-user.php", headers=user["headers"]).status == 401
    # by API key, too
    from lib import api_keys
    key, _row = api_keys.create_key(db, user["uuid"], "cli")
    r = Client(app).post("/logout.php", data={"everywhere": "1"}, headers={"X-API-Key": key})
    assert r.status == 200 and "1 API keys revoked" in r.text
    assert Client(app).get("/api/auth-user.php", headers={"X-API-Key": key}).status == 401
    assert Client(app).post("/logout.php", data={"everywhere": "yes"}).status == 400


def test_settings_page_offers_sign_out_everywhere(db, client):
    make_user(db, "alice")
    login(client, "alice")
    r = client.get("/settings/user.php", headers={"Accept": "text/html"})
    assert r.status == 200 and 'id="logout-everywhere-form"' in r.text and 'name="everywhere"' in r.text


def test_dev_server_listen_backlog_takes_many_clients(tmp_path):
    """60 clients connecting at once to `python wsgi.py` are all answered (backlog 5 reset them)."""
    import os
    import shutil
    import socket
    import subprocess
    import sys
    import time
    from tests.concurrency import at_once, get
    from tests.conftest import ROOT, free_port
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PORT": str(port), "DB_DSN": f"sqlite:{tmp_path}/x.sqlite",
           "ENV_FILE": str(tmp_path / "none.env"), "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        results = at_once(60, lambda i: get(f"http://127.0.0.1:{port}/", timeout=30))
        assert results.count(200) == 60, results
        # the listening socket's backlog (ss shows it as Send-Q) is far above 5
        if shutil.which("ss"):
            out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
            assert int(out.split()[2]) >= 128, out
    finally:
        proc.kill()
        proc.wait()
