"""A guest browses the marketplace in a real browser: home, search, category, item with
its packages and prices, the store, the vendors; buying asks them to log in first and
brings them back to the checkout."""
from playwright.sync_api import expect

from tests.browser.helpers import LOGIN_BUTTON, fill_and_submit, submit
from tests.ui_data import make_shop


def test_guest_browses(db, site, ui, shots):
    shop = make_shop(db)
    page = ui()
    page.goto(site + "/")
    expect(page.locator("h1")).to_have_text("Marketplace")
    expect(page.locator("nav.bar")).to_contain_text("Log in")
    expect(page.locator("article.item h3")).to_have_text(["Widget"])
    shots(page, "home")

    page.fill("#f-q", "widg")
    submit(page, "form.search button")
    assert "/marketplace.php?q=widg" in page.url
    expect(page.locator("main")).to_contain_text("1 item found")
    page.select_option("#f-category", label="Services")
    submit(page, "form.search button")
    expect(page.locator("main")).to_contain_text("No items found")
    page.select_option("#f-category", label="Digital goods")
    submit(page, "form.search button")
    expect(page.locator("article.item")).to_have_count(1)
    shots(page, "search")

    submit(page, "article.item h3 a")
    expect(page.locator("h1")).to_have_text("Widget")
    package = page.locator("section.package")
    expect(package.locator("h3")).to_have_text("Single — $20.00")
    expect(package.locator("table.quotes")).to_contain_text("0.01 ETH")  # $20 at $2000 per ETH
    shots(page, "item")

    submit(page, "text=Acme")
    expect(page.locator("h1")).to_contain_text("Acme")
    expect(page.locator("main")).to_contain_text("We sell widgets.")
    submit(page, "nav.bar >> text=Vendors")
    expect(page.locator("table")).to_contain_text("Acme")
    shots(page, "vendors")

    # Buying needs an account: the login form, then straight back to the checkout.
    page.goto(f"{site}/item.php?uuid={shop['item']['uuid']}")
    submit(page, "text=Buy this package")
    assert "/login.php?next=" in page.url
    fill_and_submit(page, {"#f-username": "buyer1", "#f-password": "password123"}, LOGIN_BUTTON)
    expect(page.locator("h1")).to_have_text("Checkout")
    expect(page.locator("nav.bar")).to_contain_text("buyer1")
    shots(page, "checkout-after-login")
