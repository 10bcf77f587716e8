"""GET/POST /verification/agreement.php : the vendorship agreement (lib.agreement).

GET: the current text and version (anyone); a store owner sees whether their stores
accepted it; an admin gets the edit form. Browsers get HTML; other clients JSON:
{"agreement": {"version", "body", "created_at"} | null, "history": [{"version", "created_at"}],
 "stores": [{"uuid", "storename", "agreement_version", "agreement_accepted_at", "accepted"}]}.
POST `action` = accept (store owner; optional `version` = what was read) | publish
(admin; `body`, the new text: a new version). 400 bad input naming the field (nothing
changes), 403 not an owner / not an admin, 409 no agreement yet or the version changed.
"""
from lib import agreement, auth, web
from lib.db import get_db
from lib.http import BadRequest, HttpError, json_response

TITLE = "Vendorship agreement"


def _page(request, db, user, status=200, error=None, errors=None):
    state = agreement.state(db, user)
    return web.page(request, "verification/agreement.html", TITLE, status=status, error=error,
                    errors=errors or {}, form=dict(request.data) if request.method == "POST" else {},
                    is_admin=bool(user) and user.get("role") == "admin", **state)


def get(request):
    user = auth.optional_user(request)
    db = get_db()
    if request.wants_html:
        return _page(request, db, user)
    return json_response(agreement.state(db, user))


def _act(request, db, user):
    data = request.data
    action = data.get("action")
    if action == "accept":
        version = agreement.accept(db, user, data.get("version"), ip=request.client_ip)
        return version, f"You accepted version {version} of the vendorship agreement."
    if action == "publish":
        row = agreement.publish(db, user, data.get("body"), ip=request.client_ip)
        return row["version"], f"Version {row['version']} of the vendorship agreement is published."
    raise BadRequest("action must be accept or publish", fields={"action": "bad"})


def post(request):
    user = web.login(request)
    db = get_db()
    if not request.wants_html:
        version, _message = _act(request, db, user)
        return json_response(dict({"ok": True, "version": version}, **agreement.state(db, user)))
    try:
        _version, message = _act(request, db, user)
    except HttpError as e:
        return _page(request, db, user, status=e.status, error=e.message, errors=e.fields)
    web.flash(request, message)
    return web.see_other(web.same_page(request))
