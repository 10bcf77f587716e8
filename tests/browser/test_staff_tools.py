"""In Chromium: staff build the category tree; an admin publishes the
vendorship agreement and a vendor accepts it; the tier page."""
from playwright.sync_api import expect

from tests import market
from tests.browser.helpers import signed_in, submit
from tests.factories import make_user


def test_categories_agreement_and_tiers_in_the_browser(db, site, ui, shots):
    make_user(db, "staff1", role="staff")
    make_user(db, "admin1", role="admin")
    vendor = make_user(db, "vendor1")
    market.store(db, vendor)

    staff = signed_in(ui, site, "staff1", "/staff/categories.php")
    staff.fill("#add-category input[name=name]", "Books")
    submit(staff, "#add-category button")
    expect(staff.locator(".flash")).to_have_text("Category Books added.")
    staff.fill("#add-category input[name=name]", "Novels")
    staff.select_option("#add-category select[name=parent_id]", label="Books")
    submit(staff, "#add-category button")
    expect(staff.locator("#categories")).to_contain_text("— Novels")
    shots(staff, "staff-categories")
    staff.goto(f"{site}/marketplace.php")
    expect(staff.locator("select[name=category]")).to_contain_text("— Novels")

    admin = signed_in(ui, site, "admin1", "/verification/agreement.php")
    admin.fill("#edit-agreement textarea[name=body]", "Ship within three days.")
    submit(admin, "#edit-agreement button")
    expect(admin.locator(".flash")).to_contain_text("Version 1")

    page = signed_in(ui, site, "vendor1", "/verification/agreement.php")
    expect(page.locator("#agreement-text")).to_contain_text("Ship within three days.")
    expect(page.locator("#my-acceptance")).to_contain_text("not accepted")
    submit(page, "#accept-agreement button")
    expect(page.locator(".flash")).to_contain_text("You accepted version 1")
    expect(page.locator("#my-acceptance")).to_contain_text("accepted version 1")
    shots(page, "vendor-accepted-agreement")
    page.goto(f"{site}/verification/plan.php")
    expect(page.locator("#tier-gold")).to_contain_text("2%")
    expect(page.locator("#tier-free")).to_contain_text("20%")
