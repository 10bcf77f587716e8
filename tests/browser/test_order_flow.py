"""The escrow in a real browser, against anvil and the real cron (cron/cron.py as a
subprocess, as crontab runs it):

1. a buyer registers, checks out, sees "pending", then the escrow address and the QR
   code of the EIP-681 URI, pays from an anvil account, sees COMPLETED; the vendor
   dispatches; the buyer confirms and releases; the payouts appear (RELEASED);
2. a dispute: the buyer disputes, the vendor answers, staff resolve with a partial
   refund; the buyer, the resolver's share and the vendor are paid (CANCELLED).

Screenshots of each step: tests/artifacts/browser/<test>/.
"""
from playwright.sync_api import expect

from lib import catalog, orders, pricing, users
from tests.browser.helpers import confirm_and_release, signed_in, submit
from tests.chain import fresh_address
from tests.cron_support import cron_subprocess
from tests.ui_data import make_shop


def run_cron(env, db):
    proc = cron_subprocess(env, db)
    assert proc.returncode == 0, proc.output
    return proc.output


def status(db, uuid):
    return db.value("SELECT current_status FROM v_current_transaction_statuses WHERE transaction_uuid = ?",
                    (uuid,))


def settle(anvil, env, db, uuid, final, rounds=5):
    """Run cron and mine blocks until the order reaches `final` (payouts need confirmations)."""
    for _ in range(rounds):
        run_cron(env, db)
        if status(db, uuid) == final:
            return
        anvil.mine(3)
    raise AssertionError(f"order {uuid} is {status(db, uuid)}, not {final}; intents "
                         f"{db.query('SELECT action, status, error FROM transaction_intents WHERE transaction_uuid = ?', (uuid,))}")


def escrow(db, uuid):
    return db.one("SELECT escrow_address, required_amount FROM evm_transactions WHERE transaction_uuid = ?",
                  (uuid,))


def shown_payouts(page):
    """{recipient role: amount in wei} as the payment page's payouts table shows them."""
    out = {}
    for row in page.locator("#payouts tbody tr").all():
        cells = [c.inner_text().strip() for c in row.locator("td").all()]
        amount, currency = cells[2].split()
        assert currency == "ETH", cells
        out[cells[0]] = pricing.parse_amount(amount, 18)
    return out


def test_buyer_pays_vendor_dispatches_buyer_releases(db, site, ui, shots, anvil, env):
    shop = make_shop(db)
    vendor_wallet = fresh_address()
    refund_wallet = fresh_address()

    # The vendor sets the store's payout address in the store settings.
    vendor = signed_in(ui, site, "vendor1", "/settings/store.php")
    vendor.fill("#f-payout_address", vendor_wallet.lower())  # not checksummed: refused
    submit(vendor, "#store-settings-form button")
    expect(vendor.locator("#payout_address-error")).to_be_visible()
    vendor.fill("#f-payout_address", vendor_wallet)
    submit(vendor, "#store-settings-form button")
    expect(vendor.locator(".flash")).to_have_text("Store settings saved.")
    shots(vendor, "vendor-payout-address")

    # A buyer registers and checks out.
    buyer = ui()
    buyer.clock.install()  # the page's refresh timer runs when the test says so
    buyer.goto(site + "/register.php")
    buyer.fill("#f-username", "alice")
    buyer.fill("#f-password", "correct horse")
    submit(buyer, "form[action='/register.php'] button[type=submit]")
    expect(buyer.locator("#recovery-codes li")).to_have_count(10)  # shown once
    submit(buyer, "#codes-continue")
    assert buyer.url.endswith("/marketplace.php")
    expect(buyer.locator("nav.bar")).to_contain_text("alice")
    shots(buyer, "registered")
    submit(buyer, "article.item h3 a")
    submit(buyer, "text=Buy this package")
    buyer.select_option("#f-token", "31337:ETH")
    buyer.fill("#f-refund_address", refund_wallet)
    shots(buyer, "checkout")
    submit(buyer, "form.stack button[type=submit]")
    expect(buyer.locator(".flash")).to_contain_text("Order placed: pay 0.01 ETH")
    order = buyer.url.split("uuid=")[1]
    expect(buyer.locator("#order-status")).to_have_text("PENDING")
    expect(buyer.locator("#escrow-pending")).to_contain_text("pending")
    expect(buyer.locator("#amount-due")).to_have_text("0.01 ETH")
    shots(buyer, "payment-pending")

    # Cron derives the escrow address: the page shows it with the QR code of the EIP-681 URI,
    # by itself (static/refresh.js reloads the waiting page every 15 s; the test's clock runs fast).
    run_cron(env, db)
    row = escrow(db, order)
    address, wei = row["escrow_address"], int(row["required_amount"])
    assert wei == 10 ** 16
    buyer.clock.run_for(16_000)
    expect(buyer.locator("#escrow-address")).to_have_text(address)
    uri = f"ethereum:{address}@31337?value={wei}"
    expect(buyer.locator("#pay-uri")).to_have_text(uri)
    qr = buyer.locator("#payment-qr")
    expect(qr).to_be_visible()
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    assert buyer.evaluate("document.getElementById('payment-qr').naturalWidth") > 100  # the SVG rendered
    shots(buyer, "payment-escrow-qr")

    # The buyer pays from an anvil account; after the confirmations cron sees COMPLETED.
    anvil.send_eth(1, address, wei)
    anvil.mine(3)
    run_cron(env, db)
    buyer.reload()
    expect(buyer.locator("#order-status")).to_have_text("COMPLETED")
    expect(buyer.locator("#amount-received")).to_have_text("0.01 ETH")
    expect(buyer.locator("#payment-qr")).to_have_count(0)
    shots(buyer, "paid-completed")

    # The vendor dispatches from the sales list.
    vendor.goto(site + "/payments.php?view=sales")
    expect(vendor.locator("#orders")).to_contain_text("alice")
    submit(vendor, "#orders button:has-text('Dispatch')")
    expect(vendor.locator(".flash")).to_have_text("Marked as dispatched.")
    expect(vendor.locator("#shipping-status")).to_have_text("DISPATCHED")
    shots(vendor, "vendor-dispatched")

    # The buyer confirms receipt, then releases the payment.
    buyer.reload()
    expect(buyer.locator("#shipping-status")).to_have_text("DISPATCHED")
    confirm_and_release(buyer)
    expect(buyer.locator("main")).to_contain_text("RELEASE")
    shots(buyer, "release-requested")

    settle(anvil, env, db, order, "RELEASED")
    buyer.reload()
    expect(buyer.locator("#order-status")).to_have_text("RELEASED")
    payouts = buyer.locator("#payouts tbody tr")
    expect(payouts).to_have_count(2)  # vendor and marketplace commission (no referrer)
    expect(buyer.locator("#payouts")).to_contain_text("vendor")
    expect(buyer.locator("#payouts")).to_contain_text("commission")
    expect(buyer.locator("#payouts")).to_contain_text("confirmed")
    expect(buyer.locator("#status-history")).to_contain_text("RELEASED")
    shots(buyer, "released-payouts")
    # The vendor's 80% (free tier) arrived on chain at the payout address set above, and
    # the page shows exactly what each address received on chain.
    assert anvil.balance(vendor_wallet) == wei * 80 // 100
    assert shown_payouts(buyer) == {"vendor": anvil.balance(vendor_wallet),
                                    "commission": anvil.balance(env["COMMISSION_WALLET_DEV"])}
    assert status(db, order) == "RELEASED"


def test_dispute_resolved_by_staff_with_partial_refund(db, site, ui, shots, anvil, env):
    shop = make_shop(db)
    vendor_wallet, refund_wallet = fresh_address(), fresh_address()
    catalog.update_store(db, shop["vendor"], shop["store"]["uuid"], payout_address=vendor_wallet)
    resolver_wallet = fresh_address()
    users.set_addresses(db, shop["staff"]["uuid"], None, resolver_wallet)
    order = orders.create_order(db, shop["buyer"], shop["package"]["uuid"], "ETH", 31337, refund_wallet)["uuid"]
    run_cron(env, db)
    row = escrow(db, order)
    wei = int(row["required_amount"])
    anvil.send_eth(2, row["escrow_address"], wei)
    anvil.mine(3)
    run_cron(env, db)
    assert status(db, order) == "COMPLETED"

    # The buyer opens a dispute from the payment page.
    buyer = signed_in(ui, site, "buyer1", f"/payment.php?uuid={order}")
    buyer.fill("form.action-dispute textarea", "The widget arrived broken.")
    submit(buyer, "button:has-text('Open a dispute')")
    expect(buyer.locator(".flash")).to_contain_text("Dispute opened")
    expect(buyer.locator("#order-status")).to_have_text("FROZEN")
    shots(buyer, "buyer-disputed")

    # The vendor answers in the claims thread.
    vendor = signed_in(ui, site, "vendor1", f"/payment.php?uuid={order}")
    submit(vendor, "text=view the claims")
    expect(vendor.locator("#claims")).to_contain_text("The widget arrived broken.")
    vendor.fill("#f-claim", "It was fine when it left; I offer half.")
    submit(vendor, "form:has(#f-claim) button")
    expect(vendor.locator("#claims li")).to_have_count(2)
    shots(vendor, "vendor-claim")

    # Staff find it on their dashboard and decide: 40% back to the buyer.
    staff = signed_in(ui, site, "staff1", "/staff/")
    expect(staff.locator("#open-disputes")).to_have_text("1")
    submit(staff, "#disputes a >> nth=0")
    expect(staff.locator("#claims li")).to_have_count(2)
    staff.select_option("#f-resolution", "partial_refund")
    submit(staff, "#resolve-form button")  # no percent: refused by the server, form shown again
    expect(staff.locator("#refund_percent-error")).to_be_visible()
    expect(staff.locator(".error-box")).to_contain_text("refund_percent is required")
    staff.select_option("#f-resolution", "partial_refund")
    staff.fill("#f-refund_percent", "40")
    staff.fill("#f-comment", "Both sides share the loss.")
    shots(staff, "staff-resolving")
    submit(staff, "#resolve-form button")
    expect(staff.locator(".flash")).to_contain_text("Dispute resolved (partial refund)")
    expect(staff.locator("#dispute-resolution")).to_contain_text("40% refunded to the buyer")
    shots(staff, "staff-resolved")

    settle(anvil, env, db, order, "CANCELLED")
    buyer.goto(f"{site}/payment.php?uuid={order}")
    expect(buyer.locator("#order-status")).to_have_text("CANCELLED")
    expect(buyer.locator("#payouts tbody tr")).to_have_count(3)
    for role in ("buyer", "resolver", "vendor"):
        expect(buyer.locator("#payouts")).to_contain_text(role)
    shots(buyer, "partial-refund-payouts")
    # Resolver 10% of the escrow; of the rest the buyer gets 40% (less the network fees
    # of refunds) and the vendor 60%.
    assert anvil.balance(resolver_wallet) == wei // 10
    assert shown_payouts(buyer) == {"resolver": anvil.balance(resolver_wallet),
                                    "vendor": anvil.balance(vendor_wallet),
                                    "buyer": anvil.balance(refund_wallet)}
    assert anvil.balance(vendor_wallet) > 0 and anvil.balance(refund_wallet) > 0
    assert anvil.balance(vendor_wallet) > anvil.balance(refund_wallet)
