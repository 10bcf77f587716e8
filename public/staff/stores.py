"""GET/POST /staff/stores.php : every store; staff suspend, reinstate, set the tier.

POST `store_uuid`, `action` = suspend | reinstate | tier (+ `tier`) -> lib.catalog.
"""
from lib import catalog, config, web
from lib.db import get_db
from lib.http import BadRequest, HttpError

TITLE = "Stores"


def _page(request, db, status=200, error=None):
    pager = web.pager(request, lambda limit, offset: catalog.list_stores(
        db, limit=limit, offset=offset, include_suspended=True))
    return web.page(request, "staff/stores.html", TITLE, status=status, error=error, pager=pager,
                    tiers=config.TIERS, staff_tab="stores", nav_active="staff")


def get(request):
    web.staff(request)
    return _page(request, get_db())


def post(request):
    user = web.staff(request)
    db = get_db()
    data = request.data
    action = data.get("action")
    store_uuid = data.get("store_uuid")
    try:
        if action in ("suspend", "reinstate"):
            catalog.set_store_suspended(db, user, store_uuid, action == "suspend")
            message = "Store suspended: it is hidden and cannot sell." if action == "suspend" else "Store reinstated."
        elif action == "tier":
            catalog.set_store_tier(db, user, store_uuid, data.get("tier"))
            message = f"Tier set to {data.get('tier')}."
        else:
            raise BadRequest("action must be suspend, reinstate or tier")
    except HttpError as e:
        return _page(request, db, status=e.status, error=e.message)
    web.flash(request, message)
    return web.see_other(web.same_page(request))
