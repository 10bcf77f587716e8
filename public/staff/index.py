"""GET /staff/ : the staff overview (open disputes, counts, funds needing a decision, and the
payout engine's per-chain figures and warnings: lib.staff.payout_figures)."""
from lib import disputes, staff, web
from lib.db import get_db


def get(request):
    user = web.staff(request)
    db = get_db()
    return web.page(request, "staff/index.html", "Staff", stats=staff.stats(db),
                    flags=staff.list_open_flags(db), payouts=staff.payout_figures(db),
                    staff_tab="index", nav_active="staff",
                    disputes=disputes.list_disputes(db, user, limit=20, status="open"))
