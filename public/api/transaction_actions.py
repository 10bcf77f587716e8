"""POST /api/transaction-actions.php

transaction_uuid, action = release | cancel | partial_refund (refund_percent 1-100) |
dispatch | confirm | dispute (optional comment)
-> {"ok": true, "action", "transaction_uuid", "intent": "RELEASE" | "CANCEL" |
"PARTIAL_REFUND" | null (the original's shape), "intent_detail": {uuid, action, status,
refund_percent} | null}. 403 not this person, 409 wrong state or a payout already
in progress, 404 not my order (SPEC section 6).
"""
from lib import auth, compat, orders
from lib.db import get_db
from lib.http import BadRequest, json_response


def post(request):
    user = auth.require_user(request)
    d = request.data
    if not d.get("transaction_uuid"):
        raise BadRequest("transaction_uuid is required", fields={"transaction_uuid": "required"})
    result = orders.take_action(get_db(), user, d.get("transaction_uuid"), d.get("action"),
                                refund_percent=d.get("refund_percent"), comment=d.get("comment"),
                                ip=request.client_ip)
    return json_response(compat.action_result(result))
