"""GET /support.php : my support tickets (lib.tickets), newest first, with a link to open one."""
from lib import tickets, web
from lib.db import get_db


def get(request):
    user = web.login(request)
    db = get_db()
    pager = web.pager(request, lambda limit, offset: tickets.list_mine(db, user, limit, offset))
    return web.page(request, "support/list.html", "Support", pager=pager, nav_active="support")
