"""GET/POST /staff/payouts.php : payouts that need staff.

GET lists the intents needing attention (order, action, reason, each live leg) and the
open staff flags, with the warnings of lib.staff.payout_figures.
POST (csrf_token) the same actions as POST /api/payout-actions.php: `intent_uuid` +
`action` = retry | redirect (`payout_id`, `to_address`) | abandon (`comment`), or
`action` = rescue + `flag_id`; then 303 back here with a flash message.
"""
from lib import staff, web
from lib.db import get_db

TITLE = "Payouts"

DONE = {
    "retry": "Retry queued: cron re-plans and re-signs the unpaid legs at current fees on its next run.",
    "redirect": "Redirect saved: cron pays the failed leg to the new address on its next run.",
    "abandon": "Failed legs marked as settled off-platform; the order finalizes with the legs that landed.",
    "rescue": "Rescue queued: cron refunds the flagged funds to the buyer on its next run.",
}


def _page(request, db, user, error=None):
    rows = staff.payouts_needing_attention(db)
    figures = staff.payout_figures(db)
    return web.form_page(request, "staff/payouts.html", TITLE, error,
                         intents=rows, parties=staff.party_intents(db, user, rows),
                         flags=staff.list_open_flags(db, limit=200), figures=figures,
                         staff_tab="payouts", nav_active="staff")


def _act(request, db, user):
    result = staff.payout_action(db, user, request.data, ip=request.client_ip)
    message = DONE.get(result.get("action"), "Done.")
    return message + " (intent %s is now %s)" % (result["intent_uuid"][:8], result["status"])


def get(request):
    return _page(request, get_db(), web.staff(request))


def post(request):
    return web.submit(request, web.staff(request), _act, _page, location="/staff/payouts.php")
