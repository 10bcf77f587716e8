"""GET /item.php?uuid= : an item with its packages and a live price per accepted token."""
from lib import catalog, catalog_cache, pricing, tokens, web
from lib.db import get_db
from lib.http import HttpError


def get(request):
    db = get_db()
    return catalog_cache.serve(request, db, lambda: _get(request, db), pricing.rates_valid_until)


def _get(request, db):
    user = web.user(request)
    item_uuid = request.arg("uuid")
    if not item_uuid:
        raise HttpError(400, "uuid is required: /item.php?uuid=ITEM_UUID")
    item = catalog.get_item(db, item_uuid, user)
    packages = catalog.add_quotes(db, catalog.list_packages(db, item["uuid"], user),
                                  tokens.tokens_for_store(db, item["store_uuid"]))
    is_member = catalog.member_role(db, user, item["store_uuid"]) is not None
    return web.page(request, "item.html", item["name"], item=item, packages=packages,
                    is_member=is_member, nav_active="marketplace")
