"""GET /staff/deposits.php : every deposit of every store (staff), paginated.

Each row: store, chain, currency, address (or pending), balance, USD value, the open
withdrawal (lib.deposits.list_all). The same list as JSON: GET /api/deposits.php?all=1
(or this URL from a client that does not ask for HTML: {"deposits", "limit", "offset"}).
"""
from lib import deposits, web
from lib.db import get_db
from lib.http import json_response

TITLE = "All deposits"


def get(request):
    user = web.staff(request)
    db = get_db()
    if not request.wants_html:
        limit, offset = request.page()
        return json_response({"deposits": deposits.list_all(db, user, limit, offset), "limit": limit,
                              "offset": offset})
    pager = web.pager(request, lambda limit, offset: deposits.list_all(db, user, limit=limit, offset=offset))
    return web.page(request, "staff/deposits.html", TITLE, pager=pager, staff_tab="deposits", nav_active="staff")
