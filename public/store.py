"""GET /store.php?uuid= : a store and its items."""
from lib import catalog, web
from lib.db import get_db
from lib.http import BadRequest


def get(request):
    db = get_db()
    user = web.user(request)
    store_uuid = request.arg("uuid")
    if not store_uuid:
        raise BadRequest("uuid is required: /store.php?uuid=STORE_UUID")
    store = catalog.get_store(db, store_uuid, user)
    pager = web.pager(request, lambda limit, offset: catalog.list_items(
        db, store_uuid=store["uuid"], limit=limit, offset=offset))
    is_member = catalog.member_role(db, user, store["uuid"]) is not None
    return web.page(request, "store.html", store["storename"], store=store, pager=pager,
                    is_member=is_member, nav_active="vendors")
