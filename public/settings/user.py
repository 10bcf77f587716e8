"""GET/POST /settings/user.php : refund and payout addresses, password change, my sessions and keys.

POST `form=addresses` with `refund_address`, `payout_address` (lib.users.set_addresses, as
/api/user-settings.php); `form=password` with `old_password`, `new_password`,
`new_password2` (lib.users.change_password; other sessions end); `form=end_session` with
`id` ends one of my sessions (lib.session.end, as POST /api/sessions-end.php; 404 if not mine);
`form=revoke_key` with `id` revokes one of my keys (as POST /api/keys-revoke.php).
With email configured (lib.mail.enabled): `form=email` with `email` mails a verification
link; `form=email_remove`; `form=email_notify` with a checkbox `notify_<kind>` per kind
that stays on (notify_order_paid, notify_order_dispatched, notify_order_released,
notify_dispute, notify_message); without email these forms are 404 and the page has no email section.
The page lists my active sessions (the current one marked) and my API keys.
`form=recovery_codes` with `password` (the current one): a new set of 10 recovery codes,
shown once on the answer page; the old set stops working (lib.recovery).
"""
from lib import account_pages, api_keys, mail, recovery, session, users, web
from lib.db import get_db
from lib.http import BadRequest, HttpError

TITLE = "Settings"


def _form(user):
    return {"refund_address": user.get("refund_address") or "", "payout_address": user.get("payout_address") or ""}


def _glance(request, user):
    """My sessions and keys for the page."""
    db = get_db()
    current = request.session["id"] if request.session else None
    out = {"email_enabled": mail.enabled()}
    if out["email_enabled"]:
        out["email"] = mail.settings_of(db, user["uuid"])
        out["email_kinds"] = [{"name": "notify_" + k.replace(".", "_"), "label": label,
                               "on": out["email"]["notifications"][k]} for k, label in mail.KINDS.items()]
    out["sessions"] = session.list_for_user(db, user["uuid"], current)
    out["keys"] = [dict(k, scopes_text=", ".join(k["scopes"]) if isinstance(k["scopes"], list) else k["scopes"])
                   for k in api_keys.list_keys(db, user["uuid"])]
    return out


def get(request):
    user = web.login(request)
    return web.page(request, "settings/user.html", TITLE, form=_form(user), **_glance(request, user),
                    codes_left=recovery.codes_left(get_db(), user["uuid"]))


def post(request):
    user = web.login(request)
    db = get_db()
    data = request.data
    which = data.get("form") or ("password" if "new_password" in data else "addresses")
    try:
        if which == "addresses":
            # A field the form did not send stays as it is ('' clears, as in the API).
            users.set_addresses(db, user["uuid"], data.get("refund_address"), data.get("payout_address"),
                                request.client_ip)
            message = "Addresses saved."
        elif which == "password":
            new = data.get("new_password")
            if new != data.get("new_password2"):
                raise BadRequest("the new passwords do not match", fields={"new_password2": "does not match"})
            users.change_password(db, user["uuid"], data.get("old_password"), new, request.client_ip,
                                  keep_session_id=request.session["id"] if request.session else None)
            message = "Password changed. Your other sessions were logged out."
        elif which == "end_session":
            from lib.http import parse_id
            session_id = parse_id(request.field("id", required=True, max_length=20))
            session.end(db, user["uuid"], session_id, request.client_ip)
            if request.session and request.session["id"] == session_id:
                return web.see_other("/")
            message = "That session was signed out."
        elif which == "email":
            address = mail.request_verification(db, user, data.get("email"), request.client_ip)
            message = f"A verification link is on its way to {address}."
        elif which == "email_remove":
            mail.require_enabled()
            mail.remove_email(db, user["uuid"], request.client_ip)
            message = "Email address removed."
        elif which == "email_notify":
            mail.require_enabled()
            mail.set_notifications(db, user["uuid"], [k for k in mail.KINDS
                                                      if data.get("notify_" + k.replace(".", "_")) not in
                                                      (None, "", "0")], request.client_ip)
            message = "Email notifications saved."
        elif which == "revoke_key":
            from lib.http import parse_id
            api_keys.revoke(db, user["uuid"], parse_id(request.field("id", required=True, max_length=20)),
                            request.client_ip)
            message = "API key revoked."
        elif which == "recovery_codes":
            users.require_current_password(db, user["uuid"], data.get("password"))
            codes = recovery.issue_codes(db, user["uuid"], request.client_ip)
            return account_pages.codes_page(codes, "/settings/user.php")
        else:
            raise BadRequest("form must be addresses, password, recovery_codes, end_session, revoke_key or email*")
    except HttpError as e:
        form = _form(user)
        if which == "addresses":
            form.update({k: data.get(k, "") for k in ("refund_address", "payout_address")})
        if e.status in (404, 409):
            raise
        return web.form_error(request, e, "settings/user.html", TITLE, form=form, **_glance(request, user),
                              codes_left=recovery.codes_left(db, user["uuid"]))
    web.flash(request, message)
    return web.see_other("/settings/user.php")
