"""The HTML forms end to end, in-process on SQLite and MariaDB: each POST changes what
it should (rows checked), re-shows the form with the error and its status when the
input is bad (changing nothing), and redirects with a flash message when it worked."""
import re

import pytest

from lib import catalog, orders, payment_uri, status_machine as sm, tokens, users
from lib.templates import escape
from tests.chain import fresh_address
from tests.client import Client
from tests.factories import login
from tests.test_pages import HTML, paid_order
from tests.ui_data import make_shop


@pytest.fixture
def settings():
    return {"ALLOW_DEV_CHAIN": "1"}


@pytest.fixture
def shop(db):
    return make_shop(db)


def as_user(app, username):
    c = Client(app)
    return c, login(c, username)


def post(c, csrf, path, **fields):
    return c.post(path, data=dict(fields, csrf_token=csrf), headers=HTML)


def follow(c, r):
    assert r.status == 303, r
    return c.get(r.header("Location"), headers=HTML)


def flash_of(page):
    m = re.search(r'<p class="flash" role="status">(.*?)</p>', page.text)
    return m.group(1) if m else None


# -- buyer ------------------------------------------------------------------------

def test_checkout_creates_the_order_and_shows_its_payment_page(db, app, shop):
    c, token = as_user(app, "buyer1")
    refund = fresh_address()
    path = "/book.php?package_uuid=" + shop["package"]["uuid"]
    r = post(c, token, path, token="31337:ETH", refund_address=refund.lower())
    assert r.status == 400 and 'id="refund_address-error"' in r.text
    assert db.value("SELECT COUNT(*) FROM transactions") == 0
    r = post(c, token, path, token="31337:DOGE", refund_address=refund)
    assert r.status == 400 and 'id="token-error"' in r.text and "not accepted" in r.text
    r = post(c, token, path, token="31337:ETH", refund_address=refund)
    assert r.status == 303
    uuid = r.header("Location").split("uuid=")[1]
    row = db.one("SELECT t.buyer_uuid, e.refund_address, e.required_amount, e.chain_id FROM transactions t "
                 "JOIN evm_transactions e ON e.transaction_uuid = t.uuid WHERE t.uuid = ?", (uuid,))
    assert row == {"buyer_uuid": shop["buyer"]["uuid"], "refund_address": refund,
                   "required_amount": str(10 ** 16), "chain_id": 31337}
    page = c.get(r.header("Location"), headers=HTML)
    assert flash_of(page) == "Order placed: pay 0.01 ETH to the escrow address below."
    assert 'id="escrow-pending"' in page.text and 'data-refresh="15"' in page.text
    assert "/static/refresh.js" in page.text
    assert flash_of(c.get(r.header("Location"), headers=HTML)) is None  # shown once


def test_checkout_refuses_a_stale_price_with_409(db, app, shop):
    db.execute("UPDATE accepted_tokens SET manual_usd_price = NULL")
    c, token = as_user(app, "buyer1")
    page = c.get("/book.php?package_uuid=" + shop["package"]["uuid"], headers=HTML)
    assert page.status == 200 and "no USD rate" in page.text
    r = post(c, token, "/book.php?package_uuid=" + shop["package"]["uuid"], token="31337:ETH")
    assert r.status == 409 and "no USD rate" in r.text
    assert db.value("SELECT COUNT(*) FROM transactions") == 0


def test_payment_page_shows_escrow_qr_and_eip681_uri(db, app, shop):
    order = orders.create_order(db, shop["buyer"], shop["package"]["uuid"], "ETH", 31337)["uuid"]
    escrow = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    db.execute("UPDATE evm_transactions SET escrow_address = ?, derivation_index = 7, received_amount = ? "
               "WHERE transaction_uuid = ?", (escrow, str(4 * 10 ** 15), order))
    sm.append_status(db, order, sm.PENDING, str(4 * 10 ** 15), "partial payment")
    c, _ = as_user(app, "buyer1")
    page = c.get("/payment.php?uuid=" + order, headers=HTML)
    assert f'<p class="address" id="escrow-address">{escrow}</p>' in page.text
    uri = f"ethereum:{escrow}@31337?value={6 * 10 ** 15}"  # what is still due
    assert f'href="{uri}"' in page.text and f'<a href="{uri}" id="pay-uri" class="mono">{uri}</a>' in page.text
    # The QR code is exactly segno's code of that URI (so a wallet scanning it reads the URI).
    assert qr_src(page.text) == payment_uri.qr_data_uri(uri)
    assert "0.004 ETH received; the code asks for the remaining 0.006." in page.text
    # The vendor sees the order but gets no QR code to pay it.
    v, _ = as_user(app, "vendor1")
    vpage = v.get("/payment.php?uuid=" + order, headers=HTML)
    assert vpage.status == 200 and escrow in vpage.text and 'id="payment-qr"' not in vpage.text


def test_payment_page_token_order_uses_transfer_uri(db, app, shop):
    usdc = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
    token = tokens.add_token(db, 31337, "TUSD", usdc, decimals="6", manual_usd_price="1")
    tokens.set_status(db, token["id"], "active")
    order = orders.create_order(db, shop["buyer"], shop["package"]["uuid"], "TUSD", 31337)["uuid"]
    escrow = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    db.execute("UPDATE evm_transactions SET escrow_address = ?, derivation_index = 8 WHERE transaction_uuid = ?",
               (escrow, order))
    c, _ = as_user(app, "buyer1")
    page = c.get("/payment.php?uuid=" + order, headers=HTML)
    assert f'href="ethereum:{usdc}@31337/transfer?address={escrow}&amp;uint256=20000000"' in page.text
    assert "20 TUSD" in page.text
    assert qr_src(page.text) == payment_uri.qr_data_uri(
        f"ethereum:{usdc}@31337/transfer?address={escrow}&uint256=20000000")
    # 12.5 TUSD arrived: the code asks for the 7.5 still due, in base units.
    db.execute("UPDATE evm_transactions SET received_amount = ? WHERE transaction_uuid = ?", ("12500000", order))
    page = c.get("/payment.php?uuid=" + order, headers=HTML)
    rest = f"ethereum:{usdc}@31337/transfer?address={escrow}&uint256=7500000"
    assert f'href="{escape(rest)}"' in page.text and qr_src(page.text) == payment_uri.qr_data_uri(rest)
    assert "12.5 TUSD received; the code asks for the remaining 7.5." in page.text
    # Paid in full: no code to scan any more.
    db.execute("UPDATE evm_transactions SET received_amount = ? WHERE transaction_uuid = ?", ("20000000", order))
    page = c.get("/payment.php?uuid=" + order, headers=HTML)
    assert 'id="payment-qr"' not in page.text and "ethereum:" not in page.text


def qr_src(text):
    """The payment QR code's data: URI as the browser reads it (HTML-unescaped)."""
    import html
    m = re.search(r'<img class="qr" id="payment-qr" src="(data:image/svg\+xml[^"]+)"', text)
    assert m, "no QR code on the page"
    return html.unescape(m.group(1))


def test_order_actions_from_the_payment_page(db, app, shop):
    order = paid_order(db, shop)
    path = "/payment.php?uuid=" + order
    b, btoken = as_user(app, "buyer1")
    v, vtoken = as_user(app, "vendor1")
    page = b.get(path, headers=HTML).text
    assert {"release", "dispute"} <= set(re.findall(r'name="action" value="(\w+)"', page))
    assert "dispatch" not in re.findall(r'name="action" value="(\w+)"', page)
    # the vendor may not release before the buyer confirmed: 409, shown on the page
    r = post(v, vtoken, path, action="release")
    assert r.status == 409 and "until the buyer confirms receipt" in r.text
    r = post(b, btoken, path, action="dispatch")
    assert r.status == 403
    assert flash_of(follow(v, post(v, vtoken, path, action="dispatch"))) == "Marked as dispatched."
    assert sm.current_shipping(db, order)["status"] == sm.DISPATCHED
    page = follow(b, post(b, btoken, path, action="confirm"))
    assert "Receipt confirmed" in flash_of(page)
    assert db.value("SELECT buyer_confirmed_at FROM transactions WHERE uuid = ?", (order,))
    page = follow(b, post(b, btoken, path, action="release"))
    assert "Payment release requested" in flash_of(page)
    assert db.one("SELECT action, status FROM transaction_intents WHERE transaction_uuid = ?", (order,)) == \
        {"action": "RELEASE", "status": "pending"}
    r = post(b, btoken, path, action="release")
    assert r.status == 409 and "already in progress" in r.text
    o, otoken = as_user(app, "outsider1")
    assert post(o, otoken, path, action="release").status == 404
    assert db.value("SELECT COUNT(*) FROM transaction_intents") == 1


def test_buyer_cancels_an_unpaid_order(db, app, shop):
    order = orders.create_order(db, shop["buyer"], shop["package"]["uuid"], "ETH", 31337)["uuid"]
    b, btoken = as_user(app, "buyer1")
    page = follow(b, post(b, btoken, "/payment.php?uuid=" + order, action="cancel"))
    assert "Cancellation requested" in flash_of(page)
    assert db.value("SELECT action FROM transaction_intents WHERE transaction_uuid = ?", (order,)) == "CANCEL"


def test_dispute_thread_and_staff_partial_refund(db, app, shop):
    order = paid_order(db, shop)
    b, btoken = as_user(app, "buyer1")
    page = follow(b, post(b, btoken, "/payment.php?uuid=" + order, action="dispute", comment="broken"))
    assert "Dispute opened" in flash_of(page) and 'id="order-status">FROZEN' in page.text
    dispute = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (order,))
    path = "/dispute.php?uuid=" + dispute
    # the order uuid leads to the same thread
    assert b.get("/dispute.php?uuid=" + order, headers=HTML).text.count("broken") == 1
    r = post(b, btoken, path, action="claim", claim="   ")
    assert r.status == 400 and 'id="claim-error"' in r.text
    assert flash_of(follow(b, post(b, btoken, path, action="claim", claim="photos attached"))) == \
        "Your claim was added."
    r = post(b, btoken, path, action="resolve", resolution="refund")
    assert r.status == 403 and "only staff" in r.text
    assert 'id="resolve-form"' not in b.get(path, headers=HTML).text  # decide(): not the buyer's call
    s, stoken = as_user(app, "staff1")
    staff_page = s.get(path, headers=HTML).text
    assert 'id="resolve-form"' in staff_page
    assert re.findall(r'<option value="(\w+)"', staff_page) == ["release", "refund", "partial_refund"]
    r = post(s, stoken, path, action="resolve", resolution="partial_refund", refund_percent="101")
    assert r.status == 400 and 'id="refund_percent-error"' in r.text
    page = follow(s, post(s, stoken, path, action="resolve", resolution="partial_refund", refund_percent="30",
                          comment="split"))
    assert "Dispute resolved (partial refund)" in flash_of(page)
    assert "30% refunded to the buyer" in page.text
    assert 'id="resolve-form"' not in page.text  # decided: nothing more to resolve
    assert db.one("SELECT action, refund_percent FROM transaction_intents WHERE transaction_uuid = ?", (order,)) \
        == {"action": "PARTIAL_REFUND", "refund_percent": 30}
    claims = [r["claim"] for r in db.query("SELECT claim FROM dispute_claims ORDER BY id")]
    assert claims == ["broken", "photos attached", "split"]
    r = post(b, btoken, path, action="claim", claim="late")
    assert r.status == 409


@pytest.mark.parametrize("resolution, action", [("release", "RELEASE"), ("refund", "CANCEL")])
def test_staff_resolve_by_release_or_refund(db, app, shop, resolution, action):
    order = paid_order(db, shop)
    orders.take_action(db, shop["buyer"], order, "dispute", comment="late")
    dispute = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (order,))
    s, stoken = as_user(app, "staff1")
    page = follow(s, post(s, stoken, "/dispute.php?uuid=" + dispute, action="resolve", resolution=resolution))
    assert f"Dispute resolved ({resolution})" in flash_of(page)
    assert db.one("SELECT status, resolution FROM disputes WHERE uuid = ?", (dispute,)) == \
        {"status": "resolved", "resolution": resolution}
    assert db.one("SELECT action, status FROM transaction_intents WHERE transaction_uuid = ?", (order,)) == \
        {"action": action, "status": "pending"}
    stats = s.get("/staff/stats.php", headers=HTML).text
    assert re.search(r"<dt>In progress</dt><dd>1</dd>.*<dt>Open disputes</dt><dd>0</dd>", stats, re.S)
    assert re.search(r'FROZEN</span></td><td class="num">1</td>', stats)


# -- settings and referrals ---------------------------------------------------------

def test_user_settings_addresses_and_password(db, app, shop):
    c, token = as_user(app, "buyer1")
    refund, payout = fresh_address(), fresh_address()
    page = follow(c, post(c, token, "/settings/user.php", form="addresses", refund_address=refund,
                          payout_address=payout))
    assert flash_of(page) == "Addresses saved."
    assert f'value="{refund}"' in page.text
    assert users.by_username(db, "buyer1")["payout_address"] == payout
    r = post(c, token, "/settings/user.php", form="password", old_password="password123",
             new_password="newpassword1", new_password2="different1")
    assert r.status == 400 and 'id="new_password2-error"' in r.text
    r = post(c, token, "/settings/user.php", form="password", old_password="wrong-one",
             new_password="newpassword1", new_password2="newpassword1")
    assert r.status == 403 and 'id="old_password-error"' in r.text
    other, _ = as_user(app, "buyer1")  # a second session, ended by the change
    page = follow(c, post(c, token, "/settings/user.php", form="password", old_password="password123",
                          new_password="newpassword1", new_password2="newpassword1"))
    assert "Password changed" in flash_of(page)
    assert other.get("/settings/user.php", headers=HTML).status == 303
    assert login(Client(app), "buyer1", "newpassword1")


def test_referrals_page_shows_link_invitees_and_earnings(db, app, shop):
    users.create_user(db, "friend", "password123", invite="buyer1")
    db.insert("referral_payments", {"transaction_uuid": "t-1", "referrer_uuid": shop["buyer"]["uuid"],
                                    "amount": str(15 * 10 ** 14), "currency": "ETH", "chain_id": 31337,
                                    "payment_receipt_uuid": "0x" + "1" * 64, "created_at": "2026-01-01 00:00:00"})
    c, _ = as_user(app, "buyer1")
    page = c.get("/referrals.php", headers=HTML)
    assert "/register.php?invite=buyer1</code>" in page.text
    assert "friend" in page.text and "People you invited (1)" in page.text
    assert re.search(r"<td class=\"num\">0\.0015</td><td class=\"num\">1</td>", page.text)
    assert "no payout address yet" in page.text


# -- vendors ----------------------------------------------------------------------

def test_create_store_then_items_and_packages(db, app, shop):
    c, token = as_user(app, "outsider1")
    r = post(c, token, "/create-store.php", storename="Second", description="x")
    assert r.status == 400 and 'id="vendorship_agree-error"' in r.text
    r = post(c, token, "/create-store.php", storename="acme", vendorship_agree="1")
    assert r.status == 409 and 'id="storename-error"' in r.text
    assert db.value("SELECT COUNT(*) FROM stores") == 1
    page = follow(c, post(c, token, "/create-store.php", storename="Second", description="Our shop",
                          vendorship_agree="1"))
    assert "Your store Second is open" in flash_of(page)
    assert users.by_username(db, "outsider1")["role"] == "vendor"
    assert 'href="/item/edit.php"' in page.text  # the vendor navigation
    store = db.value("SELECT uuid FROM stores WHERE storename = 'Second'")
    r = post(c, token, "/item/edit.php?store_uuid=" + store, form="item_create", store_uuid=store, name="",
             category_id="")
    assert r.status == 400 and 'id="name-error"' in r.text and 'id="item-create-form"' in r.text
    page = follow(c, post(c, token, "/item/edit.php?store_uuid=" + store, form="item_create", store_uuid=store,
                          name="Gadget", description="Shiny", category_id=str(shop["category_id"])))
    item = db.value("SELECT uuid FROM items WHERE name = 'Gadget'")
    assert "Item Gadget created" in flash_of(page)
    r = post(c, token, "/item/edit.php?uuid=" + item, form="package_create", item_uuid=item, name="One",
             price_usd="12.345")
    assert r.status == 400 and 'id="price_usd-error"' in r.text
    page = follow(c, post(c, token, "/item/edit.php?uuid=" + item, form="package_create", item_uuid=item,
                          name="One", price_usd="12.50"))
    assert "Package One added at $12.5" in flash_of(page)
    package = db.value("SELECT uuid FROM packages WHERE item_uuid = ?", (item,))
    follow(c, post(c, token, "/item/edit.php?uuid=" + item, form="package_update", package_uuid=package,
                   name="One", price_usd="15", active="1", active_present="1"))
    assert [r["price_usd"] for r in catalog.price_history(db, package)] == ["12.5", "15"]
    assert "Gadget" in Client(app).get("/marketplace.php", headers=HTML).text
    follow(c, post(c, token, "/item/edit.php?uuid=" + item, form="item_update", uuid=item, name="Gadget",
                   description="Shiny", category_id="", active_present="1"))  # unchecked: hidden
    assert "Gadget" not in Client(app).get("/marketplace.php", headers=HTML).text
    assert "Gadget" in c.get("/item/edit.php", headers=HTML).text  # the vendor still lists it
    # another vendor's item cannot be edited
    r = post(c, token, "/item/edit.php?uuid=" + shop["item"]["uuid"], form="item_update",
             uuid=shop["item"]["uuid"], name="Mine now")
    assert r.status == 403
    assert db.value("SELECT name FROM items WHERE uuid = ?", (shop["item"]["uuid"],)) == "Widget"


def test_store_settings_and_deposits(db, app, shop):
    c, token = as_user(app, "vendor1")
    payout = fresh_address()
    r = post(c, token, "/settings/store.php", description="New text", payout_address="0x123")
    assert r.status == 400 and 'id="payout_address-error"' in r.text and "New text" in r.text
    page = follow(c, post(c, token, "/settings/store.php", description="New text", payout_address=payout))
    assert flash_of(page) == "Store settings saved."
    assert catalog.store_row(db, shop["store"]["uuid"])["payout_address"] == payout
    page = follow(c, post(c, token, "/deposits/add.php", store_uuid=shop["store"]["uuid"], token="31337:ETH"))
    assert "Deposit opened for ETH" in flash_of(page) and "pending, up to a minute" in page.text
    r = post(c, token, "/deposits/add.php", store_uuid=shop["store"]["uuid"], token="31337:ETH")
    assert r.status == 409
    deposit = db.value("SELECT uuid FROM deposits")
    r = post(c, token, "/deposits/withdraw.php?uuid=" + deposit, deposit_uuid=deposit)
    assert r.status == 409 and "not derived yet" in r.text
    assert db.value("SELECT COUNT(*) FROM deposit_withdraw_intents") == 0
    db.execute("UPDATE deposits SET address = ?, balance = ? WHERE uuid = ?", (fresh_address(), "5", deposit))
    page = follow(c, post(c, token, "/deposits/withdraw.php?uuid=" + deposit, deposit_uuid=deposit))
    assert "Withdrawal requested" in flash_of(page)
    assert db.value("SELECT to_address FROM deposit_withdraw_intents") == payout


# -- staff and admin --------------------------------------------------------------

def test_staff_suspend_tier_and_ban(db, app, shop):
    s, token = as_user(app, "staff1")
    page = follow(s, post(s, token, "/staff/stores.php", store_uuid=shop["store"]["uuid"], action="suspend"))
    assert "Store suspended" in flash_of(page)
    assert "Acme" not in Client(app).get("/vendors.php", headers=HTML).text
    assert Client(app).get("/store.php?uuid=" + shop["store"]["uuid"], headers=HTML).status == 404
    follow(s, post(s, token, "/staff/stores.php", store_uuid=shop["store"]["uuid"], action="reinstate"))
    follow(s, post(s, token, "/staff/stores.php", store_uuid=shop["store"]["uuid"], action="tier", tier="gold"))
    assert catalog.store_row(db, shop["store"]["uuid"])["tier"] == "gold"
    assert post(s, token, "/staff/stores.php", store_uuid=shop["store"]["uuid"], action="tier",
                tier="platinum").status == 400
    def ban_buttons(client):
        text = client.get("/staff/users.php", headers=HTML).text
        return {name for name in ("buyer1", "vendor1", "staff1", "admin1", "outsider1")
                if re.search(rf"<td>{name}</td>.*?</tr>", text, re.S)
                and "Ban</button>" in re.search(rf"<td>{name}</td>.*?</tr>", text, re.S).group(0)}
    assert ban_buttons(s) == {"buyer1", "vendor1", "outsider1"}  # lib.staff.may_ban, as the POST
    assert ban_buttons(as_user(app, "admin1")[0]) == {"buyer1", "vendor1", "outsider1", "staff1"}
    page = follow(s, post(s, token, "/staff/users.php", user_uuid=shop["outsider"]["uuid"], banned="1"))
    assert flash_of(page) == "outsider1 is banned."
    assert users.by_username(db, "outsider1")["banned"]
    r = post(s, token, "/staff/users.php", user_uuid=shop["admin"]["uuid"], banned="1")
    assert r.status == 403 and "cannot ban admin" in r.text
    assert not users.by_username(db, "admin1")["banned"]


def test_admin_pages_use_the_json_handlers(db, app, shop):
    a, token = as_user(app, "admin1")
    r = post(a, token, "/admin/config.php", pending_duration="soon")
    assert r.status == 400 and "pending_duration" in r.text and r.header("Content-Type").startswith("text/html")
    page = follow(a, post(a, token, "/admin/config.php", pending_duration="2h", completion_tolerance="0.01"))
    assert flash_of(page) == "Configuration saved."
    assert db.value("SELECT value FROM config WHERE name = 'pending_duration'") == "2h"
    page = follow(a, post(a, token, "/admin/tokens.php", chain_id="31337", symbol="TUSD",
                          contract_address="0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", decimals="6"))
    assert "Token added" in flash_of(page) and "unverified" in page.text
    r = post(a, token, "/admin/tokens.php", chain_id="31337", symbol="BAD", contract_address="0xabc")
    assert r.status == 400 and 'id="contract_address-error"' in r.text
    tid = db.value("SELECT id FROM accepted_tokens WHERE symbol = 'TUSD'")
    follow(a, post(a, token, "/admin/tokens-remove.php", id=str(tid)))
    assert db.value("SELECT COUNT(*) FROM accepted_tokens WHERE symbol = 'TUSD'") == 0
    page = follow(a, post(a, token, "/admin/users.php", user_uuid=shop["outsider"]["uuid"], role="staff"))
    assert flash_of(page) == "User updated."
    assert users.by_username(db, "outsider1")["role"] == "staff"
    r = post(a, token, "/admin/users.php", user_uuid=shop["admin"]["uuid"], banned="1")
    assert r.status == 409 and "cannot demote or ban yourself" in r.text
    # API clients still get JSON from the same scripts
    r = a.get("/admin/tokens.php", headers={"X-CSRF-Token": token})
    assert r.header("Content-Type") == "application/json" and "tokens" in r.json()
    r = a.post("/admin/config.php", data={"pending_duration": "x", "csrf_token": token})
    assert r.status == 400 and "pending_duration" in r.json()["error"]


# -- lists --------------------------------------------------------------------------

def test_marketplace_pagination_and_plain_clients(db, app, shop):
    for i in range(24):
        catalog.create_item(db, shop["vendor"], shop["store"]["uuid"], f"Thing {i:02d}", None, None)
    c = Client(app)
    first = c.get("/marketplace.php", headers=HTML)
    assert first.text.count('<article class="card item">') == 20
    assert 'rel="next" href="/marketplace.php?offset=20"' in first.text and 'rel="prev"' not in first.text
    second = c.get("/marketplace.php?offset=20", headers=HTML)
    assert second.text.count('<article class="card item">') == 5
    assert 'rel="prev" href="/marketplace.php"' in second.text and 'rel="next"' not in second.text
    assert "Thing 23" in first.text and "Thing 00" not in first.text and "Thing 00" in second.text
    searched = c.get("/marketplace.php?q=thing+1", headers=HTML)
    assert "10 items found" in searched.text
    r = c.get("/")
    assert r.status == 200 and r.text == "OK"  # the original's health check for non-browsers


def test_payouts_link_to_the_block_explorer(db, app, shop, monkeypatch):
    from lib.db import utc_now
    token = tokens.add_token(db, 1, "ETH", "")
    tokens.set_status(db, token["id"], "active")
    db.upsert("prices", {"chain_id": 1, "symbol": "ETH"}, {"contract_address": "", "usd_price": "2500",
                                                           "fetched_at": utc_now()})
    order = orders.create_order(db, shop["buyer"], shop["package"]["uuid"], "ETH", 1)["uuid"]
    escrow = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    db.execute("UPDATE evm_transactions SET escrow_address = ?, derivation_index = 9 WHERE transaction_uuid = ?",
               (escrow, order))
    tx = "0x" + "ab" * 32
    now = utc_now()
    db.insert("payouts", {"transaction_uuid": order, "kind": "payout", "recipient_role": "vendor", "chain_id": 1,
                          "currency": "ETH", "from_address": escrow, "to_address": fresh_address(),
                          "amount": str(8 * 10 ** 15), "nonce": 0, "tx_hash": tx, "raw_tx": "0x00",
                          "status": "confirmed", "block_number": 123, "created_at": now, "updated_at": now})
    c, _ = as_user(app, "buyer1")
    page = c.get("/payment.php?uuid=" + order, headers=HTML).text
    assert f'<a href="https://etherscan.io/tx/{tx}" rel="noopener noreferrer" target="_blank">' in page
    assert f'href="https://etherscan.io/address/{escrow}"' in page
    assert "0.008 ETH" in page and "confirmed (block 123)" in page
    assert f"ethereum:{escrow}@1?value=8000000000000000" in page  # $20 at $2,500


def test_a_hostile_item_name_in_a_flash_message_is_text(db, app, shop):
    c, token = as_user(app, "vendor1")
    page = follow(c, post(c, token, "/item/edit.php?store_uuid=" + shop["store"]["uuid"], form="item_create",
                          store_uuid=shop["store"]["uuid"], name="<script>alert(1)</script>"))
    assert flash_of(page) == "Item &lt;script&gt;alert(1)&lt;/script&gt; created. Now add its packages."
    assert "<script>alert" not in page.text
