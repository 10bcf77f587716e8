"""GET/POST /settings/user.php : refund and payout addresses, password change.

POST `form=addresses` with `refund_address`, `payout_address` (lib.users.set_addresses, as
/api/user-settings.php); `form=password` with `old_password`, `new_password`,
`new_password2` (lib.users.change_password; other sessions end).
"""
from lib import users, web
from lib.db import get_db
from lib.http import HttpError

TITLE = "Settings"


def _form(user):
    return {"refund_address": user.get("refund_address") or "", "payout_address": user.get("payout_address") or ""}


def get(request):
    user = web.login(request)
    return web.page(request, "settings/user.html", TITLE, form=_form(user))


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
        else:
            raise HttpError(400, "form must be addresses or password")
    except HttpError as e:
        form = _form(user)
        if which == "addresses":
            form.update({k: data.get(k, "") for k in ("refund_address", "payout_address")})
        return web.form_error(request, e, "settings/user.html", TITLE, form=form)
    web.flash(request, message)
    return web.see_other("/settings/user.php")
