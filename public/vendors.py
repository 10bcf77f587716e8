"""GET /vendors.php : the stores (suspended ones hidden)."""
from lib import catalog, web
from lib.db import get_db


def get(request):
    db = get_db()
    pager = web.pager(request, lambda limit, offset: catalog.list_stores(db, limit=limit, offset=offset))
    return web.page(request, "vendors.html", "Vendors", pager=pager, nav_active="vendors")
