"""GET/POST /settings/two-factor.php : two-factor login (TOTP, lib.totp).

POST `form=begin`: a new secret, shown with a QR code of its otpauth:// URI (until
confirmed; a new `begin` replaces it); `form=confirm` with `otp` (a first code) turns it on;
`form=disable` with `otp` (a code or a recovery code) turns it off. Non-browser clients get
JSON: {"secret", "otpauth_uri"} for begin, {"enabled"} otherwise.
"""
from lib import payment_uri, totp, web
from lib.db import get_db
from lib.http import BadRequest, HttpError, json_response

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


def get(request):
    user = web.login(request)
    db = get_db()
    return web.page(request, "settings/two_factor.html", TITLE, headers=[("Cache-Control", "no-store")],
                    **_ctx(db, user))


def post(request):
    user = web.login(request)
    db = get_db()
    data = request.data
    which = data.get("form")
    try:
        if which == "begin":
            secret = totp.begin(db, user["uuid"], request.client_ip)
            if not request.wants_html:
                return json_response({"secret": secret,
                                      "otpauth_uri": totp.uri(secret, user["username"], web.site_name())},
                                     headers=[("Cache-Control", "no-store")])
            return web.see_other(totp.ENROLL_PATH)
        elif which == "confirm":
            totp.confirm(db, user["uuid"], data.get("otp"), request.client_ip)
            message = "Two-factor login is on. Keep your recovery codes: each works in place of a code once."
        elif which == "disable":
            totp.disable(db, user["uuid"], data.get("otp"), request.client_ip)
            message = "Two-factor login is off."
        else:
            raise BadRequest("form must be begin, confirm or disable")
    except HttpError as e:
        if not request.wants_html:
            raise
        return web.form_error(request, e, "settings/two_factor.html", TITLE, **_ctx(db, user))
    if not request.wants_html:
        return json_response({"enabled": totp.enabled(db, user["uuid"])})
    web.flash(request, message)
    return web.see_other(totp.ENROLL_PATH)
