"""POST /api/keys-revoke.php: `id` of one of my keys -> {"ok": true, "id"}.

The key stops working at once. Someone else's key or an unknown id: 404;
a key already revoked: 409.
"""
from lib import api_keys, auth
from lib.db import get_db
from lib.http import json_response, parse_id


def post(request):
    user = auth.require_user(request)
    key_id = parse_id(request.field("id", required=True, max_length=20))
    api_keys.revoke(get_db(), user["uuid"], key_id, request.client_ip)
    return json_response({"ok": True, "id": key_id, "revoked": True})
