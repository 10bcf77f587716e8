"""In Chromium: a buyer reviews an order after its release (and the store
answers), a vendor uploads an image that then shows on the marketplace card, and a file
that is not an image is refused with the field named."""
import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from lib import status_machine as sm
from tests.browser.helpers import signed_in, submit
from tests.test_pages import paid_order
from tests.ui_data import make_shop


def test_buyer_reviews_after_release_and_the_store_answers(db, site, ui, shots):
    shop = make_shop(db)
    order = paid_order(db, shop)
    required = db.value("SELECT required_amount FROM evm_transactions WHERE transaction_uuid = ?", (order,))
    sm.append_status(db, order, sm.RELEASED, required, "released to the vendor")
    buyer = signed_in(ui, site, "buyer1", f"/payment.php?uuid={order}")
    submit(buyer, "#review-link")
    shots(buyer, "review-form")
    buyer.select_option("#f-score", "4")
    buyer.fill("#f-body", "Arrived quickly, <works> as described.")
    submit(buyer, "#review-form button[type=submit]")
    expect(buyer.locator(".flash")).to_have_text("Thank you: your review is published.")
    expect(buyer.locator("#store-rating")).to_have_text("★ 4.00 from 1 review")
    expect(buyer.locator(".review").first).to_contain_text("Arrived quickly, <works> as described.")
    shots(buyer, "store-with-review")
    # a second review of the same order is not offered
    buyer.goto(f"{site}/review/add.php?transaction_uuid={order}")
    expect(buyer.locator("main")).to_contain_text("You reviewed this order")
    expect(buyer.locator("#review-form")).to_have_count(0)

    vendor = signed_in(ui, site, "vendor1", f"/store.php?uuid={shop['store']['uuid']}")
    vendor.fill(".reply-form textarea", "Thank you, come back soon!")
    submit(vendor, ".reply-form button[type=submit]")
    expect(vendor.locator(".flash")).to_have_text("Your answer is published.")
    expect(vendor.locator(".review .reply")).to_contain_text("Thank you, come back soon!")
    expect(vendor.locator(".reply-form")).to_have_count(0)
    shots(vendor, "store-answered")
    vendor.goto(f"{site}/user.php?username=vendor1")
    expect(vendor.locator("#profile-name")).to_have_text("vendor1")
    expect(vendor.locator("main")).to_contain_text("Arrived quickly")
    shots(vendor, "vendor-profile")
    assert db.value("SELECT COUNT(*) FROM reviews") == 1


@pytest.fixture
def settings(tmp_path):
    return {"ALLOW_DEV_CHAIN": "1", "MEDIA_DIR": str(tmp_path / "media")}


def test_vendor_uploads_an_image_that_shows_on_the_card(db, site, ui, shots, tmp_path):
    shop = make_shop(db)
    picture = tmp_path / "widget.png"
    Image.new("RGB", (800, 600), (30, 140, 90)).save(picture, "PNG")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("shopping list: milk, eggs\n")
    vendor = signed_in(ui, site, "vendor1", f"/item/edit.php?uuid={shop['item']['uuid']}")
    vendor.set_input_files("#f-image", str(not_an_image))
    submit(vendor, "#image-upload-form button[type=submit]")
    expect(vendor.locator(".error-box, .error").first).to_contain_text("image: not a valid JPEG, PNG or WebP image")
    shots(vendor, "not-an-image-refused")
    assert db.value("SELECT COUNT(*) FROM item_images") == 0
    vendor.goto(f"{site}/item/edit.php?uuid={shop['item']['uuid']}")
    vendor.set_input_files("#f-image", str(picture))
    submit(vendor, "#image-upload-form button[type=submit]")
    expect(vendor.locator(".flash")).to_have_text("Image added.")
    expect(vendor.locator(".image-list img")).to_have_count(1)
    shots(vendor, "image-uploaded")
    image = db.one("SELECT uuid FROM item_images")
    guest = ui()
    guest.goto(f"{site}/marketplace.php")
    card_image = guest.locator(f"article.card.item img[src='/media/items/{image['uuid']}.thumb.png']")
    expect(card_image).to_have_count(1)
    assert card_image.evaluate("img => img.complete && img.naturalWidth") == 400
    expect(guest.locator("article.card.item .price")).to_have_text("from $20.00")
    expect(guest.locator("article.card.item .rating")).to_have_text("no reviews yet")
    shots(guest, "marketplace-card-with-image")
    buf = io.BytesIO((tmp_path / "media" / "items" / f"{image['uuid']}.png").read_bytes())
    with Image.open(buf) as stored:
        assert stored.size == (800, 600)
