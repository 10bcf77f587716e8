"""GET /store.php?uuid= : a store, its active staff warnings, its rating and reviews, and its items."""
from lib import catalog, catalog_cache, item_cards, pricing, reviews, store_warnings, web


def get(request):
    return catalog_cache.serve(request, _get, pricing.rates_valid_until)


def _get(request, db):
    user = web.user(request)
    store = catalog.get_store(db, request.required_arg("uuid", "/store.php?uuid=STORE_UUID"), user)
    pager = web.pager(request, lambda limit, offset: catalog.list_items(
        db, store_uuid=store["uuid"], limit=limit, offset=offset))
    item_cards.add_card_facts(db, pager.rows)
    is_member = catalog.member_role(db, user, store["uuid"]) is not None
    owner = catalog.store_owner(db, store["uuid"])
    return web.page(request, "store.html", store["storename"], store=store, pager=pager, owner=owner,
                    is_member=is_member, nav_active="vendors", warnings=store_warnings.active(db, store["uuid"]),
                    rating=reviews.rating(db, store_uuid=store["uuid"]),
                    reviews=reviews.list_reviews(db, user, store_uuid=store["uuid"], limit=50),
                    can_reply=is_member, can_hide=catalog.is_staff(user), show_store=False)
