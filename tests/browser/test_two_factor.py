"""A user turns on two-factor login through the settings page in Chromium (the QR
code is shown, a pyotp code confirms it), and the next login needs the code."""
import pyotp
from playwright.sync_api import expect

from tests.browser.helpers import signed_in, submit
from tests.factories import make_user


def test_enroll_totp_through_settings(ui, site, db, shots):
    make_user(db, "alice")
    page = signed_in(ui, site, "alice", "/settings/user.php")
    submit(page, "#two-factor-link")
    expect(page.locator("#two-factor-status")).to_contain_text("off")
    submit(page, "#totp-begin-form button[type=submit]")
    expect(page.locator("#totp-qr")).to_be_visible()
    assert page.locator("#totp-qr").evaluate("img => img.naturalWidth") > 0
    secret = page.locator("#totp-secret").inner_text().strip()
    shots(page, "totp-enroll")
    page.fill("#f-otp", pyotp.TOTP(secret).now())
    submit(page, "#totp-confirm-form button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Two-factor login is on")
    expect(page.locator("#totp-disable-form")).to_be_visible()

    # a new browser: the password alone is not enough, the next step's code is
    other = ui()
    other.goto(site + "/login.php")
    other.fill("#f-username", "alice")
    other.fill("#f-password", "password123")
    submit(other, "form[action='/login.php'] button[type=submit]")
    expect(other.locator("main")).to_contain_text("two-factor code required")
    last = int(db.value("SELECT totp_last_counter FROM users WHERE username = 'alice'"))
    other.fill("#f-username", "alice")
    other.fill("#f-password", "password123")
    other.fill("#f-otp", pyotp.TOTP(secret).generate_otp(last + 1))
    submit(other, "form[action='/login.php'] button[type=submit]")
    assert other.url.endswith("/marketplace.php")
    expect(other.locator("nav.bar")).to_contain_text("alice")
