"""GET /staff/stats.php : order, user and store counts; the last cron run."""
from lib import staff, status_machine, web
from lib.db import get_db


def get(request):
    web.staff(request)
    return web.page(request, "staff/stats.html", "Stats", stats=staff.stats(get_db()),
                    statuses=status_machine.STATUSES, staff_tab="stats", nav_active="staff")
