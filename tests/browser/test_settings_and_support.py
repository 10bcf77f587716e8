"""In Chromium: the settings page's email section (add an address, open the link the test
SMTP sink received, turn a notification off) and sessions section (list, end another
session, sign out everywhere); a user opens a support ticket that staff answer
and close."""
import re

import pytest
from playwright.sync_api import expect

from cron import mail as cron_mail
from tests import market
from tests.browser.helpers import fill_and_submit, login, signed_in, submit
from tests.factories import make_user
from tests.smtp_sink import SmtpSink


@pytest.fixture
def sink():
    s = SmtpSink()
    yield s
    s.close()


@pytest.fixture
def settings(request, live_port):
    """The site sends mail, with links to the live server, in the tests that start a sink."""
    if "sink" not in request.fixturenames:
        return {"ALLOW_DEV_CHAIN": "1"}
    return {"ALLOW_DEV_CHAIN": "1", "EMAIL_ENABLED": "1", "SITE_URL": f"http://127.0.0.1:{live_port}"}


def test_email_section_add_verify_and_notifications(db, site, ui, shots, sink):
    make_user(db, "alice")
    page = signed_in(ui, site, "alice", "/settings/user.php")
    page.fill("#email-form input[name=email]", "alice@example.com")
    submit(page, "#email-form button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("A verification link is on its way to alice@example.com")
    expect(page.locator("#email")).to_contain_text("Waiting for you to open the link")
    shots(page, "email-pending")
    assert cron_mail.deliver({"SMTP_URL": sink.url, "SITE_URL": site, "EMAIL_FROM": "shop@test"}, db) == \
        {"sent": 1}
    body = sink.to("alice@example.com")[0]["body"]
    link = re.search(re.escape(site) + r"/verify-email\.php\?code=[A-Za-z0-9_\-]+", body).group(0)
    page.goto(link)
    expect(page.locator("main")).to_contain_text("alice@example.com")
    shots(page, "email-verified")
    page.goto(f"{site}/settings/user.php")
    expect(page.locator("#email")).to_contain_text("Your address: alice@example.com")
    page.uncheck("#email-notify-form input[name=notify_order_paid]")
    submit(page, "#email-notify-form button[type=submit]")
    expect(page.locator(".flash")).to_have_text("Email notifications saved.")
    expect(page.locator("#email-notify-form input[name=notify_order_paid]")).not_to_be_checked()
    expect(page.locator("#email-notify-form input[name=notify_dispute]")).to_be_checked()
    shots(page, "email-notifications")
    assert db.value("SELECT email_off FROM users WHERE username = 'alice'") == "order.paid"
    assert page.context.request.get(f"{site}/api/email-settings.php").json()["email"] == "alice@example.com"


def test_sessions_section_end_one_and_sign_out_everywhere(db, site, ui, shots):
    make_user(db, "alice")
    laptop, phone = ui(), ui()
    login(laptop, site, "alice")
    login(phone, site, "alice")
    laptop.goto(f"{site}/settings/user.php")
    rows = laptop.locator("#sessions-table tr:has(td)")
    expect(rows).to_have_count(2)
    expect(laptop.locator("#sessions-table")).to_contain_text("(this session)")
    shots(laptop, "two-sessions")
    # end the other session (the row without "this session")
    with laptop.expect_navigation():
        rows.filter(has_not_text="this session").locator("button").click()
    expect(laptop.locator(".flash")).to_have_text("That session was signed out.")
    expect(laptop.locator("#sessions-table tr:has(td)")).to_have_count(1)
    phone.goto(f"{site}/settings/user.php")
    assert "/login.php" in phone.url
    shots(laptop, "one-session-left")
    # sign in again elsewhere, then sign out everywhere from the laptop
    login(phone, site, "alice")
    laptop.goto(f"{site}/settings/user.php")
    expect(laptop.locator("#sessions-table tr:has(td)")).to_have_count(2)
    submit(laptop, "#logout-everywhere-form button[type=submit]")
    for page in (laptop, phone):
        page.goto(f"{site}/settings/user.php")
        assert "/login.php" in page.url
    assert db.value("SELECT COUNT(*) FROM sessions s JOIN users u ON u.uuid = s.user_uuid "
                    "WHERE u.username = 'alice'") == 0
    shots(laptop, "signed-out-everywhere")


def test_a_user_opens_a_ticket_that_staff_answer(db, site, ui, shots):
    w = market.world(db)
    order = market.order(db, w, "COMPLETED")
    user = ui()
    login(user, site, "buyer1")
    user.click("nav.bar a[href='/support.php']")
    expect(user.locator("#no-tickets")).to_be_visible()
    user.click("text=Open a ticket")
    user.fill("#f-subject", "Parcel <not> here")
    user.fill("#f-body", "Ordered a week ago.\nStill waiting.")
    user.select_option("#f-transaction_uuid", order)
    shots(user, "new-ticket-form")
    submit(user, "#new-ticket button[type=submit]")
    expect(user.locator("h1")).to_have_text("Parcel <not> here")
    expect(user.locator("#ticket-status")).to_have_text("open")
    expect(user.locator("#ticket-thread")).to_contain_text("Still waiting.")
    shots(user, "ticket-open")

    staff = signed_in(ui, site, "staff1", "/staff/tickets.php")
    expect(staff.locator("#ticket-queue")).to_contain_text("Parcel <not> here")
    shots(staff, "staff-queue")
    staff.click("#ticket-queue a:text('Parcel <not> here')")
    fill_and_submit(staff, {"#staff-reply textarea[name=body]": "It left our warehouse today."},
                    "#staff-reply button[type=submit]")
    expect(staff.locator(".flash")).to_have_text("Answer sent.")
    staff.select_option("#staff-assign select[name=assignee]", "staff1")
    submit(staff, "#staff-assign button[type=submit]")
    expect(staff.locator("#ticket-meta")).to_contain_text("assigned to staff1")
    shots(staff, "staff-answered")

    user.reload()
    expect(user.locator("#ticket-status")).to_have_text("answered")
    expect(user.locator("#ticket-thread .staff-reply")).to_contain_text("It left our warehouse today.")
    fill_and_submit(user, {"#reply-ticket textarea[name=body]": "Thanks! Tracking number?"},
                    "#reply-ticket button[type=submit]")
    expect(user.locator("#ticket-status")).to_have_text("open")
    shots(user, "user-replied")

    staff.reload()
    fill_and_submit(staff, {"#staff-close input[name=comment]": "answered by mail"}, "#staff-close button[type=submit]")
    expect(staff.locator("#ticket-status")).to_have_text("closed")
    user.reload()
    expect(user.locator("#ticket-closed")).to_be_visible()
    expect(user.locator("#reply-ticket")).to_have_count(0)
    shots(user, "ticket-closed")
    user.goto(f"{site}/support.php")
    expect(user.locator("#tickets")).to_contain_text("closed")
    shots(user, "my-tickets")


def test_staff_warn_a_store_and_the_store_page_shows_it(db, site, ui, shots):
    w = market.world(db)
    staff = signed_in(ui, site, "staff1", "/staff/warnings.php")
    fill_and_submit(staff, {"#add-warning input[name=store]": "shop",
                            "#add-warning textarea[name=reason]": "Several buyers report late parcels."},
                    "#add-warning button[type=submit]")
    expect(staff.locator(".flash")).to_have_text("Warning added to shop.")
    expect(staff.locator("#warnings")).to_contain_text("Several buyers report late parcels.")
    shots(staff, "staff-warnings")
    visitor = ui()
    visitor.goto(f"{site}/store.php?uuid={w.store['uuid']}")
    expect(visitor.locator("#store-warnings")).to_contain_text("Several buyers report late parcels.")
    shots(visitor, "store-with-warning")
    submit(staff, "#warnings button:text('Retire')")
    expect(staff.locator(".flash")).to_have_text("Warning on shop retired.")
    visitor.reload()
    expect(visitor.locator("#store-warnings")).to_have_count(0)
