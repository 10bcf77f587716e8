"""GET /staff/deposits.php : every deposit of every store (staff), paginated.

Each row: store, chain, currency, address (or pending), balance, USD value, the open
withdrawal (lib.deposits.list_all). The same list as JSON: GET /api/staff-deposits.php.
"""
from lib import deposits, web
from lib.db import get_db

TITLE = "All deposits"


def get(request):
    user = web.staff(request)
    db = get_db()
    pager = web.pager(request, lambda limit, offset: deposits.list_all(db, user, limit=limit, offset=offset))
    return web.page(request, "staff/deposits.html", TITLE, pager=pager, staff_tab="deposits", nav_active="staff")
