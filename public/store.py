"""GET /store.php?uuid= : a store and its items."""
from lib import catalog, catalog_cache, pricing, web
from lib.db import get_db
from lib.http import HttpError


def get(request):
    db = get_db()
    return catalog_cache.serve(request, db, lambda: _get(request, db), pricing.rates_valid_until)


def _get(request, db):
    user = web.user(request)
    store_uuid = request.arg("uuid")
    if not store_uuid:
        raise HttpError(400, "uuid is required: /store.php?uuid=STORE_UUID")
    store = catalog.get_store(db, store_uuid, user)
    pager = web.pager(request, lambda limit, offset: catalog.list_items(
        db, store_uuid=store["uuid"], limit=limit, offset=offset))
    is_member = catalog.member_role(db, user, store["uuid"]) is not None
    return web.page(request, "store.html", store["storename"], store=store, pager=pager,
                    is_member=is_member, nav_active="vendors")
