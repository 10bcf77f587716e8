"""GET/POST /api/store-warnings.php : warnings staff put on stores (lib.store_warnings).

GET ?store_uuid=  -> {"warnings": [{id, reason, created_at}]}: a store's active warnings (anyone)
GET (staff)       -> {"warnings": [...full rows...], "limit", "offset"}; ?retired=1 includes retired ones
POST action=add (store: name or uuid, reason) | retire (id)  -> {"ok": true, "warning": {...}} (staff, audited)
"""
from lib import auth, catalog, store_warnings, validate
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


def _add(request, db, user):
    return store_warnings.add(db, user, request.data.get("store"), request.data.get("reason"), ip=request.client_ip)


def _retire(request, db, user):
    return store_warnings.retire(db, user, request.data.get("id"), ip=request.client_ip)


ACTIONS = {"add": _add, "retire": _retire}


def post(request):
    user = auth.require_user(request)
    db = get_db()
    data = request.data  # 400/413 for a body that cannot be read, before the staff check
    catalog.require_staff(user)
    return json_response({"ok": True, "warning": validate.choice(data, "action", ACTIONS)(request, db, user)})
