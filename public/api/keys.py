"""GET/POST /api/keys.php: my API keys.

GET  -> {"keys": [{id, name, key_prefix, created_at, last_used_at}]} (active keys, newest first)
POST name -> {"ok": true, "id", "name", "key_prefix", "created_at", "api_key"}; the key is
shown only in this answer (only its hash is stored).
"""
from lib import api_keys, auth
from lib.db import get_db
from lib.http import json_response


def get(request):
    user = auth.require_user(request)
    return json_response({"keys": api_keys.list_keys(get_db(), user["uuid"])})


def post(request):
    user = auth.require_user(request)
    key, row = api_keys.create_key(get_db(), user["uuid"], request.data.get("name"), request.client_ip)
    return json_response({"ok": True, "id": row["id"], "name": row["name"],
                          "key_prefix": row["key_prefix"], "created_at": row["created_at"],
                          "api_key": key})
