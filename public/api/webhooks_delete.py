"""POST /api/webhooks-delete.php: `id` of an endpoint of mine (or of my store's) ->
{"ok": true, "id", "deleted": true}. Nothing more is sent to it; its delivery log stays
readable to nobody but the database. Unknown or someone else's: 404."""
from lib import auth, webhooks
from lib.db import get_db
from lib.http import json_response


def post(request):
    user = auth.require_user(request)
    hook_id = webhooks.delete(get_db(), user, webhooks.parse_id(request.data.get("id"), "id"))
    return json_response({"ok": True, "id": hook_id, "deleted": True})
