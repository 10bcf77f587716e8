"""GET/POST /staff/tickets.php : the support queue (lib.tickets).

GET ?status=open|answered|closed|all (default open): the tickets, longest waiting first;
?uuid= one ticket with its thread and the staff forms. POST `uuid` and `action` =
reply (`body`) | assign (`assignee`: a staff member's username, '' for nobody) |
close (optional `comment`). Each is audited; 400 names the bad field, 409 a closed ticket.
"""
from lib import tickets, web
from lib.db import get_db

TITLE = "Support tickets"


def _page(request, db, user, error=None):
    uuid = request.arg("uuid")
    ctx = {"staff_tab": "tickets", "nav_active": "staff"}
    if uuid is not None:
        ticket = tickets.get(db, user, uuid)
        return web.form_page(request, "staff/tickets.html", ticket["subject"], error, ticket=ticket,
                             staff_members=tickets.staff_members(db), **ctx)
    chosen = request.arg("status", tickets.OPEN)
    tickets.parse_status(chosen)
    pager = web.pager(request, lambda limit, offset: tickets.queue(db, user, chosen, limit, offset))
    return web.form_page(request, "staff/tickets.html", TITLE, error, ticket=None, pager=pager,
                         status_choice=chosen, **ctx)


def _reply(request, db, user):
    tickets.reply(db, user, request.data.get("uuid"), request.data.get("body"), ip=request.client_ip)
    return "Answer sent."


def _assign(request, db, user):
    ticket = tickets.assign(db, user, request.data.get("uuid"), request.data.get("assignee"), ip=request.client_ip)
    return f"Assigned to {ticket['assigned_username']}." if ticket["assigned_username"] else "Unassigned."


def _close(request, db, user):
    tickets.close(db, user, request.data.get("uuid"), request.data.get("comment"), ip=request.client_ip)
    return "Ticket closed."


ACTIONS = {"reply": _reply, "assign": _assign, "close": _close}


def get(request):
    return _page(request, get_db(), web.staff(request))


def post(request):
    return web.act(request, web.staff(request), ACTIONS, _page, passes=lambda e: e.status == 404,
                   location=web.url("/staff/tickets.php", uuid=request.data.get("uuid")))
