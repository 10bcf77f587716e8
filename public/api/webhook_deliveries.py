"""GET /api/webhook-deliveries.php?webhook_id=N[&limit&offset]: an endpoint's deliveries,
newest first -> {"webhook": {...}, "deliveries": [{id, webhook_id, event_id, event_type,
transaction_uuid, status (pending | delivered | failing), attempts, next_attempt_at,
last_status_code, last_error, delivered_at, created_at, updated_at, attempt_log: [{attempt,
started_at, duration_ms, status_code, error, outcome}]}], "limit", "offset"}."""
from lib import auth, webhooks
from lib.db import get_db
from lib.http import json_response


def get(request):
    user = auth.require_user(request)
    hook_id = webhooks.parse_id(request.arg("webhook_id"), "webhook_id")
    limit, offset = request.page()
    hook, rows = webhooks.deliveries(get_db(), user, hook_id, limit, offset)
    return json_response({"webhook": hook, "deliveries": rows, "limit": limit, "offset": offset})
