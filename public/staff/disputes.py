"""GET /staff/disputes.php?status=open|resolved : every dispute (staff); resolve on /dispute.php."""
from lib import disputes, web
from lib.db import get_db


def get(request):
    user = web.staff(request)
    db = get_db()
    status = disputes.parse_status(request.arg("status"))
    pager = web.pager(request, lambda limit, offset: disputes.list_disputes(
        db, user, limit=limit, offset=offset, status=status))
    return web.page(request, "staff/disputes.html", "Disputes", pager=pager, staff_tab="disputes",
                    nav_active="staff")
