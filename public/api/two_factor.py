"""GET/POST /api/two-factor.php : my two-factor login (lib.totp), for API clients.

GET -> {"enabled", "pending" (a key made, not yet confirmed), "required" (the config
requires it of me, staff, and I have not enrolled)}.
POST action=begin -> {"ok", "enabled": false, "pending": true, "required", "secret", "otpauth_uri"}:
a new key (shown only here; put it in an authenticator app) | confirm (`otp`: its current
6-digit code; turns it on) | disable (`otp`: a code or a recovery code) -> {"ok", ...GET's fields}.
400 wrong code, 409 already on (begin, confirm) or not on (disable). The settings page is
/settings/two-factor.php.
"""
from lib import auth, totp, web
from lib.db import get_db
from lib.http import BadRequest, json_response


def _state(db, user):
    row = db.one("SELECT totp_secret, totp_enabled FROM users WHERE uuid = ?", (user["uuid"],))
    return {"enabled": bool(row["totp_enabled"]), "pending": bool(row["totp_secret"]) and not row["totp_enabled"],
            "required": totp.staff_must_enroll(db, user)}


def get(request):
    user = auth.require_user(request)
    return json_response(_state(get_db(), user))


def post(request):
    user = auth.require_user(request)
    db = get_db()
    d = request.data
    action = d.get("action")
    if action == "begin":
        secret = totp.begin(db, user["uuid"], request.client_ip)
        return json_response(dict({"ok": True, "secret": secret,
                                   "otpauth_uri": totp.uri(secret, user["username"], web.site_name())},
                                  **_state(db, user)), headers=[("Cache-Control", "no-store")])
    otp = d.get("otp")
    if otp is not None and (not isinstance(otp, str) or len(otp) > 64):
        raise BadRequest("otp must be a code of at most 64 characters", fields={"otp": "bad"})
    if action == "confirm":
        totp.confirm(db, user["uuid"], otp, request.client_ip)
    elif action == "disable":
        totp.disable(db, user["uuid"], otp, request.client_ip)
    else:
        raise BadRequest("action must be begin, confirm or disable", fields={"action": "bad"})
    return json_response(dict({"ok": True}, **_state(db, user)))
