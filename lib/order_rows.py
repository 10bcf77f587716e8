"""The order and dispute rows as every reader sees them: one SELECT each, and their JSON.

Below lib/orders, lib/disputes and lib/webhooks, which all read these rows (webhooks puts
them in event bodies), so none of them needs to import another to show an order.
Amounts are stored as integer base-unit strings; the JSON gives token-unit decimal strings.
"""
from lib import pricing, validate

ORDER_COLUMNS = (
    "t.id, t.uuid, t.type, t.description, t.package_uuid, t.store_uuid, st.storename, "
    "t.buyer_uuid, u.username AS buyer_username, t.dispute_uuid, t.price_usd, "
    "v.current_status, v.current_amount, v.updated_at AS status_time, "
    "e.required_amount, e.received_amount, e.escrow_address, e.chain_id, e.currency, "
    "e.token_contract, e.decimals, e.usd_rate, e.refund_address, "
    "t.buyer_confirmed_at, t.created_at, t.updated_at, "
    "(SELECT ss.status FROM shipping_statuses ss WHERE ss.id = (SELECT MAX(ss2.id) "
    "FROM shipping_statuses ss2 WHERE ss2.transaction_uuid = t.uuid)) AS current_shipping_status")
ORDER_FROM = (
    "transactions t "
    "JOIN v_current_transaction_statuses v ON v.transaction_uuid = t.uuid "
    "JOIN evm_transactions e ON e.transaction_uuid = t.uuid "
    "JOIN stores st ON st.uuid = t.store_uuid "
    "JOIN users u ON u.uuid = t.buyer_uuid")

DISPUTE_COLUMNS = ("d.uuid, d.transaction_uuid, d.opened_by, ou.username AS opened_by_username, d.status, "
                   "d.resolution, d.refund_percent, d.resolved_by, d.created_at, d.resolved_at, "
                   "t.store_uuid, st.storename, t.buyer_uuid, bu.username AS buyer_username")
DISPUTE_FROM = ("disputes d JOIN transactions t ON t.uuid = d.transaction_uuid "
                "JOIN stores st ON st.uuid = t.store_uuid JOIN users bu ON bu.uuid = t.buyer_uuid "
                "LEFT JOIN users ou ON ou.uuid = d.opened_by")


def units(value, decimals):
    """A stored base-unit amount as a token-unit string (left alone if not an integer)."""
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


def order_json(row):
    """The SPEC's order fields (plus price_usd, received_amount, token_contract)."""
    updated = max(row["updated_at"] or "", row["status_time"] or "")
    return {
        "uuid": row["uuid"], "type": row["type"], "description": row["description"],
        "package_uuid": row["package_uuid"], "store_uuid": row["store_uuid"],
        "storename": row["storename"], "buyer_uuid": row["buyer_uuid"],
        "buyer_username": row["buyer_username"], "dispute_uuid": row["dispute_uuid"],
        "current_status": row["current_status"],
        "current_amount": units(row["current_amount"], row["decimals"]),
        "required_amount": units(row["required_amount"], row["decimals"]),
        "received_amount": units(row["received_amount"], row["decimals"]),
        "escrow_address": row["escrow_address"], "chain_id": row["chain_id"],
        "currency": row["currency"], "token_contract": row["token_contract"],
        "price_usd": row["price_usd"],
        "current_shipping_status": row["current_shipping_status"],
        "buyer_confirmed_at": row["buyer_confirmed_at"],
        "created_at": row["created_at"], "updated_at": updated,
    }


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
