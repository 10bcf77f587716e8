"""GET/POST /api/recovery-codes.php : my recovery codes (lib.recovery), for API clients.

GET -> {"codes_left"}: how many unused codes I have.
POST `password` (my current one) -> {"ok": true, "recovery_codes": [10 codes], "codes_left": 10}:
a new set, shown only in this answer; the old set stops working. A wrong password is 403
(nothing changes). The settings page does the same (form=recovery_codes).
"""
from lib import auth, recovery, users
from lib.db import get_db
from lib.http import BadRequest, json_response


def get(request):
    user = auth.require_user(request)
    return json_response({"codes_left": recovery.codes_left(get_db(), user["uuid"])})


def post(request):
    user = auth.require_user(request)
    db = get_db()
    given = request.data.get("password")
    if not isinstance(given, str) or given == "":
        raise BadRequest("password is required (your current password)", fields={"password": "required"})
    users.require_current_password(db, user["uuid"], given)
    codes = recovery.issue_codes(db, user["uuid"], request.client_ip)
    return json_response({"ok": True, "recovery_codes": codes, "codes_left": len(codes)},
                         headers=[("Cache-Control", "no-store")])
