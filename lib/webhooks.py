"""Signed webhooks: endpoints, the outbox, and what the API shows.

Who gets what
- A user's endpoint (store_uuid NULL) gets the events of the orders the user bought or
  sells as a member of the order's store, and of their disputes; staff and admins'
  endpoints may also subscribe to the staff event payout.needs_attention.
- A store's endpoint (store_uuid set, created by a member) gets the events of the store's
  orders; every member of the store sees, deletes and redelivers it.
- Anyone else's endpoints never see an order (the same rule as GET /api/transactions.php).

The outbox
`emit()` is called INSIDE the database transaction of the change it reports (it refuses
to run outside one): the event row and one delivery row per subscribed endpoint commit or
roll back with the change, so no event is lost and none is invented. Nothing is sent
here: cron/webhooks.py delivers (the web process makes no outbound calls). An event no
endpoint subscribed to is not stored.

Body and signature (sent by cron/webhooks.py; `sign` / `verify` are shared)
    {"id": event uuid, "type": "order.paid", "created_at": "YYYY-MM-DD HH:MM:SS", "data": {...}}
    X-Marketplace-Signature: t=UNIX_TIME,v1=HEX(HMAC-SHA256(secret, "UNIX_TIME." + body))
`data` holds "order" (the order JSON of GET /api/transactions.php, without histories) for
order events, "dispute" (and "order", and "claim" for dispute.claim_added) for dispute
events, "intent" and "reason" for payout.needs_attention, "message" and "thread" for
message.created (a private message reaches its recipient's endpoints; an order thread's
message the buyer's and the store's), "ticket" (uuid, subject, status) and "message" for
ticket.answered (a staff reply, to the opener's own endpoints).

URLs: http or https, no credentials; every address the host resolves to must be public
(not loopback, private, link-local, shared, reserved, unspecified or multicast) unless
WEBHOOK_ALLOW_PRIVATE=1. Checked when the endpoint is created and again before every
delivery (DNS may change), and the delivery connects to the very address checked.
"""
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import threading
import time
import urllib.parse
import uuid as uuidlib

from lib import audit, catalog, env, mail, notifications, order_rows, roles, validate
from lib.db import utc_now
from lib.http import BadRequest, Conflict, HttpError, NotFound

ORDER_EVENTS = ("order.created", "order.partially_paid", "order.paid", "order.dispatched", "order.confirmed",
                "order.released", "order.cancelled", "order.failed")
DISPUTE_EVENTS = ("dispute.opened", "dispute.claim_added", "dispute.resolved")
STAFF_EVENTS = ("payout.needs_attention",)
MESSAGE_EVENTS = ("message.created",)
TICKET_EVENTS = ("ticket.answered",)
EVENTS = ORDER_EVENTS + DISPUTE_EVENTS + STAFF_EVENTS + MESSAGE_EVENTS + TICKET_EVENTS

SIGNATURE_HEADER = "X-Marketplace-Signature"
MAX_ENDPOINTS = 20          # per user, and per store
MAX_URL = 2048
SECRET_PREFIX = "whsec_"

# The order actions of lib/orders.take_action that are events of their own; intent
# actions whose payout confirmed (cron/follow.py), and the event each one reports.
ACTION_EVENTS = {"dispatch": "order.dispatched", "confirm": "order.confirmed"}
PAYOUT_EVENTS = {"RELEASE": "order.released", "CANCEL": "order.cancelled", "PARTIAL_REFUND": "order.cancelled"}


# -- signatures ----------------------------------------------------------------------

def signature(secret, timestamp, body):
    """The X-Marketplace-Signature value for `body` (bytes) sent at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), str(int(timestamp)).encode("ascii") + b"." + body, hashlib.sha256)
    return "t=%d,v1=%s" % (int(timestamp), mac.hexdigest())


def verify(secret, header, body, tolerance=300, now=None):
    """True when `header` is a valid signature of `body` made less than `tolerance` s ago."""
    try:
        parts = dict(p.strip().split("=", 1) for p in (header or "").split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    now = time.time() if now is None else now
    if tolerance is not None and abs(now - t) > tolerance:
        return False
    expected = signature(secret, t, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, v) for k, v in
               (p.strip().split("=", 1) for p in header.split(",")) if k == "v1")


# -- URL checks ----------------------------------------------------------------------

class UrlRefused(ValueError):
    pass


def allow_private(settings=None):
    """WEBHOOK_ALLOW_PRIVATE=1 (web: lib/env; cron: its settings dict)."""
    return env.flag("WEBHOOK_ALLOW_PRIVATE", settings)


def split_url(url):
    """(scheme, host, port, path-with-query) of an acceptable URL; UrlRefused otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise UrlRefused("url is required")
    url = url.strip()
    if len(url) > MAX_URL:
        raise UrlRefused("url is longer than %d characters" % MAX_URL)
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise UrlRefused("url must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("url is malformed")
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("url must be http:// or https://")
    if not parts.hostname:
        raise UrlRefused("url has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("url must not contain credentials")
    if parts.fragment:
        raise UrlRefused("url must not contain a #fragment")
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def blocked(ip):
    """Why an address may not be called (a string), or None when it is public."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for name in ("is_loopback", "is_private", "is_link_local", "is_unspecified", "is_multicast", "is_reserved"):
        if getattr(addr, name):
            return name[3:].replace("_", "-")
    if not addr.is_global:
        return "not global"
    return None


def resolve(host, port, timeout=3.0):
    """The addresses `host` resolves to (getaddrinfo, bounded by `timeout`)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        return sorted({i[4][0] for i in infos})
    except socket.gaierror:
        pass                                    # a name, not a literal address
    out = {}

    def look():
        try:
            out["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            out["error"] = e
    t = threading.Thread(target=look, daemon=True)
    t.start()
    t.join(timeout)
    if "infos" not in out:
        raise UrlRefused("the host %s cannot be resolved%s" % (host, " (timed out)" if t.is_alive() else ""))
    return sorted({i[4][0] for i in out["infos"]})


def check_url(url, private_ok=False, resolver=resolve):
    """(scheme, host, port, path, addresses) of a URL we may call; UrlRefused otherwise."""
    scheme, host, port, path = split_url(url)
    addresses = resolver(host, port)
    if not addresses:
        raise UrlRefused("the host %s cannot be resolved" % host)
    if not private_ok:
        for ip in addresses:
            why = blocked(ip)
            if why:
                raise UrlRefused("url resolves to a %s address (%s); set WEBHOOK_ALLOW_PRIVATE=1 to allow it"
                                 % (why, ip))
    return scheme, host, port, path, addresses


# -- endpoints -----------------------------------------------------------------------

def parse_events(value, user, store_uuid=None):
    """A list of event types from a JSON list or a comma-separated string; empty or '*': all
    the events this kind of endpoint may get."""
    allowed = list(ORDER_EVENTS + DISPUTE_EVENTS + MESSAGE_EVENTS)
    if store_uuid is None:
        allowed += list(TICKET_EVENTS)     # a ticket is a person's, never a store's
    if store_uuid is None and roles.is_staff(user):
        allowed += list(STAFF_EVENTS)
    if value in (None, "", [], "*", ["*"]):
        return allowed
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise BadRequest("events must be a list of event types or a comma-separated string",
                        fields={"events": "bad type"})
    items = [v for v in items if v]
    out = []
    for v in items:
        if v == "*":
            return allowed
        if v not in EVENTS:
            raise BadRequest("unknown event %r; events are: %s" % (v[:64], ", ".join(EVENTS)),
                            fields={"events": "unknown event"})
        if v in STAFF_EVENTS and v not in allowed:
            raise HttpError(403 if store_uuid is None else 400,
                            "%s is for staff endpoints only (not a store's)" % v, fields={"events": "staff only"})
        if v in TICKET_EVENTS and v not in allowed:
            raise BadRequest("%s is for a person's endpoints (not a store's)" % v,
                            fields={"events": "not for a store"})
        if v not in out:
            out.append(v)
    if not out:
        raise BadRequest("events must name at least one event", fields={"events": "empty"})
    return out


def _json(row):
    return {"id": row["id"], "url": row["url"], "events": row["events"].split(","),
            "store_uuid": row["store_uuid"], "owner_user_uuid": row["owner_user_uuid"],
            "description": row["description"], "status": row["status"],
            "consecutive_failures": int(row["consecutive_failures"]),
            "secret_prefix": row["secret"][:len(SECRET_PREFIX) + 4],
            "last_success_at": row["last_success_at"], "last_failure_at": row["last_failure_at"],
            "created_at": row["created_at"]}


def create(db, user, url, events=None, store_uuid=None, description=None, private_ok=None):
    """Register an endpoint; returns (endpoint dict, secret). The secret is shown only here.

    400 bad url / events / refused address; 403 not a member of the store, or a staff event
    asked by a non-staff user; 404 unknown store; 409 too many endpoints.
    """
    if store_uuid not in (None, ""):
        if not isinstance(store_uuid, str):
            raise BadRequest("store_uuid must be a string", fields={"store_uuid": "bad type"})
        store_uuid = catalog.require_member(db, user, store_uuid.strip(), for_selling=False)["uuid"]
    else:
        store_uuid = None
    event_list = parse_events(events, user, store_uuid)
    description = validate.text(description, "description", 255, multiline=False)
    try:
        check_url(url, allow_private() if private_ok is None else private_ok)
    except UrlRefused as e:
        raise BadRequest(str(e), fields={"url": str(e)})
    url = url.strip()
    secret = SECRET_PREFIX + secrets.token_hex(32)
    now = utc_now()
    with db.transaction():
        if store_uuid is None:
            n = db.value("SELECT COUNT(*) FROM webhooks WHERE owner_user_uuid = ? AND store_uuid IS NULL "
                         "AND deleted_at IS NULL", (user["uuid"],))
        else:
            n = db.value("SELECT COUNT(*) FROM webhooks WHERE store_uuid = ? AND deleted_at IS NULL", (store_uuid,))
        if int(n or 0) >= MAX_ENDPOINTS:
            raise Conflict("at most %d webhook endpoints (delete one first)" % MAX_ENDPOINTS)
        hook_id = db.insert("webhooks", {
            "owner_user_uuid": user["uuid"], "store_uuid": store_uuid, "url": url, "events": ",".join(event_list),
            "secret": secret, "description": description, "status": "active", "consecutive_failures": 0,
            "last_success_at": None, "last_failure_at": None, "created_at": now, "updated_at": now,
            "deleted_at": None})
        audit.log(db, "webhook_created", user["uuid"], str(hook_id), url[:255])
    return _json(db.one("SELECT * FROM webhooks WHERE id = ?", (hook_id,))), secret


def _visible_sql(db, user):
    """(SQL condition on webhooks w, params): the endpoints `user` may see and change."""
    stores = catalog.user_store_uuids(db, user["uuid"])
    cond, params = "(w.store_uuid IS NULL AND w.owner_user_uuid = ?)", [user["uuid"]]
    if stores:
        cond = "(%s OR w.store_uuid IN (%s))" % (cond, ", ".join("?" * len(stores)))
        params += stores
    return cond + " AND w.deleted_at IS NULL", params


def list_webhooks(db, user):
    cond, params = _visible_sql(db, user)
    return [_json(r) for r in db.query("SELECT w.* FROM webhooks w WHERE %s ORDER BY w.id DESC" % cond, params)]


def parse_id(value, field):
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text:
        raise BadRequest("%s is required" % field, fields={field: "required"})
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise BadRequest("%s must be a positive integer" % field, fields={field: "integer"})
    return int(text)


def get_webhook(db, user, webhook_id):
    """The endpoint row if `user` may see it; 404 otherwise (someone else's does not exist)."""
    cond, params = _visible_sql(db, user)
    row = db.one("SELECT w.* FROM webhooks w WHERE w.id = ? AND %s" % cond, [webhook_id] + params)
    if row is None:
        raise NotFound("no such webhook")
    return row


def delete(db, user, webhook_id):
    """Delete an endpoint: nothing more is sent to it (pending deliveries become failing)."""
    with db.transaction():
        row = get_webhook(db, user, webhook_id)
        now = utc_now()
        db.execute("UPDATE webhooks SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
                   (now, now, row["id"]))
        db.execute("UPDATE webhook_deliveries SET status = 'failing', next_attempt_at = NULL, claimed_by = NULL, "
                   "last_error = 'endpoint deleted', updated_at = ? WHERE webhook_id = ? AND status = 'pending'",
                   (now, row["id"]))
        audit.log(db, "webhook_deleted", user["uuid"], str(row["id"]), row["url"][:255])
    return row["id"]


DELIVERY_COLUMNS = ("d.id, d.webhook_id, ev.uuid AS event_id, ev.type AS event_type, d.transaction_uuid, d.status, "
                    "d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.delivered_at, "
                    "d.created_at, d.updated_at")


def _delivery_json(row, log):
    out = {k: row[k] for k in ("id", "webhook_id", "event_id", "event_type", "transaction_uuid", "status",
                               "last_status_code", "last_error", "delivered_at", "created_at", "updated_at")}
    out["attempts"] = int(row["attempts"])
    out["next_attempt_at"] = row["next_attempt_at"] if row["status"] == "pending" else None
    out["attempt_log"] = log
    return out


def _with_logs(db, rows):
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    logs = {i: [] for i in ids}
    for a in db.query("SELECT delivery_id, attempt, started_at, duration_ms, status_code, error, outcome "
                      "FROM webhook_attempts WHERE delivery_id IN (%s) ORDER BY id" % ", ".join("?" * len(ids)), ids):
        logs[a.pop("delivery_id")].append(a)
    return [_delivery_json(r, logs[r["id"]]) for r in rows]


def deliveries(db, user, webhook_id, limit=50, offset=0):
    """An endpoint's deliveries, newest first, each with its attempt log."""
    row = get_webhook(db, user, webhook_id)
    rows = db.query("SELECT %s FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id "
                    "WHERE d.webhook_id = ? ORDER BY d.id DESC LIMIT ? OFFSET ?" % DELIVERY_COLUMNS,
                    (row["id"], int(limit), int(offset)))
    return _json(row), _with_logs(db, rows)


def redeliver(db, user, delivery_id=None, event_id=None, webhook_id=None):
    """Send an event again, with the same event id and body: one delivery (`delivery_id`), or
    every delivery of `event_id` (an event uuid) to my endpoints (only `webhook_id`'s if given).
    404 unknown / not mine; 409 every one of them is still pending."""
    cond, params = _visible_sql(db, user)
    sql = ("SELECT d.id, d.status FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
           "JOIN webhook_events ev ON ev.id = d.event_id WHERE %s" % cond)
    if delivery_id is not None:
        sql, params = sql + " AND d.id = ?", params + [delivery_id]
    else:
        if not validate.is_uuid(event_id):
            raise BadRequest("event_id must be an event uuid", fields={"event_id": "uuid"})
        sql, params = sql + " AND ev.uuid = ?", params + [event_id]
    if webhook_id is not None:
        sql, params = sql + " AND d.webhook_id = ?", params + [webhook_id]
    now = utc_now()
    with db.transaction():
        targets = db.query(sql + " ORDER BY d.id", params)
        if not targets:
            raise NotFound("no such delivery")
        changed = [t["id"] for t in targets if t["status"] != "pending" and db.execute(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
            "claimed_by = NULL, updated_at = ? WHERE id = ? AND status <> 'pending'", (now, now, t["id"]))]
        if not changed:
            raise Conflict("already pending: cron sends it on its next run")
    rows = db.query("SELECT %s FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id "
                    "WHERE d.id IN (%s) ORDER BY d.id" % (DELIVERY_COLUMNS, ", ".join("?" * len(changed))), changed)
    return _with_logs(db, rows)


# -- the outbox ----------------------------------------------------------------------

def _recipients(db, event_type, store_uuid, user_uuids):
    """Live endpoints subscribed to `event_type` for these people / this store."""
    if event_type in STAFF_EVENTS:
        rows = db.query("SELECT w.id, w.events FROM webhooks w JOIN users u ON u.uuid = w.owner_user_uuid "
                        "WHERE w.deleted_at IS NULL AND w.store_uuid IS NULL AND u.banned = 0 "
                        "AND u.role IN ('staff', 'admin') ORDER BY w.id")
    else:
        owners = set(u for u in user_uuids if u)
        if store_uuid:
            owners.update(r["user_uuid"] for r in db.query(
                "SELECT user_uuid FROM store_users WHERE store_uuid = ?", (store_uuid,)))
        conds, params = [], []
        if owners:
            conds.append("(w.store_uuid IS NULL AND u.banned = 0 AND w.owner_user_uuid IN (%s))"
                         % ", ".join("?" * len(owners)))
            params += sorted(owners)
        if store_uuid:
            conds.append("w.store_uuid = ?")
            params.append(store_uuid)
        if not conds:
            return []
        rows = db.query("SELECT w.id, w.events FROM webhooks w JOIN users u ON u.uuid = w.owner_user_uuid "
                        "WHERE w.deleted_at IS NULL AND (%s) ORDER BY w.id" % " OR ".join(conds), params)
    return [r["id"] for r in rows if event_type in r["events"].split(",")]


def emit(db, event_type, payload, transaction_uuid=None, store_uuid=None, user_uuids=(), dispute_uuid=None):
    """Write the event (and a delivery per subscribed endpoint) to the outbox.

    Must run inside the transaction of the change it reports. `payload` is the `data`
    object, or a function returning it (called only when someone subscribed). Returns the
    event uuid, or None when no endpoint wants it (then nothing is stored).
    """
    if event_type not in EVENTS:
        raise ValueError("unknown webhook event %r" % event_type)
    if not db.in_transaction:
        raise RuntimeError("webhooks.emit must run inside the database transaction of the change it reports")
    hooks = _recipients(db, event_type, store_uuid, user_uuids)
    if not hooks:
        return None
    data = payload() if callable(payload) else payload
    now = utc_now()
    event_uuid = str(uuidlib.uuid4())
    body = json.dumps({"id": event_uuid, "type": event_type, "created_at": now, "data": data},
                      sort_keys=True, separators=(",", ":"), default=str)
    event_id = db.insert("webhook_events", {"uuid": event_uuid, "type": event_type, "transaction_uuid": transaction_uuid,
                                            "dispute_uuid": dispute_uuid, "store_uuid": store_uuid, "body": body,
                                            "created_at": now})
    for hook_id in hooks:
        db.insert("webhook_deliveries", {"event_id": event_id, "webhook_id": hook_id,
                                         "transaction_uuid": transaction_uuid, "status": "pending", "attempts": 0,
                                         "next_attempt_at": now, "claimed_by": None, "last_status_code": None,
                                         "last_error": None, "delivered_at": None, "created_at": now,
                                         "updated_at": now})
    return event_uuid


def _order_data(db, order_uuid):
    return order_rows.order_json(order_rows.order_row(db, order_uuid))


def order_event(db, event_type, order_uuid, **extra):
    """emit() an order event: data {"order": the order as the API shows it, **extra}."""
    if not event_type:
        return None
    t = db.one("SELECT store_uuid, buyer_uuid FROM transactions WHERE uuid = ?", (order_uuid,))
    if t is None:
        return None
    mail.notify(db, event_type, order_uuid, t["store_uuid"], t["buyer_uuid"])
    notifications.order_event(db, event_type, order_uuid, t["store_uuid"], t["buyer_uuid"])
    return emit(db, event_type, lambda: dict({"order": _order_data(db, order_uuid)}, **extra),
                transaction_uuid=order_uuid, store_uuid=t["store_uuid"], user_uuids=(t["buyer_uuid"],))


def action_event(db, action, order_uuid):
    """The event of an order action of lib/orders.take_action, if it is one (dispatch, confirm)."""
    return order_event(db, ACTION_EVENTS.get(action), order_uuid)


def payout_event(db, intent_action, order_uuid):
    """order.released / order.cancelled once a RELEASE / CANCEL / PARTIAL_REFUND confirmed."""
    return order_event(db, PAYOUT_EVENTS.get(intent_action), order_uuid)


def dispute_event(db, event_type, dispute_uuid, claim=None):
    """emit() a dispute event: data {"dispute", "order"[, "claim"]}."""
    row = order_rows.dispute_row(db, dispute_uuid)
    if row is None:
        return None

    def data():
        out = {"dispute": order_rows.dispute_json(row), "order": _order_data(db, row["transaction_uuid"])}
        if claim is not None:
            out["claim"] = claim
        return out
    mail.notify(db, event_type, row["transaction_uuid"], row["store_uuid"], row["buyer_uuid"])
    actor = claim["user_uuid"] if claim is not None else row["opened_by"] if event_type == "dispute.opened" else None
    notifications.order_event(db, event_type, row["transaction_uuid"], row["store_uuid"], row["buyer_uuid"],
                              dispute_uuid=row["uuid"], actor_uuid=actor)
    return emit(db, event_type, data, transaction_uuid=row["transaction_uuid"], store_uuid=row["store_uuid"],
                user_uuids=(row["buyer_uuid"],), dispute_uuid=row["uuid"])


def message_event(db, message, thread, user_uuids, store_uuid=None):
    """message.created: a private message (to its recipient's endpoints) or an order thread's
    message (to the buyer's and the store's endpoints); data {"message", "thread"}."""
    return emit(db, "message.created", {"message": message, "thread": thread},
                transaction_uuid=thread.get("transaction_uuid"), store_uuid=store_uuid, user_uuids=user_uuids)


def ticket_event(db, ticket, message):
    """ticket.answered: staff replied to a support ticket; to the opener's endpoints."""
    data = {"ticket": {k: ticket[k] for k in ("uuid", "subject", "transaction_uuid")}, "message": message}
    data["ticket"]["status"] = "answered"
    return emit(db, "ticket.answered", data, user_uuids=(ticket["user_uuid"],))


def needs_attention_event(db, table, intent, reason):
    """payout.needs_attention for staff endpoints: the intent cron handed to staff, and why."""
    fields = ("uuid", "transaction_uuid", "deposit_uuid", "action", "refund_percent", "requested_by", "created_at")
    data = {"intent": dict({k: intent.get(k) for k in fields if k in intent}, kind=table.name, status="needs_attention"),
            "reason": reason}
    return emit(db, "payout.needs_attention", data, transaction_uuid=intent.get("transaction_uuid"))
