"""GET/POST /staff/stores.php : every store; staff suspend, reinstate, set the tier.

POST `store_uuid`, `action` = suspend | reinstate | tier (+ `tier`) -> lib.catalog.
"""
from lib import catalog, config, web
from lib.db import get_db

TITLE = "Stores"


def _page(request, db, user=None, error=None):
    pager = web.pager(request, lambda limit, offset: catalog.list_stores(
        db, limit=limit, offset=offset, include_suspended=True))
    return web.form_page(request, "staff/stores.html", TITLE, error, pager=pager,
                         tiers=config.TIERS, staff_tab="stores", nav_active="staff")


def _suspend(request, db, user):
    catalog.set_store_suspended(db, user, request.data.get("store_uuid"), True)
    return "Store suspended: it is hidden and cannot sell."


def _reinstate(request, db, user):
    catalog.set_store_suspended(db, user, request.data.get("store_uuid"), False)
    return "Store reinstated."


def _tier(request, db, user):
    catalog.set_store_tier(db, user, request.data.get("store_uuid"), request.data.get("tier"))
    return f"Tier set to {request.data.get('tier')}."


ACTIONS = {"suspend": _suspend, "reinstate": _reinstate, "tier": _tier}


def get(request):
    return _page(request, get_db(), web.staff(request))


def post(request):
    return web.act(request, web.staff(request), ACTIONS, _page)
