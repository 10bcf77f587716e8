"""GET/POST /api/agreement.php : the vendorship agreement (lib.agreement), as JSON.

GET -> {"agreement": {"version", "body", "created_at"} | null, "history": [{"version", "created_at"}],
        "stores": [{"uuid", "storename", "agreement_version", "agreement_accepted_at", "accepted"}]}
        (anyone; `stores`: the caller's own stores, empty when anonymous).
POST action=accept (a store owner; optional `version`: the one read, 409 if it changed)
   | publish (admin; `body`: the new text, a new version) -> {"ok": true, "version", ...GET's fields}.
"""
from lib import agreement, auth
from lib.db import get_db
from lib.http import BadRequest, json_response


def get(request):
    return json_response(agreement.state(get_db(), auth.optional_user(request)))


def post(request):
    user = auth.require_user(request)
    db = get_db()
    d = request.data
    action = d.get("action")
    if action == "accept":
        version = agreement.accept(db, user, d.get("version"), ip=request.client_ip)
    elif action == "publish":
        version = agreement.publish(db, user, d.get("body"), ip=request.client_ip)["version"]
    else:
        raise BadRequest("action must be accept or publish", fields={"action": "bad"})
    return json_response(dict({"ok": True, "version": int(version)}, **agreement.state(db, user)))
