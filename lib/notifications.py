"""In-app notifications: a list per user, newest first, read or unread.

Other modules call `notify()` inside the transaction of the change they report, so a
notification exists exactly when its change committed. The order and dispute events
reach this module from lib/webhooks (order_event / dispute_event: the one place every
reported order change passes), for the buyer and the store's members; new messages come
from lib/messages.

A notification is seen only by its user: anyone else gets 404 for it. The navigation
shows `unread_count()`: one COUNT on idx_notifications_unread.
"""
from lib.db import utc_now
from lib.http import NotFound, parse_id

MAX_TEXT = 255
MAX_LINK = 255

# Event type -> (kind, what the notification says).
EVENT_TEXT = {
    "order.created": "New order",
    "order.paid": "Order paid",
    "order.dispatched": "Order dispatched",
    "order.confirmed": "Order receipt confirmed by the buyer",
    "order.released": "Order payment released to the vendor",
    "order.cancelled": "Order cancelled or refunded",
    "order.failed": "Order failed: no payment in time",
    "dispute.opened": "Dispute opened",
    "dispute.claim_added": "New claim in a dispute",
    "dispute.resolved": "Dispute resolved",
}


def notify(db, user_uuid, kind, text, link=None):
    """Add a notification for `user_uuid` (call inside the change's transaction). Returns its id."""
    if not isinstance(kind, str) or not kind or len(kind) > 32:
        raise ValueError("bad notification kind %r" % (kind,))
    return db.insert("notifications", {"user_uuid": user_uuid, "kind": kind[:32], "text": text[:MAX_TEXT],
                                       "link": (link or None) and link[:MAX_LINK], "created_at": utc_now(),
                                       "read_at": None})


def notify_many(db, user_uuids, kind, text, link=None, skip=None):
    """notify() each distinct user of `user_uuids` except `skip` (the one who did it)."""
    people = sorted({u for u in user_uuids if u and u != skip})
    for user_uuid in people:
        notify(db, user_uuid, kind, text, link)
    return len(people)


def _order_people(db, store_uuid, buyer_uuid):
    people = [buyer_uuid]
    people += [r["user_uuid"] for r in db.query("SELECT user_uuid FROM store_users WHERE store_uuid = ?",
                                                (store_uuid,))]
    return people


def order_event(db, event_type, transaction_uuid, store_uuid, buyer_uuid, dispute_uuid=None, actor_uuid=None):
    """The notifications of an order or dispute event, for the buyer and the store's members
    (except `actor_uuid`, who caused it). Returns how many were written."""
    text = EVENT_TEXT.get(event_type)
    if text is None:
        return 0
    if event_type == "order.created":
        actor_uuid = buyer_uuid        # the buyer made it: tell the store
    storename = db.value("SELECT storename FROM stores WHERE uuid = ?", (store_uuid,)) or "a store"
    text = f"{text}: order {transaction_uuid[:8]} at {storename}"
    link = f"/dispute.php?uuid={dispute_uuid}" if dispute_uuid else f"/payment.php?uuid={transaction_uuid}"
    return notify_many(db, _order_people(db, store_uuid, buyer_uuid), event_type, text, link, skip=actor_uuid)


# -- reading -------------------------------------------------------------------------

def _json(row):
    return {"id": int(row["id"]), "kind": row["kind"], "text": row["text"], "link": row["link"],
            "created_at": row["created_at"], "read": row["read_at"] is not None, "read_at": row["read_at"]}


def unread_count(db, user_uuid):
    """The user's unread notifications: one count on idx_notifications_unread."""
    return int(db.value("SELECT COUNT(*) FROM notifications WHERE user_uuid = ? AND read_at IS NULL",
                        (user_uuid,), default=0))


def list_for(db, user, limit=50, offset=0, unread_only=False):
    """The user's notifications, newest first."""
    sql = "SELECT * FROM notifications WHERE user_uuid = ?"
    if unread_only:
        sql += " AND read_at IS NULL"
    rows = db.query(sql + " ORDER BY id DESC LIMIT ? OFFSET ?", (user["uuid"], int(limit), int(offset)))
    return [_json(r) for r in rows]


def mark_read(db, user, notification_id):
    """Mark one of the user's notifications read; 400 bad id, 404 not the user's. Returns it."""
    notification_id = parse_id(notification_id, "id")
    with db.transaction():
        row = db.one("SELECT * FROM notifications WHERE id = ? AND user_uuid = ?", (notification_id, user["uuid"]))
        if row is None:
            raise NotFound("no such notification")
        if row["read_at"] is None:
            db.execute("UPDATE notifications SET read_at = ? WHERE id = ? AND read_at IS NULL",
                       (utc_now(), notification_id))
    return _json(db.one("SELECT * FROM notifications WHERE id = ?", (notification_id,)))


def mark_all_read(db, user):
    """Mark every unread notification of the user read; returns how many."""
    with db.transaction():
        return db.execute("UPDATE notifications SET read_at = ? WHERE user_uuid = ? AND read_at IS NULL",
                          (utc_now(), user["uuid"]))


def mark_link_read(db, user_uuid, link):
    """Mark read the user's unread notifications pointing at `link` (the page was opened)."""
    return db.execute("UPDATE notifications SET read_at = ? WHERE user_uuid = ? AND read_at IS NULL AND link = ?",
                      (utc_now(), user_uuid, link))
