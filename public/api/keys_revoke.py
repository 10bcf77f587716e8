"""POST /api/keys-revoke.php: `id` of one of my keys -> {"ok": true, "id"}.

The key stops working at once. Someone else's key or an unknown id: 404;
a key already revoked: 409.
"""
from lib import api_keys, auth
from lib.db import get_db
from lib.http import HttpError, json_response


def post(request):
    user = auth.require_user(request)
    raw = request.field("id", required=True, max_length=20)
    if not raw.isdigit():
        raise HttpError(400, "id must be a positive integer", fields={"id": "integer"})
    key_id = int(raw)
    api_keys.revoke(get_db(), user["uuid"], key_id, request.client_ip)
    return json_response({"ok": True, "id": key_id, "revoked": True})
