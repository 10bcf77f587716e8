"""Support tickets: a user asks for help, staff answer, assign and close.

A ticket has a subject, a thread of messages and optionally the order it is about (an
order the opener is a party to: its buyer or a member of its store). Its status is the
newest row of the append-only `ticket_statuses`:

    open      new, or the opener wrote after an answer
    answered  staff replied (a reply by someone other than the opener)
    closed    staff closed it; nobody replies any more (a new ticket is the way on)

Only the opener and staff see a ticket; anyone else gets 404, as if it did not exist.
Staff actions (reply, assign, close) are audited. Every change is one transaction.
`record_reply` is the one place a message is added to a thread.
"""
import uuid as uuidlib

from lib import audit, catalog, notifications, webhooks
from lib.db import utc_now
from lib.http import BadRequest, Conflict, NotFound

OPEN, ANSWERED, CLOSED = "open", "answered", "closed"
STATUSES = (OPEN, ANSWERED, CLOSED)
SUBJECT_MAX = 200
BODY_MAX = 10000
COMMENT_MAX = 255

# The newest status row of each ticket (statuses are append-only: the highest id wins).
_CURRENT = ("(SELECT ts.status FROM ticket_statuses ts WHERE ts.ticket_uuid = t.uuid "
            "ORDER BY ts.id DESC LIMIT 1)")
_COLUMNS = ("t.uuid, t.user_uuid, u.username, t.subject, t.transaction_uuid, t.assigned_to, "
            "a.username AS assigned_username, t.created_at, t.updated_at, " + _CURRENT + " AS status")
_FROM = ("FROM support_tickets t JOIN users u ON u.uuid = t.user_uuid "
         "LEFT JOIN users a ON a.uuid = t.assigned_to")


def _subject(value):
    return catalog.text(value, "subject", SUBJECT_MAX, required=True, multiline=False)


def _body(value):
    return catalog.text(value, "body", BODY_MAX, required=True)


def _comment(value):
    return catalog.text(value, "comment", COMMENT_MAX, multiline=False)


def _order_of_party(db, user, value):
    """The order uuid if `user` is its buyer or a member of its store; None when not given.
    An unknown order and someone else's get the same 400, so existence does not leak."""
    if value in (None, ""):
        return None
    if not catalog.is_uuid(value):
        raise BadRequest("transaction_uuid must be an order's uuid", fields={"transaction_uuid": "not a uuid"})
    row = db.one("SELECT uuid FROM transactions t WHERE t.uuid = ? AND (t.buyer_uuid = ? OR EXISTS "
                 "(SELECT 1 FROM store_users su WHERE su.store_uuid = t.store_uuid AND su.user_uuid = ?))",
                 (value, user["uuid"], user["uuid"]))
    if row is None:
        raise BadRequest("transaction_uuid is not an order of yours",
                        fields={"transaction_uuid": "not one of your orders"})
    return row["uuid"]


def _append_status(db, ticket_uuid, status, by_uuid, comment=None):
    now = utc_now()
    db.insert("ticket_statuses", {"ticket_uuid": ticket_uuid, "status": status, "changed_by": by_uuid,
                                  "comment": comment, "created_at": now})
    db.execute("UPDATE support_tickets SET updated_at = ? WHERE uuid = ?", (now, ticket_uuid))


def _row(db, ticket_uuid):
    if not catalog.is_uuid(ticket_uuid):
        return None
    return db.one(f"SELECT {_COLUMNS} {_FROM} WHERE t.uuid = ?", (ticket_uuid,))


def _visible(db, user, ticket_uuid):
    """The ticket row if `user` opened it or is staff; 404 otherwise."""
    row = _row(db, ticket_uuid)
    if row is None or not user or (row["user_uuid"] != user["uuid"] and not catalog.is_staff(user)):
        raise NotFound("no such ticket")
    return row


def _lock(db, ticket_uuid):
    """Lock the ticket row for the rest of the transaction (MariaDB; SQLite serializes)."""
    db.value("SELECT id FROM support_tickets WHERE uuid = ? FOR UPDATE", (ticket_uuid,))


def create(db, user, subject, body, transaction_uuid=None, ip=None):
    """Open a ticket; returns it (as `get`). 400 names the bad field and writes nothing."""
    subject = _subject(subject)
    body = _body(body)
    order_uuid = _order_of_party(db, user, transaction_uuid)
    ticket_uuid = str(uuidlib.uuid4())
    now = utc_now()
    with db.transaction():
        db.insert("support_tickets", {"uuid": ticket_uuid, "user_uuid": user["uuid"], "subject": subject,
                                      "transaction_uuid": order_uuid, "assigned_to": None, "created_at": now,
                                      "updated_at": now})
        db.insert("ticket_messages", {"ticket_uuid": ticket_uuid, "author_uuid": user["uuid"], "staff_reply": 0,
                                      "body": body, "created_at": now})
        _append_status(db, ticket_uuid, OPEN, user["uuid"], "opened")
        audit.log(db, "ticket_opened", user["uuid"], ticket_uuid, subject[:100], ip)
    return get(db, user, ticket_uuid)


def record_reply(db, ticket, author, body, staff_reply):
    """Add a message to the thread (inside the caller's transaction) and move the status:
    a staff answer makes the ticket answered, the opener's message after an answer makes
    it open again. A staff answer notifies the opener (in the app and by webhook). Returns
    the message id."""
    now = utc_now()
    message_id = db.insert("ticket_messages", {"ticket_uuid": ticket["uuid"], "author_uuid": author["uuid"],
                                               "staff_reply": 1 if staff_reply else 0, "body": body,
                                               "created_at": now})
    if staff_reply:
        notifications.notify(db, ticket["user_uuid"], "ticket.answered", "Staff answered your ticket: "
                             + ticket["subject"], "/support/ticket.php?uuid=" + ticket["uuid"])
        webhooks.ticket_event(db, ticket, {"id": message_id, "body": body, "created_at": now})
    if staff_reply and ticket["status"] != ANSWERED:
        _append_status(db, ticket["uuid"], ANSWERED, author["uuid"], "staff replied")
    elif not staff_reply and ticket["status"] == ANSWERED:
        _append_status(db, ticket["uuid"], OPEN, author["uuid"], "the user replied")
    else:
        db.execute("UPDATE support_tickets SET updated_at = ? WHERE uuid = ?", (now, ticket["uuid"]))
    return message_id


def reply(db, user, ticket_uuid, body, ip=None):
    """The opener or staff write in the thread. 404 not visible, 400 bad body, 409 closed."""
    _visible(db, user, ticket_uuid)
    body = _body(body)
    with db.transaction():
        _lock(db, ticket_uuid)
        ticket = _row(db, ticket_uuid)
        if ticket["status"] == CLOSED:
            raise Conflict("this ticket is closed; open a new one")
        staff_reply = ticket["user_uuid"] != user["uuid"]
        record_reply(db, ticket, user, body, staff_reply)
        if staff_reply:
            audit.log(db, "ticket_replied", user["uuid"], ticket_uuid, None, ip)
    return get(db, user, ticket_uuid)


def _staff_member(db, value):
    """The staff member or admin named by username or uuid; None for '' (unassign); 404
    when no staff member has that name."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise BadRequest("assignee must be a staff member's username", fields={"assignee": "bad"})
    row = db.one("SELECT uuid, username, role FROM users WHERE (uuid = ? OR username_lower = ?) AND banned = 0",
                 (value.strip(), value.strip().lower()))
    if row is None or row["role"] not in catalog.STAFF_ROLES:
        raise NotFound("no staff member with that name", fields={"assignee": "not a staff member"})
    return row


def assign(db, user, ticket_uuid, assignee, ip=None):
    """Staff assign a ticket to a staff member ('' unassigns). Audited."""
    catalog.require_staff(user)
    _visible(db, user, ticket_uuid)
    member = _staff_member(db, assignee)
    with db.transaction():
        _lock(db, ticket_uuid)
        db.execute("UPDATE support_tickets SET assigned_to = ?, updated_at = ? WHERE uuid = ?",
                   (member["uuid"] if member else None, utc_now(), ticket_uuid))
        audit.log(db, "ticket_assigned", user["uuid"], ticket_uuid,
                  f"to {member['username']}" if member else "unassigned", ip)
    return get(db, user, ticket_uuid)


def close(db, user, ticket_uuid, comment=None, ip=None):
    """Staff close a ticket. 409 when it is closed already. Audited."""
    catalog.require_staff(user)
    _visible(db, user, ticket_uuid)
    comment = _comment(comment)
    with db.transaction():
        _lock(db, ticket_uuid)
        if _row(db, ticket_uuid)["status"] == CLOSED:
            raise Conflict("this ticket is closed already")
        _append_status(db, ticket_uuid, CLOSED, user["uuid"], comment or "closed by staff")
        audit.log(db, "ticket_closed", user["uuid"], ticket_uuid, comment, ip)
    return get(db, user, ticket_uuid)


def get(db, user, ticket_uuid):
    """One ticket with its messages and status history; 404 unless the opener or staff."""
    row = dict(_visible(db, user, ticket_uuid))
    row["messages"] = db.query(
        "SELECT m.id, m.author_uuid, u.username AS author_username, m.staff_reply, m.body, m.created_at "
        "FROM ticket_messages m JOIN users u ON u.uuid = m.author_uuid WHERE m.ticket_uuid = ? ORDER BY m.id",
        (ticket_uuid,))
    for m in row["messages"]:
        m["staff_reply"] = bool(m["staff_reply"])
    row["statuses"] = db.query(
        "SELECT s.status, s.comment, s.created_at, u.username AS changed_by_username FROM ticket_statuses s "
        "LEFT JOIN users u ON u.uuid = s.changed_by WHERE s.ticket_uuid = ? ORDER BY s.id", (ticket_uuid,))
    return row


def orders_to_choose(db, user, limit=100):
    """The orders `user` is a party to (buyer or store member), newest first: what a ticket
    may be about."""
    return db.query("SELECT t.uuid, t.description, t.created_at FROM transactions t WHERE t.buyer_uuid = ? OR "
                    "t.store_uuid IN (SELECT store_uuid FROM store_users WHERE user_uuid = ?) "
                    "ORDER BY t.id DESC LIMIT ?", (user["uuid"], user["uuid"], limit))


def parse_status(value, field="status"):
    """A status filter: one of STATUSES, or None for '' / 'all'."""
    if value in (None, "", "all"):
        return None
    if value not in STATUSES:
        raise BadRequest(f"{field} must be open, answered, closed or all", fields={field: "bad"})
    return value


def list_mine(db, user, limit=50, offset=0):
    return db.query(f"SELECT {_COLUMNS} {_FROM} WHERE t.user_uuid = ? ORDER BY t.id DESC LIMIT ? OFFSET ?",
                    (user["uuid"], int(limit), int(offset)))


def queue(db, user, status=None, limit=50, offset=0):
    """Staff: every ticket (or those of one status), the longest waiting first."""
    catalog.require_staff(user)
    status = parse_status(status)
    where, params = ("", []) if status is None else (f" WHERE {_CURRENT} = ?", [status])
    return db.query(f"SELECT {_COLUMNS} {_FROM}{where} ORDER BY t.updated_at, t.id LIMIT ? OFFSET ?",
                    params + [int(limit), int(offset)])


def staff_members(db):
    """Who a ticket may be assigned to."""
    return db.query("SELECT uuid, username FROM users WHERE role IN ('staff', 'admin') AND banned = 0 "
                    "ORDER BY username_lower")
