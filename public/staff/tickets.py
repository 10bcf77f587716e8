"""GET/POST /staff/tickets.php : the support queue (lib.tickets).

GET ?status=open|answered|closed|all (default open): the tickets, longest waiting first;
?uuid= one ticket with its thread and the staff forms. POST `uuid` and `action` =
reply (`body`) | assign (`assignee`: a staff member's username, '' for nobody) |
close (optional `comment`). Each is audited; 400 names the bad field, 409 a closed ticket.
"""
from lib import tickets, web
from lib.db import get_db
from lib.http import BadRequest, HttpError

TITLE = "Support tickets"


def _page(request, db, user, status=200, error=None, errors=None):
    uuid = request.arg("uuid")
    ctx = {"staff_tab": "tickets", "nav_active": "staff", "error": error, "errors": errors or {},
           "form": dict(request.data) if request.method == "POST" else {}}
    if uuid is not None:
        ticket = tickets.get(db, user, uuid)
        return web.page(request, "staff/tickets.html", ticket["subject"], status=status, ticket=ticket,
                        staff_members=tickets.staff_members(db), **ctx)
    chosen = request.arg("status", tickets.OPEN)
    tickets.parse_status(chosen)
    pager = web.pager(request, lambda limit, offset: tickets.queue(db, user, chosen, limit, offset))
    return web.page(request, "staff/tickets.html", TITLE, status=status, ticket=None, pager=pager,
                    status_choice=chosen, **ctx)


def get(request):
    user = web.staff(request)
    return _page(request, get_db(), user)


def post(request):
    user = web.staff(request)
    db = get_db()
    data = request.data
    uuid = data.get("uuid")
    action = data.get("action")
    ip = request.client_ip
    try:
        if action == "reply":
            tickets.reply(db, user, uuid, data.get("body"), ip=ip)
            message = "Answer sent."
        elif action == "assign":
            ticket = tickets.assign(db, user, uuid, data.get("assignee"), ip=ip)
            message = f"Assigned to {ticket['assigned_username']}." if ticket["assigned_username"] else "Unassigned."
        elif action == "close":
            tickets.close(db, user, uuid, data.get("comment"), ip=ip)
            message = "Ticket closed."
        else:
            raise BadRequest("action must be reply, assign or close", fields={"action": "bad"})
    except HttpError as e:
        if e.status == 404:
            raise
        return _page(request, db, user, status=e.status, error=e.message, errors=e.fields)
    return web.see_other(web.url("/staff/tickets.php", uuid=uuid), message, request)
