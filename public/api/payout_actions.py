"""GET/POST /api/payout-actions.php : staff recover payouts. Staff and admins only.

GET -> {"needs_attention": [intent with its live legs], "flags": [open staff flag],
"chains": [per-chain figures], "totals": {counts}, "warnings": [text]} (lib.staff).

POST `intent_uuid` + `action` = retry | redirect (`payout_id`, `to_address` checksummed) |
abandon (`comment`) -> lib.intents.staff_action; `action` = rescue + `flag_id` ->
lib.intents.rescue. Answers {"ok": true, "action", "intent_uuid", "status"} (rescue adds
"flag_id"). 400 bad input (nothing changes), 403 not staff or a party to the order,
404 unknown intent or flag, 409 wrong state. Session requests need the CSRF token.
"""
from lib import auth, staff
from lib.db import get_db
from lib.http import json_response


def get(request):
    auth.require_role(request, *staff.STAFF_ROLES)
    db = get_db()
    figures = staff.payout_figures(db)
    return json_response({"needs_attention": staff.payouts_needing_attention(db),
                          "flags": staff.list_open_flags(db, limit=200),
                          "chains": figures["chains"], "totals": figures["totals"],
                          "warnings": figures["warnings"]})


def post(request):
    user = auth.require_role(request, *staff.STAFF_ROLES)
    result = staff.payout_action(get_db(), user, request.data, ip=request.client_ip)
    return json_response(result)
