"""GET/POST /create-store.php : open a store (agree to the vendorship terms).

POST `storename`, `description`, `vendorship_agree=1` -> lib.catalog.create_store (as
POST /api/stores.php): the creator becomes its owner and a vendor.
"""
from lib import catalog, config, web
from lib.db import get_db

TITLE = "Open a store"


def _commission(db):
    return f"{config.commission(db, 'free') * 100:.0f}%"


def _context(db, user):
    from lib import agreement
    current = agreement.current(db)
    can_sell = str(db.value("SELECT can_sell FROM users WHERE uuid = ?", (user["uuid"],), default=1)) != "0"
    return {"commission": _commission(db), "agreement_version": current["version"] if current else None,
            "can_sell": can_sell}


def _page(request, db, user, error=None):
    return web.form_page(request, "create_store.html", TITLE, error, **_context(db, user))


def _create(request, db, user):
    data = request.data
    store = catalog.create_store(db, user, data.get("storename"), data.get("description"),
                                 agreed=data.get("vendorship_agree"))
    message = f"Your store {store['storename']} is open. Set its payout address, then add items."
    return web.see_other(web.url("/settings/store.php", uuid=store["uuid"]), message, request)


def get(request):
    return _page(request, get_db(), web.login(request))


def post(request):
    return web.submit(request, web.login(request), _create, _page)
