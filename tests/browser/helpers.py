"""Steps shared by the browser tests."""
from playwright.sync_api import expect

LOGIN_BUTTON = "form[action='/login.php'] button[type=submit]"


def submit(page, selector):
    """Click a submit button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def fill_and_submit(page, fields, button):
    """Fill the fields ({selector: text}) and submit the form with `button` (a selector)."""
    for selector, text in fields.items():
        page.fill(selector, text)
    submit(page, button)


def login(page, site, username, password="password123"):
    """Log in through the form; the page ends on the marketplace."""
    page.goto(f"{site}/login.php")
    fill_and_submit(page, {"#f-username": username, "#f-password": password}, LOGIN_BUTTON)


def confirm_and_release(page):
    """On the payment page, the buyer confirms receipt, then asks for the payment's release."""
    submit(page, "button:has-text('Confirm receipt')")
    expect(page.locator(".flash")).to_contain_text("Receipt confirmed")
    submit(page, "button:has-text('Release payment')")
    expect(page.locator(".flash")).to_contain_text("Payment release requested")


def signed_in(ui, site, username, path):
    """A new page (cookies of its own) logged in as `username`, opened at `path`."""
    page = ui()
    login(page, site, username)
    page.goto(site + path)
    return page
