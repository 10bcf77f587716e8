"""GET/POST /api/notifications.php

GET  -> {"notifications": [...], "unread": N, "limit", "offset"}: mine, newest first
     (?unread=1: only unread ones). Kinds: message, order.* and dispute.* events.
POST id -> {"ok": true, "notification"}: mark one read (404 unless it is mine).
POST all=1 -> {"ok": true, "marked": N}: mark every unread one read.
"""
from lib import auth, notifications
from lib.db import get_db
from lib.http import BadRequest, json_response


def get(request):
    user = auth.require_user(request)
    db = get_db()
    limit, offset = request.page()
    unread = request.arg("unread")
    if unread not in (None, "0", "1"):
        raise BadRequest("unread must be 0 or 1", fields={"unread": "0 or 1"})
    return json_response({"notifications": notifications.list_for(db, user, limit, offset, unread == "1"),
                          "unread": notifications.unread_count(db, user["uuid"]), "limit": limit, "offset": offset})


def post(request):
    user = auth.require_user(request)
    db = get_db()
    d = request.data
    if d.get("all") not in (None, ""):
        if d.get("all") not in ("1", 1, True):
            raise BadRequest("all must be 1", fields={"all": "1"})
        return json_response({"ok": True, "marked": notifications.mark_all_read(db, user)})
    if d.get("id") in (None, ""):
        raise BadRequest("id is required (or all=1)", fields={"id": "required"})
    return json_response({"ok": True, "notification": notifications.mark_read(db, user, d.get("id"))})
