"""GET/POST /support/ticket.php?uuid= : one of my tickets (staff see every one): the thread,
the status history, and a reply form while it is not closed.

POST `body` -> lib.tickets.reply (my reply to an answered ticket opens it again; a staff
member's reply answers it). 404 for anyone but the opener and staff; 409 when closed.
"""
from lib import tickets, web
from lib.db import get_db
from lib.http import HttpError


def _show(request, db, user, status=200, error=None, errors=None):
    ticket = tickets.get(db, user, request.required_arg("uuid"))
    return web.page(request, "support/ticket.html", ticket["subject"], status=status, ticket=ticket, error=error,
                    errors=errors or {}, form=dict(request.data) if request.method == "POST" else {},
                    nav_active="support")


def get(request):
    user = web.login(request)
    return _show(request, get_db(), user)


def post(request):
    user = web.login(request)
    db = get_db()
    uuid = request.required_arg("uuid")
    try:
        tickets.reply(db, user, uuid, request.data.get("body"), ip=request.client_ip)
    except HttpError as e:
        if e.status == 404:
            raise
        return _show(request, db, user, status=e.status, error=e.message, errors=e.fields)
    return web.see_other(web.url("/support/ticket.php", uuid=uuid), "Reply sent.", request)
