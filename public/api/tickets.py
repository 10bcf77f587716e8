"""GET/POST /api/tickets.php : support tickets (lib.tickets).

GET            -> {"tickets": [...], "limit", "offset"}: mine, newest first
GET ?queue=1   -> staff: every ticket, `status` = open | answered | closed | all (default all)
GET ?uuid=     -> {"ticket": {..., "messages": [...], "statuses": [...]}} (the opener or staff; else 404)
POST action=create (subject, body, optional transaction_uuid: an order I am a party to)
   | reply (uuid, body) | assign (staff: uuid, assignee username, '' for nobody)
   | close (staff: uuid, optional comment)  -> {"ok": true, "ticket": {...}}
"""
from lib import auth, catalog, tickets
from lib.db import get_db
from lib.http import BadRequest, one_or_page, json_response


def _list(request, db, user, limit, offset):
    queue = request.arg("queue")
    if queue not in (None, "0", "1"):
        raise BadRequest("queue must be 0 or 1", fields={"queue": "0 or 1"})
    if queue == "1":
        return tickets.queue(db, user, request.arg("status"), limit, offset)
    return tickets.list_mine(db, user, limit, offset)


def get(request):
    user = auth.require_user(request)
    db = get_db()
    return one_or_page(request, "ticket", lambda uuid: tickets.get(db, user, uuid),
                            "tickets", lambda limit, offset: _list(request, db, user, limit, offset))


def post(request):
    user = auth.require_user(request)
    db = get_db()
    d = request.data
    action = d.get("action")
    ip = request.client_ip
    if action == "create":
        ticket = tickets.create(db, user, d.get("subject"), d.get("body"), d.get("transaction_uuid"), ip=ip)
    elif action == "reply":
        ticket = tickets.reply(db, user, d.get("uuid"), d.get("body"), ip=ip)
    elif action == "assign":
        catalog.require_staff(user)
        ticket = tickets.assign(db, user, d.get("uuid"), d.get("assignee"), ip=ip)
    elif action == "close":
        catalog.require_staff(user)
        ticket = tickets.close(db, user, d.get("uuid"), d.get("comment"), ip=ip)
    else:
        raise BadRequest("action must be create, reply, assign or close", fields={"action": "bad"})
    return json_response({"ok": True, "ticket": ticket})
