"""GET/POST /api/agreement.php : the vendorship agreement (lib.agreement), as JSON.

GET -> {"agreement": {"version", "body", "created_at"} | null, "history": [{"version", "created_at"}],
        "stores": [{"uuid", "storename", "agreement_version", "agreement_accepted_at", "accepted"}]}
        (anyone; `stores`: the caller's own stores, empty when anonymous).
POST action=accept (a store owner; optional `version`: the one read, 409 if it changed)
   | publish (admin; `body`: the new text, a new version) -> {"ok": true, "version", ...GET's fields}.
"""
from lib import agreement, auth, validate
from lib.db import get_db
from lib.http import json_response


def get(request):
    return json_response(agreement.state(get_db(), auth.optional_user(request)))


def _accept(request, db, user):
    return agreement.accept(db, user, request.data.get("version"), ip=request.client_ip)


def _publish(request, db, user):
    return agreement.publish(db, user, request.data.get("body"), ip=request.client_ip)["version"]


ACTIONS = {"accept": _accept, "publish": _publish}


def post(request):
    user = auth.require_user(request)
    db = get_db()
    version = validate.choice(request.data, "action", ACTIONS)(request, db, user)
    return json_response(dict({"ok": True, "version": int(version)}, **agreement.state(db, user)))
