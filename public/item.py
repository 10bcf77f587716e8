"""GET /item.php?uuid= : an item with its packages and a live price per accepted token."""
from lib import catalog, tokens, web
from lib.db import get_db
from lib.http import BadRequest


def get(request):
    db = get_db()
    user = web.user(request)
    item_uuid = request.arg("uuid")
    if not item_uuid:
        raise BadRequest("uuid is required: /item.php?uuid=ITEM_UUID")
    item = catalog.get_item(db, item_uuid, user)
    packages = catalog.add_quotes(db, catalog.list_packages(db, item["uuid"], user),
                                  tokens.tokens_for_store(db, item["store_uuid"]))
    is_member = catalog.member_role(db, user, item["store_uuid"]) is not None
    return web.page(request, "item.html", item["name"], item=item, packages=packages,
                    is_member=is_member, nav_active="marketplace")
