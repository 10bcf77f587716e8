"""GET/POST /settings/two-factor.php : two-factor login (TOTP, lib.totp).

POST `form=begin`: a new secret, shown with a QR code of its otpauth:// URI (until
confirmed; a new `begin` replaces it); `form=confirm` with `otp` (a first code) turns it on;
`form=disable` with `otp` (a code or a recovery code) turns it off. Non-browser clients get
JSON: {"secret", "otpauth_uri"} for begin, {"enabled"} otherwise.
"""
from lib import payment_uri, totp, web
from lib.db import get_db
from lib.http import json_response

TITLE = "Two-factor login"


def _ctx(db, user):
    row = db.one("SELECT totp_secret, totp_enabled FROM users WHERE uuid = ?", (user["uuid"],))
    ctx = {"enabled": bool(row["totp_enabled"]), "secret": None, "qr": None, "otpauth": None,
           "required": totp.staff_must_enroll(db, user), "nav_active": "settings"}
    if not row["totp_enabled"] and row["totp_secret"]:
        ctx["secret"] = row["totp_secret"]
        ctx["otpauth"] = totp.uri(row["totp_secret"], user["username"], web.site_name())
        ctx["qr"] = payment_uri.qr_data_uri(ctx["otpauth"])
    return ctx


def _page(request, db, user, error=None):
    # The page can show the pending secret: no cache may keep it, after an error neither.
    return web.form_page(request, "settings/two_factor.html", TITLE, error,
                         **_ctx(db, user)).header("Cache-Control", "no-store")


def get(request):
    return _page(request, get_db(), web.login(request))


def _begin(request, db, user):
    secret = totp.begin(db, user["uuid"], request.client_ip)
    if not request.wants_html:
        return json_response({"secret": secret, "otpauth_uri": totp.uri(secret, user["username"], web.site_name())},
                             headers=[("Cache-Control", "no-store")])
    return web.see_other(totp.ENROLL_PATH)


def _confirm(request, db, user):
    totp.confirm(db, user["uuid"], request.data.get("otp"), request.client_ip)
    return _done(request, db, user, "Two-factor login is on. Keep your recovery codes: each works in place of a code once.")


def _disable(request, db, user):
    totp.disable(db, user["uuid"], request.data.get("otp"), request.client_ip)
    return _done(request, db, user, "Two-factor login is off.")


def _done(request, db, user, message):
    """The flash message for a browser; {"enabled"} for any other client."""
    if not request.wants_html:
        return json_response({"enabled": totp.enabled(db, user["uuid"])})
    return message


FORMS = {"begin": _begin, "confirm": _confirm, "disable": _disable}


def post(request):
    return web.act(request, web.login(request), FORMS, _page, field="form", passes=lambda e: not request.wants_html,
                   location=totp.ENROLL_PATH)
