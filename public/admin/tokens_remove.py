"""POST /admin/tokens-remove.php (admin): id -> {"ok": true, "id"}; 404 unknown id."""
from lib import admin_pages, auth, tokens
from lib.db import get_db
from lib.http import json_response


def post(request):
    return admin_pages.form_post(request, _post, "tokens_remove")


def _post(request):
    admin = auth.require_role(request, "admin")
    db = get_db()
    token = tokens.remove_token(db, request.data.get("id"), by=admin["uuid"], ip=request.client_ip)
    return json_response({"ok": True, "id": token["id"]})
