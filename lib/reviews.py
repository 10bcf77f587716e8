"""Reviews of released orders: the buyer's score and text, the store's answer, staff hiding.

Rules:
- only the buyer of an order reviews it, once, and only after it is RELEASED (someone
  else asking about the order gets 404, as for the order itself);
- a member of the order's store answers a review once;
- staff hide a review with a reason (audited); a hidden review leaves the lists and
  the averages (staff still see it);
- averages are exact: Decimal(sum) / count, rounded to 2 places for the wire and display.

Every write that changes what catalog pages show (add, reply, hide) is one function here.
Public lists never name the reviewer: a review says only that a buyer of the store wrote it.
"""
import uuid as uuidlib
from decimal import ROUND_HALF_UP, Decimal

from lib import audit, catalog, catalog_cache, status_machine as sm
from lib.db import IntegrityError, utc_now
from lib.http import BadRequest, Conflict, Forbidden, NotFound

MAX_BODY = 2000
MAX_REASON = 255
SCORES = (1, 2, 3, 4, 5)
TWO_PLACES = Decimal("0.01")

REVIEW_COLUMNS = ("r.uuid, r.transaction_uuid, r.store_uuid, s.storename, r.item_uuid, i.name AS item_name, "
                  "r.score, r.body, r.reply, r.replied_at, r.hidden, r.hidden_reason, r.hidden_at, "
                  "r.created_at")
REVIEW_FROM = ("reviews r JOIN stores s ON s.uuid = r.store_uuid JOIN items i ON i.uuid = r.item_uuid")


def parse_score(value):
    """An integer 1-5 (a JSON number or ASCII digits); 400 naming `score` otherwise."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        score = value
    elif isinstance(value, str) and value.strip() in ("1", "2", "3", "4", "5"):
        score = int(value.strip())
    else:
        score = None
    if score not in SCORES:
        raise BadRequest("score must be a whole number from 1 to 5", fields={"score": "1 to 5"})
    return score


def review_json(row, staff=False):
    out = {"uuid": row["uuid"], "store_uuid": row["store_uuid"], "storename": row["storename"],
           "item_uuid": row["item_uuid"], "item_name": row["item_name"], "score": int(row["score"]),
           "body": row["body"], "reply": row["reply"], "replied_at": row["replied_at"],
           "created_at": row["created_at"]}
    if staff:
        out.update({"transaction_uuid": row["transaction_uuid"], "hidden": bool(row["hidden"]),
                    "hidden_reason": row["hidden_reason"], "hidden_at": row["hidden_at"]})
    return out


def _row(db, review_uuid):
    if not catalog.is_uuid(review_uuid):
        return None
    return db.one(f"SELECT {REVIEW_COLUMNS} FROM {REVIEW_FROM} WHERE r.uuid = ?", (review_uuid,))


def _order_for_buyer(db, user, transaction_uuid):
    """The order (uuid, store, item, buyer) if `user` is its buyer; 404 otherwise."""
    row = None
    if catalog.is_uuid(transaction_uuid):
        row = db.one("SELECT t.uuid, t.store_uuid, t.buyer_uuid, p.item_uuid, i.name AS item_name, "
                     "s.storename FROM transactions t JOIN packages p ON p.uuid = t.package_uuid "
                     "JOIN items i ON i.uuid = p.item_uuid JOIN stores s ON s.uuid = t.store_uuid "
                     "WHERE t.uuid = ?", (transaction_uuid,))
    if row is None or user is None or row["buyer_uuid"] != user["uuid"]:
        raise NotFound("no such order")
    return row


def review_of_order(db, transaction_uuid):
    row = db.one(f"SELECT {REVIEW_COLUMNS} FROM {REVIEW_FROM} WHERE r.transaction_uuid = ?",
                 (transaction_uuid,))
    return review_json(row, staff=True) if row else None


def reviewable_order(db, user, transaction_uuid):
    """For the review form: the buyer's order with `status`, `may_review` and its `review`."""
    order = dict(_order_for_buyer(db, user, transaction_uuid))
    current = sm.current_status(db, order["uuid"])
    order["status"] = current["status"] if current else sm.PENDING
    order["review"] = review_of_order(db, order["uuid"])
    order["may_review"] = order["status"] == sm.RELEASED and order["review"] is None
    return order


def add_review(db, user, transaction_uuid, score, body=None):
    """The buyer reviews a RELEASED order once. 400 bad score/text, 404 not the buyer's
    order, 409 not released yet or already reviewed. Returns the review."""
    score = parse_score(score)
    body = catalog.text(body, "body", MAX_BODY)
    order = _order_for_buyer(db, user, transaction_uuid)
    row = {"uuid": str(uuidlib.uuid4()), "transaction_uuid": order["uuid"], "store_uuid": order["store_uuid"],
           "item_uuid": order["item_uuid"], "buyer_uuid": user["uuid"], "score": score, "body": body,
           "hidden": 0, "created_at": utc_now()}
    with db.transaction():
        current = sm.current_status(db, order["uuid"])
        if current is None or current["status"] != sm.RELEASED:
            raise Conflict("only a released order can be reviewed (the funds must have gone to the store)")
        if db.value("SELECT 1 FROM reviews WHERE transaction_uuid = ?", (order["uuid"],)) is not None:
            raise Conflict("this order is already reviewed")
        try:
            db.insert("reviews", row)
        except IntegrityError:
            raise Conflict("this order is already reviewed")
        catalog_cache.changed(db)        # ratings and review lists are on the catalog pages
    return review_json(_row(db, row["uuid"]), staff=True)


def reply(db, user, review_uuid, body):
    """A member of the review's store answers it once. 400 empty/long text, 404 unknown
    (or hidden) review, 403 not a member, 409 already answered."""
    body = catalog.text(body, "reply", MAX_BODY, required=True)
    with db.transaction():
        row = _row(db, review_uuid)
        if row is None or (row["hidden"] and not catalog.is_staff(user)):
            raise NotFound("no such review")
        if catalog.member_role(db, user, row["store_uuid"]) is None:
            raise Forbidden("only a member of the reviewed store may answer")
        changed = db.execute("UPDATE reviews SET reply = ?, reply_by = ?, replied_at = ? "
                             "WHERE uuid = ? AND reply IS NULL", (body, user["uuid"], utc_now(), row["uuid"]))
        if changed != 1:
            raise Conflict("the store has already answered this review")
        catalog_cache.changed(db)
    return review_json(_row(db, row["uuid"]), staff=True)


def hide(db, staff_user, review_uuid, reason, ip=None):
    """Staff hide a review with a reason (audited). 403 not staff, 400 no reason,
    404 unknown, 409 already hidden."""
    catalog.require_staff(staff_user)
    reason = catalog.text(reason, "reason", MAX_REASON, required=True, multiline=False)
    with db.transaction():
        row = _row(db, review_uuid)
        if row is None:
            raise NotFound("no such review")
        changed = db.execute("UPDATE reviews SET hidden = 1, hidden_by = ?, hidden_reason = ?, hidden_at = ? "
                             "WHERE uuid = ? AND hidden = 0", (staff_user["uuid"], reason, utc_now(), row["uuid"]))
        if changed != 1:
            raise Conflict("this review is already hidden")
        audit.log(db, "review_hidden", staff_user["uuid"], row["uuid"], reason, ip=ip)
        catalog_cache.changed(db)
    return review_json(_row(db, row["uuid"]), staff=True)


# -- reading ------------------------------------------------------------------------

def average(total, count):
    """The exact mean as a Decimal rounded half-up to 2 places, or None without reviews."""
    if not count:
        return None
    return (Decimal(int(total)) / Decimal(int(count))).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def _rating(total, count):
    avg = average(total, count)
    return {"average": str(avg) if avg is not None else None, "count": int(count or 0)}


def rating(db, store_uuid=None, item_uuid=None):
    """{"average": "4.50" or None, "count": n} of the visible reviews of a store or an item."""
    column, value = ("store_uuid", store_uuid) if store_uuid is not None else ("item_uuid", item_uuid)
    row = db.one(f"SELECT COUNT(*) AS n, COALESCE(SUM(score), 0) AS total FROM reviews "
                 f"WHERE {column} = ? AND hidden = 0", (value,))
    return _rating(row["total"], row["n"])


def ratings(db, column, uuids):
    """{uuid: rating} for many stores ('store_uuid') or items ('item_uuid') in one query."""
    assert column in ("store_uuid", "item_uuid")
    uuids = sorted(set(uuids))
    out = {u: _rating(0, 0) for u in uuids}
    if not uuids:
        return out
    marks = ", ".join("?" * len(uuids))
    for r in db.query(f"SELECT {column} AS k, COUNT(*) AS n, SUM(score) AS total FROM reviews "
                      f"WHERE hidden = 0 AND {column} IN ({marks}) GROUP BY {column}", uuids):
        out[r["k"]] = _rating(r["total"], r["n"])
    return out


def add_ratings(db, rows, column="item_uuid", key="uuid"):
    """Set row['rating'] on each dict of `rows` (items: their uuid; stores: column='store_uuid')."""
    found = ratings(db, column, [r[key] for r in rows])
    for r in rows:
        r["rating"] = found[r[key]]
    return rows


def list_reviews(db, user=None, store_uuid=None, item_uuid=None, store_uuids=None, limit=50, offset=0):
    """Newest first: the visible reviews of a store, an item or several stores.
    Staff also see hidden ones (with the reason)."""
    staff = catalog.is_staff(user)
    where, params = [], []
    if store_uuid is not None:
        where.append("r.store_uuid = ?")
        params.append(store_uuid)
    if item_uuid is not None:
        where.append("r.item_uuid = ?")
        params.append(item_uuid)
    if store_uuids is not None:
        if not store_uuids:
            return []
        where.append("r.store_uuid IN (%s)" % ", ".join("?" * len(store_uuids)))
        params += list(store_uuids)
    if not staff:
        where.append("r.hidden = 0")
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows = db.query(f"SELECT {REVIEW_COLUMNS} FROM {REVIEW_FROM}{clause} ORDER BY r.id DESC LIMIT ? OFFSET ?",
                    params + [int(limit), int(offset)])
    return [review_json(r, staff=staff) for r in rows]


def my_reviews(db, user, limit=50, offset=0):
    """The reviews `user` wrote (hidden ones too, with the reason), newest first."""
    rows = db.query(f"SELECT {REVIEW_COLUMNS} FROM {REVIEW_FROM} WHERE r.buyer_uuid = ? "
                    "ORDER BY r.id DESC LIMIT ? OFFSET ?", (user["uuid"], int(limit), int(offset)))
    return [review_json(r, staff=True) for r in rows]


def get_review(db, user, review_uuid):
    """One review; a hidden one only for staff and its writer (404 otherwise)."""
    row = _row(db, review_uuid)
    if row is None:
        raise NotFound("no such review")
    writer = user is not None and db.value("SELECT buyer_uuid FROM reviews WHERE uuid = ?",
                                           (row["uuid"],)) == user["uuid"]
    if row["hidden"] and not (catalog.is_staff(user) or writer):
        raise NotFound("no such review")
    return review_json(row, staff=catalog.is_staff(user) or writer)
