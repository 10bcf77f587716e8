"""The pages work with JavaScript turned off: log in, the payment page's actions (dispatch,
confirm, release, dispute) and the staff decision on the dispute page are plain forms.
The order is paid as cron leaves it (no chain needed: the forms only write intents)."""
from playwright.sync_api import expect

from lib import status_machine as sm
from tests.browser.helpers import confirm_and_release, login, submit
from tests.test_pages import paid_order
from tests.ui_data import make_shop


def intents(db, order):
    return db.query("SELECT action, status, refund_percent FROM transaction_intents WHERE transaction_uuid = ?",
                    (order,))


def test_payment_and_dispute_actions_without_javascript(db, site, ui, shots):
    shop = make_shop(db)
    order = paid_order(db, shop)
    vendor = ui(javascript=False)
    login(vendor, site, "vendor1")
    vendor.goto(f"{site}/payment.php?uuid={order}")
    expect(vendor.locator("#order-status")).to_have_text("COMPLETED")
    vendor.fill("form.action-dispatch input[name=comment]", "Tracking 123")
    submit(vendor, "button:has-text('Mark as dispatched')")
    expect(vendor.locator(".flash")).to_have_text("Marked as dispatched.")
    expect(vendor.locator("#shipping-history")).to_contain_text("Tracking 123")
    shots(vendor, "vendor-dispatched-no-js")

    buyer = ui(javascript=False)
    login(buyer, site, "buyer1")
    buyer.goto(f"{site}/payment.php?uuid={order}")
    confirm_and_release(buyer)
    expect(buyer.locator("main")).to_contain_text("Nothing for you to do right now.")
    shots(buyer, "buyer-released-no-js")
    assert intents(db, order) == [{"action": "RELEASE", "status": "pending", "refund_percent": None}]
    assert sm.current_shipping(db, order)["status"] == sm.DISPATCHED

    # A second order: the buyer disputes, staff split it, all without JavaScript.
    other = paid_order(db, shop)
    buyer.goto(f"{site}/payment.php?uuid={other}")
    buyer.fill("form.action-dispute textarea", "Never arrived.")
    submit(buyer, "button:has-text('Open a dispute')")
    expect(buyer.locator("#order-status")).to_have_text("FROZEN")
    shots(buyer, "buyer-disputed-no-js")
    staff = ui(javascript=False)
    login(staff, site, "staff1")
    staff.goto(f"{site}/dispute.php?uuid={other}")
    expect(staff.locator("#claims")).to_contain_text("Never arrived.")
    staff.select_option("#f-resolution", "partial_refund")
    staff.fill("#f-refund_percent", "25")
    submit(staff, "#resolve-form button")
    expect(staff.locator("#dispute-resolution")).to_contain_text("25% refunded to the buyer")
    shots(staff, "staff-resolved-no-js")
    assert intents(db, other) == [{"action": "PARTIAL_REFUND", "status": "pending", "refund_percent": 25}]
