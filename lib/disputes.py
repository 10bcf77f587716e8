"""Disputes: opened by the `dispute` order action (which freezes the order), a claims
thread both parties and staff can write to, and staff resolution.

Resolution goes through `orders.take_action()` (release, cancel = full refund,
partial_refund with a percent), which writes the intent for cron and closes the
dispute in the same transaction. Visibility follows the order: the buyer, the
store's members and staff; everyone else gets 404.
"""
from lib import catalog, orders, roles, validate, webhooks
from lib.db import utc_now
from lib.http import BadRequest, Conflict, Forbidden, NotFound
from lib.order_rows import DISPUTE_COLUMNS, DISPUTE_FROM
from lib.order_rows import dispute_json as _json
from lib.order_rows import dispute_row as _row
from lib.orders import RESOLUTION_OF_ACTION

RESOLUTIONS = {"release": "release", "refund": "cancel", "cancel": "cancel",
               "partial_refund": "partial_refund"}
MAX_CLAIM = 5000

def _visible(db, user, row):
    """The user's parties to the dispute's order (empty: not visible)."""
    return orders.parties(db, user, {"buyer_uuid": row["buyer_uuid"], "store_uuid": row["store_uuid"]})


def parse_status(status):
    """A dispute status filter: None, '', 'open' or 'resolved' (400 otherwise)."""
    if status not in (None, "", "open", "resolved"):
        raise BadRequest("status must be open or resolved", fields={"status": "bad"})
    return status


def list_disputes(db, user, limit=50, offset=0, status=None):
    """Disputes of orders `user` is party to (every dispute for staff), newest first."""
    parse_status(status)
    where, params = [], []
    if not roles.is_staff(user):
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
        raise NotFound("no such dispute")
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
    claim = validate.text(claim, "claim", MAX_CLAIM, required=True)
    with db.transaction():
        row = _row(db, dispute_uuid)
        if row is None or not _visible(db, user, row):
            raise NotFound("no such dispute")
        if row["status"] != "open":
            raise Conflict("this dispute is resolved; no more claims can be added")
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
    if not roles.is_staff(staff_user):
        row = _row(db, dispute_uuid)
        if row is None or not _visible(db, staff_user, row):
            raise NotFound("no such dispute")
        raise Forbidden("only staff may resolve a dispute")
    key = resolution.strip().lower() if isinstance(resolution, str) else ""
    if key not in RESOLUTIONS:
        raise BadRequest("resolution must be release, refund or partial_refund",
                        fields={"resolution": "unknown"})
    row = _row(db, dispute_uuid)
    if row is None:
        raise NotFound("no such dispute")
    if row["status"] != "open":
        raise Conflict("this dispute is already resolved")
    result = orders.take_action(db, staff_user, row["transaction_uuid"], RESOLUTIONS[key],
                                refund_percent=refund_percent, comment=comment, ip=ip)
    result["dispute_uuid"] = row["uuid"]
    result["resolution"] = RESOLUTION_OF_ACTION[RESOLUTIONS[key]]
    return result
