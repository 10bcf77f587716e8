"""GET/POST /api/disputes.php

GET  -> {"disputes": [...], "limit", "offset"}: disputes of orders I am party to (every
     dispute for staff); ?status=open|resolved; ?uuid= -> {"dispute": {... "claims": [...]}}.
POST dispute_uuid, claim -> {"ok": true, "claim": {...}} (buyer, store members, staff);
POST dispute_uuid, resolution = release | refund | partial_refund (refund_percent 1-100),
     optional comment (staff only) -> {"ok": true, "dispute_uuid", "resolution", "action",
     "transaction_uuid", "intent": "RELEASE" | "CANCEL" | "PARTIAL_REFUND", "intent_detail":
     {...}} (as /api/transaction-actions.php answers): closes the dispute and writes the
     intent in one step.
A dispute carries the staff member who resolved it both as "resolved_by" and as the
original's "resolver_user_uuid".
"""
from lib import auth, compat, disputes
from lib.db import get_db
from lib.http import BadRequest, json_response, one_or_page


def get(request):
    user = auth.require_user(request)
    db = get_db()
    return one_or_page(request, "dispute", lambda uuid: disputes.get_dispute(db, user, uuid), "disputes",
                       lambda limit, offset: disputes.list_disputes(db, user, limit, offset, request.arg("status")))


def post(request):
    user = auth.require_user(request)
    db = get_db()
    d = request.data
    dispute_uuid = d.get("dispute_uuid")
    if not dispute_uuid or not isinstance(dispute_uuid, str):
        raise BadRequest("dispute_uuid is required", fields={"dispute_uuid": "required"})
    if d.get("resolution") not in (None, ""):
        return json_response(compat.action_result(disputes.resolve(
            db, user, dispute_uuid, d.get("resolution"), d.get("refund_percent"), d.get("comment"),
            request.client_ip)))
    claim = disputes.add_claim(db, user, dispute_uuid, d.get("claim"))
    return json_response({"ok": True, "claim": claim})
