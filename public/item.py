"""GET /item.php?uuid= : an item with its images, rating and reviews, its packages and a
live price per accepted token."""
from lib import catalog, catalog_cache, images, pricing, reviews, tokens, web


def get(request):
    return catalog_cache.serve(request, _get, pricing.rates_valid_until)


def _get(request, db):
    user = web.user(request)
    item = catalog.get_item(db, request.required_arg("uuid", "/item.php?uuid=ITEM_UUID"), user)
    packages = catalog.add_quotes(db, catalog.list_packages(db, item["uuid"], user),
                                  tokens.tokens_for_store(db, item["store_uuid"]))
    is_member = catalog.member_role(db, user, item["store_uuid"]) is not None
    return web.page(request, "item.html", item["name"], item=item, packages=packages,
                    is_member=is_member, nav_active="marketplace", images=images.list_images(db, item["uuid"]),
                    rating=reviews.rating(db, item_uuid=item["uuid"]),
                    reviews=reviews.list_reviews(db, user, item_uuid=item["uuid"], limit=20),
                    can_reply=is_member, can_hide=catalog.is_staff(user), show_store=False)
