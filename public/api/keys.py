"""GET/POST /api/keys.php: my API keys.

GET  -> {"keys": [{id, name, key_prefix, created_at, last_used_at, scopes, store_uuid}]}
     (active keys, newest first)
POST name, optional scopes (a list, or comma-separated: read, orders, store, full; default
     full) and store_uuid (limits the store scope to one of my stores: 404 unknown store,
     403 not my store) -> {"ok": true, "id", "name", "key_prefix", "created_at", "scopes",
     "store_uuid", "api_key"}; the key is shown only in this answer (only its hash is
     stored). Creating keys needs a session or a full-scope key (lib/scopes.py).
"""
from lib import api_keys, auth
from lib.db import get_db
from lib.http import json_response


def get(request):
    user = auth.require_user(request)
    return json_response({"keys": api_keys.list_keys(get_db(), user["uuid"])})


def post(request):
    user = auth.require_user(request)
    d = request.data
    key, row = api_keys.create_key(get_db(), user["uuid"], d.get("name"), request.client_ip,
                                   key_scopes=d.get("scopes"), store_uuid=d.get("store_uuid"))
    return json_response({"ok": True, "id": row["id"], "name": row["name"],
                          "key_prefix": row["key_prefix"], "created_at": row["created_at"],
                          "scopes": row["scopes"], "store_uuid": row["store_uuid"],
                          "api_key": key})
