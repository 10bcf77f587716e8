"""GET /vendors.php : the stores (suspended ones hidden)."""
from lib import catalog, replica, web


def get(request):
    db = replica.read_db(request)
    pager = web.pager(request, lambda limit, offset: catalog.list_stores(db, limit=limit, offset=offset))
    return web.page(request, "vendors.html", "Vendors", pager=pager, nav_active="vendors")
