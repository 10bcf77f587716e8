"""GET/POST /settings/user.php : refund and payout addresses, password change.

POST `form=addresses` with `refund_address`, `payout_address` (lib.users.set_addresses, as
/api/user-settings.php); `form=password` with `old_password`, `new_password`,
`new_password2` (lib.users.change_password; other sessions end); `form=recovery_codes` with
`password` (the current one): a new set of 10 recovery codes, shown once on the answer
page; the old set stops working (lib.recovery).
"""
from lib import account_pages, recovery, users, web
from lib.db import get_db
from lib.http import HttpError

TITLE = "Settings"


def _form(user):
    return {"refund_address": user.get("refund_address") or "", "payout_address": user.get("payout_address") or ""}


def get(request):
    user = web.login(request)
    return web.page(request, "settings/user.html", TITLE, form=_form(user),
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
                raise HttpError(400, "the new passwords do not match", fields={"new_password2": "does not match"})
            users.change_password(db, user["uuid"], data.get("old_password"), new, request.client_ip,
                                  keep_session_id=request.session["id"] if request.session else None)
            message = "Password changed. Your other sessions were logged out."
        elif which == "recovery_codes":
            row = db.one("SELECT password_hash FROM users WHERE uuid = ?", (user["uuid"],))
            given = data.get("password")
            if not isinstance(given, str) or not users.verify_password(given, row["password_hash"]):
                raise HttpError(403, "the current password is wrong", fields={"password": "wrong password"})
            codes = recovery.issue_codes(db, user["uuid"], request.client_ip)
            return account_pages.codes_page(codes, "/settings/user.php")
        else:
            raise HttpError(400, "form must be addresses, password or recovery_codes")
    except HttpError as e:
        form = _form(user)
        if which == "addresses":
            form.update({k: data.get(k, "") for k in ("refund_address", "payout_address")})
        return web.form_error(request, e, "settings/user.html", TITLE, form=form,
                              codes_left=recovery.codes_left(db, user["uuid"]))
    web.flash(request, message)
    return web.see_other("/settings/user.php")
