"""GET/POST /api/webhooks.php: my webhook endpoints (and my stores').

GET  -> {"webhooks": [{id, url, events, store_uuid, owner_user_uuid, description, status,
     consecutive_failures, secret_prefix, last_success_at, last_failure_at, created_at}]}
POST url, events (a JSON list or comma-separated; empty or "*": every event the endpoint
     may get), optional store_uuid (an endpoint of that store, for its members), description
     -> {"ok": true, "webhook": {...}, "secret": "whsec_..."}: the signing secret is shown
     only in this answer. URLs resolving to loopback, private or link-local addresses are
     refused (400) unless WEBHOOK_ALLOW_PRIVATE=1. Delivery and signatures: lib/webhooks.py.
"""
from lib import auth, webhooks
from lib.db import get_db
from lib.http import json_response


def get(request):
    user = auth.require_user(request)
    return json_response({"webhooks": webhooks.list_webhooks(get_db(), user)})


def post(request):
    user = auth.require_user(request)
    d = request.data
    hook, secret = webhooks.create(get_db(), user, d.get("url"), d.get("events"), d.get("store_uuid"),
                                   d.get("description"))
    return json_response({"ok": True, "webhook": hook, "secret": secret})
