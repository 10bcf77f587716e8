"""Messages: private conversations between two users, and a thread on each order.

- A private thread belongs to two users (one thread per pair). Either may write unless
  one has blocked the other: a blocked user's message to the blocker is refused (403,
  saying so) and nothing is stored; a user who blocked someone cannot write to them either
  until they unblock. Blocking concerns private messages only: an order's thread stays
  open to its parties, since the trade needs it (staff can join it through a dispute).
- An order's thread belongs to its buyer and the members of its store. Staff see it once
  the order has been disputed, and may write in it while the dispute is open; otherwise
  (staff on an order never disputed, anyone else) the thread does not exist (404).
- Bodies are 1..MAX_BODY characters of text (newlines kept, other control characters
  refused); pages show them escaped.
- Sending is rate limited per user: MESSAGES_PER_WINDOW messages (private and order
  threads together) per MESSAGE_WINDOW_MS. Exact under concurrency: the count, the
  message and its attempt row are one serialized transaction (lib.users._reservation,
  the login limiter's), so a refused message is neither stored nor counted.
- A new message notifies its recipients in the same transaction: in-app
  (lib.notifications), by email where they turned that on (lib.mail), and the
  message.created webhook event (lib.webhooks).
- Opening a thread marks it read for the reader (message_reads) and marks read the
  notifications that point at it.
"""
import uuid as uuidlib

from lib import catalog, mail, notifications, orders, users, webhooks
from lib.db import utc_now
from lib.http import BadRequest, Forbidden, NotFound

MAX_BODY = 10_000
MESSAGES_PER_WINDOW = 30
MESSAGE_WINDOW_MS = 10 * 60 * 1000     # at most the login_attempts pruning window (an hour)
THREAD_PAGE = 100
PREVIEW = 200


def clean_body(body):
    return catalog.text(body, "body", MAX_BODY, required=True)


def private_link(username):
    return "/messages.php?with=" + username


def order_link(order_uuid):
    return "/messages.php?order=" + order_uuid


def _peer(db, user, name, field):
    name = users.validate_username(name, field)
    peer = users.by_username(db, name)
    if peer is None:
        raise NotFound(f"no user named {name}", fields={field: "unknown user"})
    if peer["uuid"] == user["uuid"]:
        raise BadRequest(f"{field}: that is you", fields={field: "that is you"})
    return peer


def _pair(a, b):
    return (a, b) if a < b else (b, a)


def _message_json(row, thread_uuid):
    return {"id": int(row["id"]), "thread_uuid": thread_uuid, "sender_uuid": row["sender_uuid"],
            "sender_username": row.get("sender_username"), "body": row["body"], "created_at": row["created_at"]}


def _thread_json(row, peer=None, order=None):
    """A thread as the API shows it: a private one names the other user (`peer`)."""
    return {"uuid": row["uuid"] if row else None, "kind": "order" if order is not None else "private",
            "transaction_uuid": order["uuid"] if order is not None else None,
            "peer": {"uuid": peer["uuid"], "username": peer["username"]} if peer is not None else None}


def _messages(db, thread, limit, offset):
    """The thread's messages in order: the newest `limit` after skipping `offset` newest."""
    if thread is None:
        return []
    rows = db.query("SELECT m.id, m.sender_uuid, u.username AS sender_username, m.body, m.created_at "
                    "FROM messages m LEFT JOIN users u ON u.uuid = m.sender_uuid WHERE m.thread_id = ? "
                    "ORDER BY m.id DESC LIMIT ? OFFSET ?", (thread["id"], int(limit), int(offset)))
    return [_message_json(r, thread["uuid"]) for r in reversed(rows)]


def _mark_read(db, thread, user_uuid, link):
    if thread is not None and thread["last_message_id"]:
        with db.transaction():
            db.upsert("message_reads", {"thread_id": thread["id"], "user_uuid": user_uuid},
                      {"last_read_id": int(thread["last_message_id"])})
            notifications.mark_link_read(db, user_uuid, link)


def _blocks(db, blocker_uuid, blocked_uuid):
    return db.value("SELECT 1 FROM user_blocks WHERE blocker_uuid = ? AND blocked_uuid = ?",
                    (blocker_uuid, blocked_uuid)) is not None


# -- order threads: who may see and write ------------------------------------------------

def _order_access(db, user, order_uuid, field="transaction_uuid"):
    """(order row, may write) for a visible order thread; 404 otherwise."""
    if order_uuid is not None and not isinstance(order_uuid, str):
        raise BadRequest(f"{field} must be a string", fields={field: "must be a string"})
    if not order_uuid or not order_uuid.strip():
        raise BadRequest(f"{field} is required", fields={field: "required"})
    order_uuid = order_uuid.strip()
    row = None
    if catalog.is_uuid(order_uuid):
        row = db.one("SELECT t.uuid, t.buyer_uuid, t.store_uuid, st.storename, bu.username AS buyer_username "
                     "FROM transactions t JOIN stores st ON st.uuid = t.store_uuid "
                     "JOIN users bu ON bu.uuid = t.buyer_uuid WHERE t.uuid = ?", (order_uuid,))
    who = orders.parties(db, user, row) if row else set()
    if {"buyer", "vendor"} & who:
        return row, True
    if "staff" in who:
        dispute = db.one("SELECT status FROM disputes WHERE transaction_uuid = ? ORDER BY id DESC LIMIT 1",
                         (row["uuid"],))
        if dispute is not None:
            return row, dispute["status"] == "open"
    raise NotFound("no such order")


def _order_json(row):
    return {"uuid": row["uuid"], "storename": row["storename"], "store_uuid": row["store_uuid"],
            "buyer_uuid": row["buyer_uuid"], "buyer_username": row["buyer_username"]}


# -- reading ------------------------------------------------------------------------------

def conversations(db, user, limit=50, offset=0):
    """My private conversations and the threads of my orders (as buyer or store member),
    most recent first, each with its last message and my unread count."""
    me = user["uuid"]
    stores = catalog.user_store_uuids(db, me)
    order_cond = "t.buyer_uuid = ?"
    params = [me, me, me, me, me]
    if stores:
        order_cond += " OR t.store_uuid IN (%s)" % ", ".join("?" * len(stores))
        params += stores
    rows = db.query(
        "SELECT th.id, th.uuid, th.kind, th.user_a, th.user_b, th.transaction_uuid, th.updated_at, "
        "pa.username AS a_name, pb.username AS b_name, st.storename, bu.username AS buyer_username, "
        "m.body, m.created_at AS last_at, m.sender_uuid AS last_sender_uuid, mu.username AS last_sender, "
        "(SELECT COUNT(*) FROM messages m2 WHERE m2.thread_id = th.id AND m2.sender_uuid <> ? AND m2.id > "
        " COALESCE((SELECT r.last_read_id FROM message_reads r WHERE r.thread_id = th.id AND r.user_uuid = ?), 0)"
        ") AS unread "
        "FROM message_threads th JOIN messages m ON m.id = th.last_message_id "
        "LEFT JOIN users mu ON mu.uuid = m.sender_uuid "
        "LEFT JOIN users pa ON pa.uuid = th.user_a LEFT JOIN users pb ON pb.uuid = th.user_b "
        "LEFT JOIN transactions t ON t.uuid = th.transaction_uuid "
        "LEFT JOIN stores st ON st.uuid = t.store_uuid LEFT JOIN users bu ON bu.uuid = t.buyer_uuid "
        "WHERE (th.kind = 'private' AND (th.user_a = ? OR th.user_b = ?)) "
        f"OR (th.kind = 'order' AND ({order_cond})) "
        "ORDER BY th.updated_at DESC, th.id DESC LIMIT ? OFFSET ?",
        params + [int(limit), int(offset)])
    out = []
    for r in rows:
        item = {"uuid": r["uuid"], "kind": r["kind"], "transaction_uuid": r["transaction_uuid"],
                "peer": None, "order": None, "unread": int(r["unread"] or 0), "updated_at": r["updated_at"],
                "last_message": {"sender_uuid": r["last_sender_uuid"], "sender_username": r["last_sender"],
                                 "preview": (r["body"] or "")[:PREVIEW], "created_at": r["last_at"]}}
        if r["kind"] == "private":
            mine_is_a = r["user_a"] == me
            item["peer"] = {"uuid": r["user_b"] if mine_is_a else r["user_a"],
                            "username": r["b_name"] if mine_is_a else r["a_name"]}
            item["link"] = private_link(item["peer"]["username"] or "")
        else:
            item["order"] = {"uuid": r["transaction_uuid"], "storename": r["storename"],
                             "buyer_username": r["buyer_username"]}
            item["link"] = order_link(r["transaction_uuid"])
        out.append(item)
    return out


def private_thread(db, user, peer_name, limit=THREAD_PAGE, offset=0, field="with", mark=True):
    """My conversation with `peer_name` (possibly empty) and whether I blocked them; marks it read."""
    peer = _peer(db, user, peer_name, field)
    a, b = _pair(user["uuid"], peer["uuid"])
    thread = db.one("SELECT * FROM message_threads WHERE kind = 'private' AND user_a = ? AND user_b = ?", (a, b))
    out = {"thread": _thread_json(thread, peer=peer), "peer": {"uuid": peer["uuid"], "username": peer["username"]},
           "messages": _messages(db, thread, limit, offset),
           "blocked_by_me": _blocks(db, user["uuid"], peer["uuid"])}
    if mark:
        _mark_read(db, thread, user["uuid"], private_link(peer["username"]))
    return out


def order_thread(db, user, order_uuid, limit=THREAD_PAGE, offset=0, field="transaction_uuid", mark=True):
    """An order's thread (404 unless I may see it) and whether I may write; marks it read."""
    row, can_post = _order_access(db, user, order_uuid, field)
    thread = db.one("SELECT * FROM message_threads WHERE kind = 'order' AND transaction_uuid = ?", (row["uuid"],))
    out = {"thread": _thread_json(thread, order=row), "order": _order_json(row), "can_post": can_post,
           "messages": _messages(db, thread, limit, offset)}
    if mark:
        _mark_read(db, thread, user["uuid"], order_link(row["uuid"]))
    return out


def thread_by_uuid(db, user, thread_uuid, limit=THREAD_PAGE, offset=0, field="thread"):
    """A thread by its uuid, as private_thread / order_thread show it; 404 unless mine to see."""
    row = db.one("SELECT * FROM message_threads WHERE uuid = ?", (thread_uuid,)) \
        if catalog.is_uuid(thread_uuid) else None
    if row is not None and row["kind"] == "order":
        return order_thread(db, user, row["transaction_uuid"], limit, offset, field)
    if row is None or user["uuid"] not in (row["user_a"], row["user_b"]):
        raise NotFound("no such thread")
    peer = users.by_uuid(db, row["user_b"] if row["user_a"] == user["uuid"] else row["user_a"])
    return private_thread(db, user, peer["username"], limit, offset, field)


# -- sending ------------------------------------------------------------------------------

def _thread_for(db, kind, a=None, b=None, transaction_uuid=None):
    """The thread row, created if missing (inside the sending transaction)."""
    if kind == "private":
        sql, params = "SELECT * FROM message_threads WHERE kind = 'private' AND user_a = ? AND user_b = ?", (a, b)
    else:
        sql, params = "SELECT * FROM message_threads WHERE kind = 'order' AND transaction_uuid = ?", (transaction_uuid,)
    thread = db.one(sql + " FOR UPDATE", params)
    if thread is None:
        now = utc_now()
        db.insert("message_threads", {"uuid": str(uuidlib.uuid4()), "kind": kind, "user_a": a, "user_b": b,
                                      "transaction_uuid": transaction_uuid, "last_message_id": None,
                                      "created_at": now, "updated_at": now})
        thread = db.one(sql, params)
    return thread


def _append(db, user, thread, body, ip, now_ms):
    """Count the message against the sender's limit, store it, mark the thread read for
    the sender; returns the message dict. Runs inside the reservation."""
    users._throttle(db, "message", "username_lower = ?", [user["uuid"]], MESSAGES_PER_WINDOW,
                    MESSAGE_WINDOW_MS, now_ms, "messages")
    now = utc_now()
    message_id = db.insert("messages", {"thread_id": thread["id"], "sender_uuid": user["uuid"], "body": body,
                                        "created_at": now})
    db.execute("UPDATE message_threads SET last_message_id = ?, updated_at = ? WHERE id = ?",
               (message_id, now, thread["id"]))
    db.upsert("message_reads", {"thread_id": thread["id"], "user_uuid": user["uuid"]}, {"last_read_id": message_id})
    users._record_attempt(db, "message", ip, user["uuid"], False, now_ms)
    return {"id": message_id, "thread_uuid": thread["uuid"], "sender_uuid": user["uuid"],
            "sender_username": user["username"], "body": body, "created_at": now}


def send_private(db, user, to, body, ip=None, field="to"):
    """Send `body` to the user named `to`. 400 bad body / name / yourself, 403 blocked
    (either way), 404 unknown user, 429 over the limit. Returns {"message", "thread"}."""
    body = clean_body(body)
    peer = _peer(db, user, to, field)
    a, b = _pair(user["uuid"], peer["uuid"])
    now_ms = users._now_ms()
    with users._reservation(db):
        if _blocks(db, peer["uuid"], user["uuid"]):
            raise Forbidden(f"{peer['username']} has blocked you: your message was not sent")
        if _blocks(db, user["uuid"], peer["uuid"]):
            raise Forbidden(f"you blocked {peer['username']}: unblock them to send a message")
        thread = _thread_for(db, "private", a=a, b=b)
        message = _append(db, user, thread, body, ip, now_ms)
        link = private_link(user["username"])
        notifications.notify(db, peer["uuid"], "message", f"New message from {user['username']}", link)
        mail.notify_message(db, [peer["uuid"]], user["username"], link)
        # the recipient's endpoints see the thread from the recipient's side: its peer is the sender
        webhooks.message_event(db, message, _thread_json(thread, peer=user), user_uuids=(peer["uuid"],))
    return {"message": message, "thread": _thread_json(thread, peer=peer)}


def send_order(db, user, order_uuid, body, ip=None, field="transaction_uuid"):
    """Write in an order's thread. 400 bad body, 403 staff without an open dispute, 404 not
    visible, 429 over the limit. Returns {"message", "thread"}."""
    body = clean_body(body)
    now_ms = users._now_ms()
    with users._reservation(db):
        row, can_post = _order_access(db, user, order_uuid, field)
        if not can_post:
            raise Forbidden("staff may write in an order's thread only while its dispute is open")
        thread = _thread_for(db, "order", transaction_uuid=row["uuid"])
        message = _append(db, user, thread, body, ip, now_ms)
        people = {row["buyer_uuid"]}
        people.update(r["user_uuid"] for r in db.query("SELECT user_uuid FROM store_users WHERE store_uuid = ?",
                                                       (row["store_uuid"],)))
        people.update(r["sender_uuid"] for r in db.query("SELECT DISTINCT sender_uuid FROM messages "
                                                         "WHERE thread_id = ?", (thread["id"],)))
        people.discard(user["uuid"])
        link = order_link(row["uuid"])
        notifications.notify_many(db, people, "message",
                                  f"New message about order {row['uuid'][:8]} from {user['username']}", link)
        mail.notify_message(db, people, user["username"], link)
        thread_out = _thread_json(thread, order=row)
        webhooks.message_event(db, message, thread_out, user_uuids=(row["buyer_uuid"],),
                               store_uuid=row["store_uuid"])
    return {"message": message, "thread": thread_out}


# -- blocking -----------------------------------------------------------------------------

def blocked_users(db, user):
    return db.query("SELECT u.uuid, u.username, b.created_at FROM user_blocks b JOIN users u "
                    "ON u.uuid = b.blocked_uuid WHERE b.blocker_uuid = ? ORDER BY b.id", (user["uuid"],))


def block(db, user, username, field="username"):
    """Refuse private messages from `username` (idempotent). Returns my blocked users."""
    peer = _peer(db, user, username, field)
    with db.transaction():
        if not _blocks(db, user["uuid"], peer["uuid"]):
            db.insert("user_blocks", {"blocker_uuid": user["uuid"], "blocked_uuid": peer["uuid"],
                                      "created_at": utc_now()})
    return blocked_users(db, user)


def unblock(db, user, username, field="username"):
    """Accept private messages from `username` again (idempotent). Returns my blocked users."""
    peer = _peer(db, user, username, field)
    with db.transaction():
        db.execute("DELETE FROM user_blocks WHERE blocker_uuid = ? AND blocked_uuid = ?",
                   (user["uuid"], peer["uuid"]))
    return blocked_users(db, user)
