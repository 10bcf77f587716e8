"""GET/POST /api/messages.php

GET  -> {"conversations": [...], "blocked": [users I blocked], "limit", "offset"}: my
     private conversations and my orders' threads, most recent first, each with its last
     message (a preview) and my unread count.
GET  ?with=USERNAME -> {"thread", "peer", "messages", "blocked_by_me"}: my conversation with
     that user (oldest first; limit/offset count from the newest); marks it read.
GET  ?thread=THREAD_UUID -> either of the above, by the thread's uuid (404 unless mine).
GET  ?transaction_uuid=ORDER_UUID -> {"thread", "order", "messages", "can_post"}: the order's
     thread (its buyer, its store's members; staff once it was disputed); 404 otherwise.
POST to, body -> {"ok": true, "message", "thread"}: a private message (403 when either of
     you blocked the other: nothing is sent).
POST transaction_uuid, body -> the same, in the order's thread (staff: while its dispute is open).
POST action=block|unblock, username -> {"ok": true, "blocked": [...]}.
Bodies: 1-10000 characters. Rate limited per user (429 with Retry-After).
"""
from lib import auth, messages
from lib.db import get_db
from lib.http import BadRequest, json_response


def get(request):
    user = auth.require_user(request)
    db = get_db()
    limit, offset = request.page()
    peer = request.arg("with")
    order = request.arg("transaction_uuid")
    thread = request.arg("thread")
    if sum(x is not None for x in (peer, order, thread)) > 1:
        raise BadRequest("give one of with, transaction_uuid, thread", fields={"with": "one of them"})
    if thread is not None:
        return json_response(messages.thread_by_uuid(db, user, thread, limit, offset))
    if peer is not None:
        return json_response(messages.private_thread(db, user, peer, limit, offset))
    if order is not None:
        return json_response(messages.order_thread(db, user, order, limit, offset))
    return json_response({"conversations": messages.conversations(db, user, limit, offset),
                          "blocked": messages.blocked_users(db, user), "limit": limit, "offset": offset})


def post(request):
    user = auth.require_user(request)
    db = get_db()
    d = request.data
    action = d.get("action")
    if action in ("block", "unblock"):
        change = messages.block if action == "block" else messages.unblock
        return json_response({"ok": True, "blocked": change(db, user, d.get("username"))})
    if action not in (None, "", "send"):
        raise BadRequest("action must be send, block or unblock", fields={"action": "unknown"})
    if d.get("transaction_uuid") not in (None, ""):
        if d.get("to") not in (None, ""):
            raise BadRequest("give to or transaction_uuid, not both", fields={"to": "not with transaction_uuid"})
        result = messages.send_order(db, user, d.get("transaction_uuid"), d.get("body"), request.client_ip)
    else:
        result = messages.send_private(db, user, d.get("to"), d.get("body"), request.client_ip)
    return json_response(dict(result, ok=True))
