"""GET/POST /staff/payouts.php : payouts that need staff.

GET lists the intents needing attention (order, action, reason, each live leg) and the
open staff flags, with the warnings of lib.staff.payout_figures.
POST (csrf_token) the same actions as POST /api/payout-actions.php: `intent_uuid` +
`action` = retry | redirect (`payout_id`, `to_address`) | abandon (`comment`), or
`action` = rescue + `flag_id`; then 303 back here with a flash message.
"""
from lib import staff, web
from lib.db import get_db
from lib.http import HttpError

TITLE = "Payouts"

DONE = {
    "retry": "Retry queued: cron re-plans and re-signs the unpaid legs at current fees on its next run.",
    "redirect": "Redirect saved: cron pays the failed leg to the new address on its next run.",
    "abandon": "Failed legs marked as settled off-platform; the order finalizes with the legs that landed.",
    "rescue": "Rescue queued: cron refunds the flagged funds to the buyer on its next run.",
}


def _page(request, db, user, status=200, error=None, errors=None):
    rows = staff.payouts_needing_attention(db)
    figures = staff.payout_figures(db)
    return web.page(request, "staff/payouts.html", TITLE, status=status, error=error, errors=errors or {},
                    intents=rows, parties=staff.party_intents(db, user, rows),
                    flags=staff.list_open_flags(db, limit=200), figures=figures,
                    form=dict(request.data) if request.method == "POST" else {},
                    staff_tab="payouts", nav_active="staff")


def get(request):
    user = web.staff(request)
    return _page(request, get_db(), user)


def post(request):
    user = web.staff(request)
    db = get_db()
    try:
        result = staff.payout_action(db, user, request.data, ip=request.client_ip)
    except HttpError as e:
        return _page(request, db, user, status=e.status, error=e.message, errors=e.fields)
    message = DONE.get(result.get("action"), "Done.")
    web.flash(request, message + " (intent %s is now %s)" % (result["intent_uuid"][:8], result["status"]))
    return web.see_other("/staff/payouts.php")
