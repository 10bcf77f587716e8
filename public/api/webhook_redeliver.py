"""POST /api/webhook-redeliver.php: send an event again, with the same event id and body.

`delivery_id` (one delivery), or `event_id` (an event uuid: its deliveries to my endpoints,
only `webhook_id`'s if given) -> {"ok": true, "deliveries": [...]} now pending; cron sends
them on its next run. 404 unknown or not mine; 409 still pending."""
from lib import auth, webhooks
from lib.db import get_db
from lib.http import BadRequest, json_response


def post(request):
    user = auth.require_user(request)
    d = request.data
    delivery_id = d.get("delivery_id")
    event_id = d.get("event_id")
    if delivery_id in (None, "") and event_id in (None, ""):
        raise BadRequest("delivery_id or event_id is required", fields={"delivery_id": "required"})
    webhook_id = None if d.get("webhook_id") in (None, "") else webhooks.parse_id(d.get("webhook_id"), "webhook_id")
    if delivery_id not in (None, ""):
        rows = webhooks.redeliver(get_db(), user, delivery_id=webhooks.parse_id(delivery_id, "delivery_id"),
                                  webhook_id=webhook_id)
    else:
        rows = webhooks.redeliver(get_db(), user, event_id=event_id, webhook_id=webhook_id)
    return json_response({"ok": True, "deliveries": rows})
