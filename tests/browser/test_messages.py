"""In Chromium: a buyer writes to a vendor; the vendor sees the unread badge in the
navigation, opens the conversation and replies; the buyer sees the reply. Then the order's
thread on the order page, and a block that refuses the buyer's next message."""
from playwright.sync_api import expect

from lib import orders
from tests.browser.helpers import login, signed_in, submit
from tests.ui_data import make_shop


def test_a_buyer_messages_a_vendor_who_replies(db, site, ui, shots):
    shop = make_shop(db)
    order_uuid = orders.create_order(db, shop["buyer"], shop["package"]["uuid"], "ETH", 31337)["uuid"]

    buyer = signed_in(ui, site, "buyer1", "/messages.php")
    expect(buyer.locator("main")).to_contain_text("No conversations yet.")
    buyer.fill("#new-message-form input[name=to]", "vendor1")
    buyer.fill("#new-message-form textarea[name=body]", "Hello!\nDo you ship to Lisbon?")
    shots(buyer, "buyer-writes")
    submit(buyer, "#new-message-form button")
    expect(buyer).to_have_url(f"{site}/messages.php?with=vendor1")
    expect(buyer.locator("#messages li")).to_have_count(1)
    expect(buyer.locator("#messages li").first).to_contain_text("Do you ship to Lisbon?")

    vendor = ui()
    login(vendor, site, "vendor1")
    # the order (made above) and the message: two unread notifications
    expect(vendor.locator("#unread-badge")).to_have_text("2")
    shots(vendor, "vendor-unread-badge")
    vendor.click("a[href='/messages.php']")
    row = vendor.locator("#conversations tbody tr", has_text="buyer1")
    expect(row).to_contain_text("1 new")
    expect(row).to_contain_text("Do you ship to Lisbon?")
    shots(vendor, "vendor-conversations")
    with vendor.expect_navigation():
        row.locator("a").click()
    expect(vendor.locator("#messages li").first).to_contain_text("Hello!")
    # the newline is kept: two lines of text in one message
    assert "Hello!\nDo you ship to Lisbon?" in vendor.locator("#messages li").first.inner_text()
    expect(vendor.locator("#unread-badge")).to_have_text("1")         # the message's notification is read
    vendor.fill("#message-form textarea[name=body]", "Yes, in three days.")
    submit(vendor, "#message-form button")
    expect(vendor.locator("#messages li")).to_have_count(2)
    shots(vendor, "vendor-replied")

    buyer.reload()
    expect(buyer.locator("#messages li").last).to_contain_text("Yes, in three days.")
    # the order's thread, on the order page
    buyer.goto(f"{site}/payment.php?uuid={order_uuid}")
    buyer.fill("#order-message-form textarea[name=body]", "Please pack it well.")
    submit(buyer, "#order-message-form button")
    expect(buyer).to_have_url(f"{site}/payment.php?uuid={order_uuid}#order-messages")
    expect(buyer.locator("#order-messages #messages li")).to_contain_text(["Please pack it well."])
    shots(buyer, "buyer-order-thread")
    vendor.goto(f"{site}/payment.php?uuid={order_uuid}")
    expect(vendor.locator("#order-messages")).to_contain_text("Please pack it well.")
    expect(vendor.locator("#order-messages")).to_contain_text("(buyer)")
    # the notifications page: newest first; mark all read empties the badge
    vendor.click("#nav-notifications")
    expect(vendor.locator("#notifications li").first).to_contain_text("New message about order")
    # the messages were read where they were opened (the thread, the order page): the new order is left
    expect(vendor.locator("#notifications li.unread")).to_have_count(1)
    expect(vendor.locator("#notifications li.unread")).to_contain_text("New order")
    shots(vendor, "vendor-notifications")
    submit(vendor, "#read-all-form button")
    expect(vendor.locator(".flash")).to_have_text("Marked 1 notification read.")
    expect(vendor.locator("#unread-badge")).to_have_count(0)

    # the vendor blocks the buyer: the buyer's next message is refused, nothing stored
    vendor.goto(f"{site}/messages.php?with=buyer1")
    submit(vendor, "#block-form button")
    expect(vendor.locator(".flash")).to_have_text("Blocked buyer1.")
    expect(vendor.locator("#blocked-note")).to_be_visible()
    before = db.value("SELECT COUNT(*) FROM messages")
    buyer.goto(f"{site}/messages.php?with=vendor1")
    buyer.fill("#message-form textarea[name=body]", "Hello again?")
    submit(buyer, "#message-form button")
    expect(buyer.locator(".error-box")).to_have_text("vendor1 has blocked you: your message was not sent")
    shots(buyer, "buyer-blocked")
    assert db.value("SELECT COUNT(*) FROM messages") == before
