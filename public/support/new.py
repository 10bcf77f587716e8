"""GET/POST /support/new.php : open a support ticket.

POST `subject` (one line, 1-200), `body` (1-10000), optional `transaction_uuid` (an order
I am the buyer of or a store member of) -> 303 to /support/ticket.php?uuid=. Bad input:
400 naming the field, nothing written (lib.tickets.create). GET ?transaction_uuid= preselects it.
"""
from lib import tickets, web
from lib.db import get_db
from lib.http import HttpError

TITLE = "Open a support ticket"


def _my_orders(db, user):
    """(uuid, label) of the orders I am a party to, newest first, for the form's choice."""
    rows = tickets.orders_to_choose(db, user)
    return [(r["uuid"], f"{r['uuid'][:8]} · {(r['description'] or '')[:40]} · {r['created_at'][:10]}") for r in rows]


def get(request):
    user = web.login(request)
    db = get_db()
    form = {"transaction_uuid": request.arg("transaction_uuid") or ""}
    return web.page(request, "support/new.html", TITLE, form=form, orders=_my_orders(db, user),
                    nav_active="support")


def post(request):
    user = web.login(request)
    db = get_db()
    data = request.data
    try:
        ticket = tickets.create(db, user, data.get("subject"), data.get("body"), data.get("transaction_uuid"),
                                ip=request.client_ip)
    except HttpError as e:
        return web.form_error(request, e, "support/new.html", TITLE, orders=_my_orders(db, user),
                              nav_active="support")
    return web.see_other(web.url("/support/ticket.php", uuid=ticket["uuid"]), "Your ticket is open: staff will "
                         "answer here.", request)
