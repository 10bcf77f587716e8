"""GET/POST /messages.php : private conversations and order threads.

GET              my conversations (last message, unread count), a form to write to
                 someone, and the users I blocked.
GET ?with=NAME   my conversation with NAME (marks it read), a reply form, block/unblock.
GET ?order=UUID  an order's thread (its buyer, its store's members; staff once disputed).
POST action=send with `to` (or ?with=) or ?order=, `body`; action=block|unblock with
`username`. Same lib.messages rules as /api/messages.php. `return_to=payment` (order
threads) comes back to the order's page.
"""
from lib import messages, web
from lib.db import get_db
from lib.http import BadRequest, HttpError

TITLE = "Messages"


def _view(db, user, request, form=None, errors=None, error=None, status=200, headers=None):
    peer, order = request.arg("with"), request.arg("order")
    ctx = {"nav_active": "messages", "form": form or {}, "errors": errors or {}, "error": error,
           "peer": None, "order": None, "thread": None}
    if order is not None:
        ctx["thread"] = messages.order_thread(db, user, order, field="order")
        ctx["order"] = ctx["thread"]["order"]
        title = f"Order {ctx['order']['uuid'][:8]} · messages"
    elif peer is not None:
        ctx["thread"] = messages.private_thread(db, user, peer)
        ctx["peer"] = ctx["thread"]["peer"]
        title = f"Messages with {ctx['peer']['username']}"
    else:
        ctx["conversations"] = messages.conversations(db, user, 100, 0)
        ctx["blocked"] = messages.blocked_users(db, user)
        title = TITLE
    return web.page(request, "messages.html", title, status=status, headers=headers, **ctx)


def get(request):
    user = web.login(request)
    return _view(get_db(), user, request)


def post(request):
    user = web.login(request)
    db = get_db()
    data = request.data
    action = data.get("action") or "send"
    peer, order = request.arg("with"), request.arg("order")
    try:
        if action == "send":
            if order is not None:
                messages.send_order(db, user, order, data.get("body"), request.client_ip, field="order")
                if data.get("return_to") == "payment":
                    return web.see_other(web.url("/payment.php", uuid=order) + "#order-messages")
                return web.see_other(messages.order_link(order))
            to = peer if peer is not None else data.get("to")
            sent = messages.send_private(db, user, to, data.get("body"), request.client_ip,
                                         field="with" if peer is not None else "to")
            return web.see_other(messages.private_link(sent["thread"]["peer"]["username"]))
        if action in ("block", "unblock"):
            name = data.get("username")
            (messages.block if action == "block" else messages.unblock)(db, user, name)
            web.flash(request, f"{'Blocked' if action == 'block' else 'Unblocked'} {name}.")
            return web.see_other(web.same_page(request))
        raise BadRequest("action must be send, block or unblock", fields={"action": "unknown"})
    except HttpError as e:
        if e.status == 404 and not e.fields:
            raise
        return _view(db, user, request, form=dict(data), errors=e.fields, error=e.message, status=e.status,
                     headers=e.headers)
