"""GET /deposits.php : my stores' deposits (vendors: members of a store)."""
from lib import catalog, deposits, web
from lib.db import get_db
from lib.http import Forbidden


def require_vendor(db, request):
    user = web.login(request)
    if not catalog.user_store_uuids(db, user["uuid"]):
        raise Forbidden("deposits belong to stores: open a store first (/create-store.php)")
    return user


def get(request):
    db = get_db()
    user = require_vendor(db, request)
    pager = web.pager(request, lambda limit, offset: deposits.list_deposits(db, user, limit=limit, offset=offset))
    return web.page(request, "deposits.html", "Deposits", pager=pager, nav_active="deposits")
