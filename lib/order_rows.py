"""The order and dispute rows as every reader sees them: one SELECT each, and their JSON.

Below lib/orders, lib/disputes and lib/webhooks, which all read these rows (webhooks puts
them in event bodies), so none of them needs to import another to show an order.
Amounts are stored as integer base-unit strings; the JSON gives token-unit decimal strings.

A page of orders as JSON text (`orders_json`) reuses each order's encoded object from a
per-process cache while the order's version is the one it was encoded at. The version is
read for the whole page in one statement (version_sql): the columns a write after
checkout changes (transactions.updated_at, dispute_uuid, buyer_confirmed_at; the
received amount and escrow address) and the ids of the order's newest status and
shipping rows (both logs are append-only, so a row's id stands for its content). What
checkout writes once (store, buyer, package, price, currency, amounts asked) is not in
the version: no code changes it. Only the orders whose version differs are read in full.
"""
import functools
import operator

from lib import pricing, validate
from lib.http import json_text

ORDER_COLUMNS = (
    "t.id, t.uuid, t.type, t.description, t.package_uuid, t.store_uuid, st.storename, "
    "t.buyer_uuid, u.username AS buyer_username, t.dispute_uuid, t.price_usd, "
    "COALESCE(s.status, 'PENDING') AS current_status, COALESCE(s.amount, '0') AS current_amount, "
    "COALESCE(s.time, t.created_at) AS status_time, "
    "e.required_amount, e.received_amount, e.escrow_address, e.chain_id, e.currency, "
    "e.token_contract, e.decimals, e.usd_rate, e.refund_address, "
    "t.buyer_confirmed_at, t.created_at, t.updated_at, "
    "(SELECT ss.status FROM shipping_statuses ss WHERE ss.transaction_uuid = t.uuid "
    "ORDER BY ss.id DESC LIMIT 1) AS current_shipping_status")
# The current status as v_current_transaction_statuses defines it, joined directly
# (through the view every row would look its transaction up a second time).
ORDER_FROM = (
    "transactions t "
    "JOIN evm_transactions e ON e.transaction_uuid = t.uuid "
    "JOIN stores st ON st.uuid = t.store_uuid "
    "JOIN users u ON u.uuid = t.buyer_uuid "
    "LEFT JOIN transaction_statuses s ON s.id = (SELECT s2.id FROM transaction_statuses s2 "
    "WHERE s2.transaction_uuid = t.uuid ORDER BY s2.id DESC LIMIT 1)")

DISPUTE_COLUMNS = ("d.uuid, d.transaction_uuid, d.opened_by, ou.username AS opened_by_username, d.status, "
                   "d.resolution, d.refund_percent, d.resolved_by, d.created_at, d.resolved_at, "
                   "t.store_uuid, st.storename, t.buyer_uuid, bu.username AS buyer_username")
DISPUTE_FROM = ("disputes d JOIN transactions t ON t.uuid = d.transaction_uuid "
                "JOIN stores st ON st.uuid = t.store_uuid JOIN users bu ON bu.uuid = t.buyer_uuid "
                "LEFT JOIN users ou ON ou.uuid = d.opened_by")


@functools.lru_cache(maxsize=8192)
def units(value, decimals):
    """A stored base-unit amount as a token-unit string (left alone if not an integer).
    Remembered: the orders of a page mostly share their few amounts, each formatted once."""
    try:
        return pricing.format_amount(int(str(value)), decimals)
    except (TypeError, ValueError):
        return value


def order_row(db, order_uuid):
    """The order's row (ORDER_COLUMNS), or None for an unknown or malformed uuid."""
    if not validate.is_uuid(order_uuid):
        return None
    return db.one(f"SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE t.uuid = ?", (order_uuid,))


def order_rows_by_id(db, ids):
    """The rows of the orders with these ids, newest first."""
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    rows = db.query(f"SELECT {ORDER_COLUMNS} FROM {ORDER_FROM} WHERE t.id IN ({marks})", list(ids))
    rows.sort(key=lambda r: r["id"], reverse=True)
    return rows


# Order fields copied from the row as they are, in the order of the JSON object.
_HEAD = ("uuid", "type", "description", "package_uuid", "store_uuid", "storename", "buyer_uuid",
         "buyer_username", "dispute_uuid", "current_status")
_TAIL = ("escrow_address", "chain_id", "currency", "token_contract", "price_usd", "current_shipping_status",
         "buyer_confirmed_at", "created_at")
_head = operator.itemgetter(*_HEAD)
_tail = operator.itemgetter(*_TAIL)


def order_json(row):
    """The SPEC's order fields (plus price_usd, received_amount, token_contract)."""
    out = dict(zip(_HEAD, _head(row)))
    decimals = row["decimals"]
    out["current_amount"] = units(row["current_amount"], decimals)
    out["required_amount"] = units(row["required_amount"], decimals)
    out["received_amount"] = units(row["received_amount"], decimals)
    out.update(zip(_TAIL, _tail(row)))
    out["updated_at"] = max(row["updated_at"] or "", row["status_time"] or "")
    return out


# The version as one text per order (fewer values to read than one column each; the
# parts never contain '|', and '-' stands for NULL).
_VERSION_PARTS = ("t.uuid", "t.updated_at", "COALESCE(t.dispute_uuid, '-')", "COALESCE(t.buyer_confirmed_at, '-')",
                  "e.received_amount", "COALESCE(e.escrow_address, '-')",
                  "COALESCE((SELECT MAX(s.id) FROM transaction_statuses s WHERE s.transaction_uuid = t.uuid), 0)",
                  "COALESCE((SELECT MAX(ss.id) FROM shipping_statuses ss WHERE ss.transaction_uuid = t.uuid), 0)")
VERSION_FROM = "transactions t JOIN evm_transactions e ON e.transaction_uuid = t.uuid"


def version_sql(db, marks):
    """SELECT id, version of the orders whose ids fill `marks`."""
    separated = [text for part in _VERSION_PARTS for text in (part, "'|'")][:-1]
    version = db.concat(*separated)
    return f"SELECT t.id, {version} AS version FROM {VERSION_FROM} WHERE t.id IN ({marks}) ORDER BY t.id DESC"


MAX_CACHED = 10000        # orders per process (about 1 KB each); when full it starts over

_encoded = {}             # order id -> (version, which starts with the uuid; JSON text of order_json)


def orders_json(db, ids):
    """The JSON text of [order_json(row) for the orders with these ids, newest first]."""
    if not ids:
        return "[]"
    versions = db.query(version_sql(db, ", ".join("?" * len(ids))), list(ids))
    texts, missing = {}, {}
    for v in versions:
        hit = _encoded.get(v["id"])
        if hit is not None and hit[0] == v["version"]:
            texts[v["id"]] = hit[1]
        else:
            missing[v["id"]] = v["version"]
    if missing:
        if len(_encoded) + len(missing) > MAX_CACHED:
            _encoded.clear()
        for row in order_rows_by_id(db, list(missing)):
            # A write between the two reads makes this row newer than its version: the
            # next request reads it again, never an older one.
            text = texts[row["id"]] = json_text(order_json(row))
            _encoded[row["id"]] = (missing[row["id"]], text)
    return "[" + ", ".join(texts[v["id"]] for v in versions if v["id"] in texts) + "]"


def forget_encoded():
    """Drop every kept encoding (benchmarks measure the page without them)."""
    _encoded.clear()


def dispute_row(db, dispute_uuid):
    """The dispute's row (DISPUTE_COLUMNS), or None for an unknown or malformed uuid."""
    if not validate.is_uuid(dispute_uuid):
        return None
    return db.one(f"SELECT {DISPUTE_COLUMNS} FROM {DISPUTE_FROM} WHERE d.uuid = ?", (dispute_uuid,))


def dispute_json(row):
    out = {k: row[k] for k in ("uuid", "transaction_uuid", "opened_by", "opened_by_username", "status",
                               "resolution", "refund_percent", "resolved_by", "created_at",
                               "resolved_at", "store_uuid", "storename", "buyer_uuid",
                               "buyer_username")}
    out["resolver_user_uuid"] = row["resolved_by"]   # the original's name for resolved_by
    return out
