"""Disputes: opened by the `dispute` order action (which freezes the order), a claims
thread both parties and staff can write to, and staff resolution.

Resolution goes through `orders.take_action()` (release, cancel = full refund,
partial_refund with a percent), which writes the intent for cron and closes the
dispute in the same transaction. Visibility follows the order: the buyer, the
store's members and staff; everyone else gets 404.
"""
import uuid as uuidlib

from lib import audit, catalog
from lib import webhooks
from lib.db import utc_now
from lib.http import HttpError

RESOLUTIONS = {"release": "release", "refund": "cancel", "cancel": "cancel",
               "partial_refund": "partial_refund"}
# What the dispute row records for each order action.
RESOLUTION_OF_ACTION = {"release": "release", "cancel": "refund", "partial_refund": "partial_refund"}
MAX_CLAIM = 5000

DISPUTE_COLUMNS = ("d.uuid, d.transaction_uuid, d.opened_by, ou.username AS opened_by_username, d.status, "
                   "d.resolution, d.refund_percent, d.resolved_by, d.created_at, d.resolved_at, "
                   "t.store_uuid, st.storename, t.buyer_uuid, bu.username AS buyer_username")
DISPUTE_FROM = ("disputes d JOIN transactions t ON t.uuid = d.transaction_uuid "
                "JOIN stores st ON st.uuid = t.store_uuid JOIN users bu ON bu.uuid = t.buyer_uuid "
                "LEFT JOIN users ou ON ou.uuid = d.opened_by")


def create(db, order, user, comment=None):
    """Open a dispute on `order` (inside the caller's transaction); return its uuid.

    Called by orders.take_action('dispute') after decide() allowed it.
    """
    now = utc_now()
    dispute_uuid = str(uuidlib.uuid4())
    db.insert("disputes", {"uuid": dispute_uuid, "transaction_uuid": order["uuid"],
                           "opened_by": user["uuid"], "status": "open", "resolution": None,
                           "refund_percent": None, "resolved_by": None, "created_at": now,
                           "resolved_at": None})
    db.execute("UPDATE transactions SET dispute_uuid = ?, updated_at = ? WHERE uuid = ?",
               (dispute_uuid, now, order["uuid"]))
    if comment:
        db.insert("dispute_claims", {"dispute_uuid": dispute_uuid, "user_uuid": user["uuid"],
                                     "claim": comment, "created_at": now})
    webhooks.dispute_event(db, "dispute.opened", dispute_uuid)
    return dispute_uuid


def close(db, dispute, staff_user, action, refund_percent=None, comment=None):
    """Mark an open dispute resolved (inside the caller's transaction)."""
    now = utc_now()
    changed = db.execute("UPDATE disputes SET status = 'resolved', resolution = ?, refund_percent = ?, "
                         "resolved_by = ?, resolved_at = ? WHERE uuid = ? AND status = 'open'",
                         (RESOLUTION_OF_ACTION[action], refund_percent, staff_user["uuid"], now,
                          dispute["uuid"]))
    if changed != 1:
        raise HttpError(409, "this dispute is already resolved")
    if comment:
        db.insert("dispute_claims", {"dispute_uuid": dispute["uuid"], "user_uuid": staff_user["uuid"],
                                     "claim": comment, "created_at": now})
    audit.log(db, "dispute_resolved", staff_user["uuid"], dispute["uuid"],
              f"{RESOLUTION_OF_ACTION[action]} {refund_percent or ''}".strip())
    webhooks.dispute_event(db, "dispute.resolved", dispute["uuid"])


def _visible(db, user, row):
    """The user's parties to the dispute's order (empty: not visible)."""
    from lib import orders
    return orders.parties(db, user, {"buyer_uuid": row["buyer_uuid"], "store_uuid": row["store_uuid"]})


def _row(db, dispute_uuid):
    if not catalog.is_uuid(dispute_uuid):
        return None
    return db.one(f"SELECT {DISPUTE_COLUMNS} FROM {DISPUTE_FROM} WHERE d.uuid = ?", (dispute_uuid,))


def _json(row):
    out = {k: row[k] for k in ("uuid", "transaction_uuid", "opened_by", "opened_by_username", "status",
                               "resolution", "refund_percent", "resolved_by", "created_at",
                               "resolved_at", "store_uuid", "storename", "buyer_uuid",
                               "buyer_username")}
    out["resolver_user_uuid"] = row["resolved_by"]   # the original's name for resolved_by
    return out


def list_disputes(db, user, limit=50, offset=0, status=None):
    """Disputes of orders `user` is party to (every dispute for staff), newest first."""
    if status not in (None, "", "open", "resolved"):
        raise HttpError(400, "status must be open or resolved", fields={"status": "bad"})
    where, params = [], []
    if not catalog.is_staff(user):
        stores = catalog.user_store_uuids(db, user["uuid"])
        cond = "t.buyer_uuid = ?"
        params.append(user["uuid"])
        if stores:
            cond += " OR t.store_uuid IN (%s)" % ", ".join("?" * len(stores))
            params += stores
        where.append(f"({cond})")
    if status:
        where.append("d.status = ?")
        params.append(status)
    sql = f"SELECT {DISPUTE_COLUMNS} FROM {DISPUTE_FROM}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = db.query(sql + " ORDER BY d.id DESC LIMIT ? OFFSET ?", params + [int(limit), int(offset)])
    return [_json(r) for r in rows]


def get_dispute(db, user, dispute_uuid):
    """A dispute with its claims thread; 404 unless party to the order or staff."""
    row = _row(db, dispute_uuid)
    if row is None or not _visible(db, user, row):
        raise HttpError(404, "no such dispute")
    out = _json(row)
    out["claims"] = db.query(
        "SELECT c.id, c.user_uuid, u.username, c.claim, c.created_at FROM dispute_claims c "
        "LEFT JOIN users u ON u.uuid = c.user_uuid WHERE c.dispute_uuid = ? ORDER BY c.id",
        (row["uuid"],))
    return out


def staff_claimants(db, dispute_uuid):
    """The uuids of staff and admins who wrote claims in this dispute."""
    return {r["uuid"] for r in db.query(
        "SELECT DISTINCT u.uuid FROM dispute_claims c JOIN users u ON u.uuid = c.user_uuid "
        "WHERE c.dispute_uuid = ? AND u.role IN ('staff', 'admin')", (dispute_uuid,))}


def add_claim(db, user, dispute_uuid, claim):
    """The buyer, a store member or staff adds a claim to an open dispute.

    400 empty/overlong claim, 404 not visible, 409 dispute resolved. Returns the claim dict.
    """
    claim = catalog.text(claim, "claim", MAX_CLAIM, required=True)
    with db.transaction():
        row = _row(db, dispute_uuid)
        if row is None or not _visible(db, user, row):
            raise HttpError(404, "no such dispute")
        if row["status"] != "open":
            raise HttpError(409, "this dispute is resolved; no more claims can be added")
        now = utc_now()
        claim_id = db.insert("dispute_claims", {"dispute_uuid": row["uuid"], "user_uuid": user["uuid"],
                                                "claim": claim, "created_at": now})
        webhooks.dispute_event(db, "dispute.claim_added", row["uuid"], claim={
            "id": claim_id, "user_uuid": user["uuid"], "username": user["username"], "claim": claim, "created_at": now})
    return {"id": claim_id, "dispute_uuid": row["uuid"], "user_uuid": user["uuid"],
            "username": user["username"], "claim": claim, "created_at": now}


def resolve(db, staff_user, dispute_uuid, resolution, refund_percent=None, comment=None, ip=None):
    """Staff decide an open dispute: 'release' (to the vendor), 'refund' (all to the buyer)
    or 'partial_refund' (refund_percent 1-100 to the buyer). Writes the intent and closes the
    dispute in one transaction. 403 not staff, 404 unknown, 409 resolved / intent open.
    Returns the take_action result plus "dispute_uuid" and "resolution".
    """
    from lib import orders
    if not catalog.is_staff(staff_user):
        row = _row(db, dispute_uuid)
        if row is None or not _visible(db, staff_user, row):
            raise HttpError(404, "no such dispute")
        raise HttpError(403, "only staff may resolve a dispute")
    key = resolution.strip().lower() if isinstance(resolution, str) else ""
    if key not in RESOLUTIONS:
        raise HttpError(400, "resolution must be release, refund or partial_refund",
                        fields={"resolution": "unknown"})
    row = _row(db, dispute_uuid)
    if row is None:
        raise HttpError(404, "no such dispute")
    if row["status"] != "open":
        raise HttpError(409, "this dispute is already resolved")
    result = orders.take_action(db, staff_user, row["transaction_uuid"], RESOLUTIONS[key],
                                refund_percent=refund_percent, comment=comment, ip=ip)
    result["dispute_uuid"] = row["uuid"]
    result["resolution"] = RESOLUTION_OF_ACTION[RESOLUTIONS[key]]
    return result
