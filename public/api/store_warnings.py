"""GET/POST /api/store-warnings.php : warnings staff put on stores (lib.store_warnings).

GET ?store_uuid=  -> {"warnings": [{id, reason, created_at}]}: a store's active warnings (anyone)
GET (staff)       -> {"warnings": [...full rows...], "limit", "offset"}; ?retired=1 includes retired ones
POST action=add (store: name or uuid, reason) | retire (id)  -> {"ok": true, "warning": {...}} (staff, audited)
"""
from lib import auth, catalog, store_warnings
from lib.db import get_db
from lib.http import BadRequest, json_response


def get(request):
    db = get_db()
    store_uuid = request.arg("store_uuid")
    if store_uuid is not None:
        catalog.get_store(db, store_uuid, auth.optional_user(request))     # 404 unknown (or suspended)
        return json_response({"warnings": store_warnings.active(db, store_uuid)})
    user = auth.require_user(request)
    catalog.require_staff(user)
    retired = request.arg("retired")
    if retired not in (None, "0", "1"):
        raise BadRequest("retired must be 0 or 1", fields={"retired": "0 or 1"})
    limit, offset = request.page()
    return json_response({"warnings": store_warnings.list_all(db, retired == "1", limit, offset),
                          "limit": limit, "offset": offset})


def post(request):
    user = auth.require_user(request)
    db = get_db()
    d = request.data
    action = d.get("action")
    catalog.require_staff(user)
    if action == "add":
        row = store_warnings.add(db, user, d.get("store"), d.get("reason"), ip=request.client_ip)
    elif action == "retire":
        row = store_warnings.retire(db, user, d.get("id"), ip=request.client_ip)
    else:
        raise BadRequest("action must be add or retire", fields={"action": "bad"})
    return json_response({"ok": True, "warning": row})
