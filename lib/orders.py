"""Orders: checkout, scoped listing, detail with histories, and the order actions.

The one rule book is `status_machine.decide()`; `take_action()` is the one code path
that applies an action (the JSON API, the HTML pages and staff dispute resolution
all go through it). Every state change happens inside one `db.transaction()` that
first locks the order row (`FOR UPDATE` on MariaDB; SQLite's BEGIN IMMEDIATE lock
covers the database), so concurrent requests on one order are serialized and at
most one intent is ever open (the UNIQUE open_key backs this up).

Privacy: an order is visible only to its buyer, the members of its store and staff;
to anyone else it does not exist (404), in lists, details and actions alike.

Amounts are stored as integer base-unit strings; the dicts returned here give
token-unit decimal strings (pricing.format_amount).
"""
import uuid as uuidlib

from lib import audit, catalog, chains, intents, pricing, roles, status_machine as sm, tokens, validate
from lib import webhooks
from lib.db import utc_now
from lib.http import BadRequest, Conflict, Forbidden, HttpError, NotFound
from lib.order_rows import ORDER_COLUMNS, ORDER_FROM, order_json  # noqa: F401 (names other code uses)
from lib.order_rows import order_row as _order_row
from lib.order_rows import order_rows_by_id as _fetch_rows
from lib.order_rows import units as _units

# What the dispute row records for each order action that resolves it.
RESOLUTION_OF_ACTION = {"release": "release", "cancel": "refund", "partial_refund": "partial_refund"}

SCOPES = ("mine", "buyer", "vendor", "all")


# -- checkout --------------------------------------------------------------------

def create_order(db, buyer, package_uuid, currency="ETH", chain_id=1, refund_address=None):
    """Create an order for `package_uuid`, priced by the server in `currency` on `chain_id`.

    Returns {"ok", "uuid", "escrow_address_pending", "required_amount" (token units),
    "currency", "chain_id"}. Errors: 404 unknown package; 400 unsupported chain, unknown
    token, bad refund address; 409 token not active, store suspended, stale/missing rate;
    403 buying from a store you are a member of.
    """
    if not package_uuid:
        raise BadRequest("package_uuid is required", fields={"package_uuid": "required"})
    package = catalog.package_for_sale(db, package_uuid)
    chain_id = tokens.parse_chain_id(1 if chain_id in (None, "") else chain_id)
    token = tokens.payable_token(db, chain_id, "ETH" if currency in (None, "") else currency)
    tokens.require_store_accepts(db, package["store_uuid"], token)
    if refund_address not in (None, ""):
        refund_address = tokens.checksum_address(refund_address, "refund_address")
    else:
        refund_address = buyer.get("refund_address") or None
        if refund_address and not chains.is_checksum_address(refund_address):
            refund_address = None
    refuse_own_store(db, buyer, package)
    quote = pricing.quote_detail(db, package["price_usd"], token)
    now = utc_now()
    order_uuid = str(uuidlib.uuid4())
    description = f"{package['item_name']} - {package['name']}"[:255]
    with db.transaction():
        db.insert("transactions", {
            "uuid": order_uuid, "type": "evm", "description": description,
            "package_uuid": package["uuid"], "store_uuid": package["store_uuid"],
            "buyer_uuid": buyer["uuid"], "price_usd": package["price_usd"], "dispute_uuid": None,
            "buyer_confirmed_at": None, "created_at": now, "updated_at": now})
        db.insert("evm_transactions", {
            "transaction_uuid": order_uuid, "chain_id": chain_id, "currency": token["symbol"],
            "token_contract": token["contract_address"], "decimals": token["decimals"],
            "required_amount": str(quote["required_amount"]), "received_amount": "0",
            "usd_rate": quote["usd_rate"], "refund_address": refund_address,
            "escrow_address": None, "derivation_index": None, "created_at": now})
        sm.append_shipping(db, order_uuid, sm.DISPATCH_PENDING, buyer["uuid"])
        audit.log(db, "order_created", buyer["uuid"], order_uuid,
                  f"{quote['required_amount']} {token['symbol']} chain {chain_id}")
        webhooks.order_event(db, "order.created", order_uuid)
    return {"ok": True, "uuid": order_uuid, "escrow_address_pending": True,
            "required_amount": pricing.format_amount(quote["required_amount"], token["decimals"]),
            "currency": token["symbol"], "chain_id": chain_id, "price_usd": package["price_usd"],
            "usd_rate": quote["usd_rate"]}


def refuse_own_store(db, buyer, package):
    """403 when the buyer is a member of the package's store: nobody buys from themselves."""
    if catalog.member_role(db, buyer, package["store_uuid"]) is not None:
        raise Forbidden("you cannot buy from a store you are a member of")


# -- reading ---------------------------------------------------------------------

def _newest_ids(db, column, values, n):
    """Ids of the newest `n` orders per value of an indexed column, merged newest first."""
    ids = set()
    for value in values:
        ids.update(r["id"] for r in db.query(
            f"SELECT id FROM transactions WHERE {column} = ? ORDER BY id DESC LIMIT ?", (value, n)))
    return sorted(ids, reverse=True)


def order_ids_page(db, user, limit=50, offset=0, scope=None):
    """Ids of one page of the orders `user` may see, newest first.

    Each source (my purchases, each of my stores) is read through its own index
    ((buyer_uuid, id) and (store_uuid, id)) and the pages are merged, so no query
    sorts or scans all orders.
    """
    limit, offset = int(limit), int(offset)
    if scope in (None, ""):
        scope = "all" if roles.is_staff(user) else "mine"
    if scope not in SCOPES:
        raise BadRequest(f"scope must be one of {', '.join(SCOPES)}", fields={"scope": "bad"})
    if scope == "all":
        if not roles.is_staff(user):
            raise Forbidden("only staff may list all orders")
        return [r["id"] for r in db.query("SELECT id FROM transactions ORDER BY id DESC LIMIT ? OFFSET ?",
                                          (limit, offset))]
    n = limit + offset
    ids = set()
    if scope in ("mine", "buyer"):
        ids.update(_newest_ids(db, "buyer_uuid", [user["uuid"]], n))
    if scope in ("mine", "vendor"):
        ids.update(_newest_ids(db, "store_uuid", catalog.user_store_uuids(db, user["uuid"]), n))
    return sorted(ids, reverse=True)[offset:offset + limit]


def list_orders(db, user, limit=50, offset=0, scope=None):
    """Orders `user` is party to (all for staff unless a scope is given), newest first.

    scope: 'mine' (default for non-staff: bought or sold by my stores), 'buyer', 'vendor',
    'all' (default for staff; 403 for others).
    """
    return [order_json(r) for r in _fetch_rows(db, order_ids_page(db, user, limit, offset, scope))]


def parties(db, user, order):
    """The ways `user` relates to `order`: a subset of {'buyer', 'vendor', 'staff'}."""
    out = set()
    if not user:
        return out
    if order["buyer_uuid"] == user["uuid"]:
        out.add("buyer")
    if catalog.member_role(db, user, order["store_uuid"]) is not None:
        out.add("vendor")
    if roles.is_staff(user) and not out:  # a party never uses staff powers on its own order
        out.add("staff")
    return out


def open_dispute_row(db, order_uuid):
    return db.one("SELECT * FROM disputes WHERE transaction_uuid = ? AND status = 'open' "
                  "ORDER BY id DESC LIMIT 1", (order_uuid,))


def order_state(db, order, dispute_open=None, intent_open=None):
    """The OrderState decide() needs, read from the logs (order: a row or dict with uuid).
    dispute_open / intent_open, when the caller already knows them, save their queries."""
    status = order.get("current_status")
    if status is None:
        row = sm.current_status(db, order["uuid"])
        status = row["status"] if row else sm.PENDING
    shipping = order.get("current_shipping_status")
    if "current_shipping_status" not in order:
        row = sm.current_shipping(db, order["uuid"])
        shipping = row["status"] if row else None
    if dispute_open is None:
        dispute_open = open_dispute_row(db, order["uuid"]) is not None
    if intent_open is None:
        intent_open = intents.open_row(db, order["uuid"]) is not None
    return sm.OrderState(
        status=status,
        dispatched=shipping == sm.DISPATCHED,
        buyer_confirmed=bool(order.get("buyer_confirmed_at")),
        dispute_open=dispute_open,
        intent_open=intent_open)


def allowed_actions(db, user, order, who=None):
    """The actions `user` may take on `order` now (for buttons)."""
    who = parties(db, user, order) if who is None else who
    state = order_state(db, order)
    return [a for a in sm.ACTIONS if sm.decide(a, who, state)[0] == 200]


def allowed_actions_many(db, user, orders):
    """{uuid: allowed_actions(db, user, order)} for a page of orders in a fixed number of
    queries (my stores, open disputes, open intents), not a few per order."""
    uuids = [o["uuid"] for o in orders]
    if not uuids:
        return {}
    marks = ", ".join("?" * len(uuids))
    my_stores = set(catalog.user_store_uuids(db, user["uuid"]))
    disputed = {r["transaction_uuid"] for r in db.query(
        f"SELECT transaction_uuid FROM disputes WHERE status = 'open' AND transaction_uuid IN ({marks})", uuids)}
    busy = {r["open_key"] for r in db.query(
        f"SELECT open_key FROM transaction_intents WHERE open_key IN ({marks})", uuids)}
    out = {}
    for o in orders:
        who = set()
        if o["buyer_uuid"] == user["uuid"]:
            who.add("buyer")
        if o["store_uuid"] in my_stores:
            who.add("vendor")
        if roles.is_staff(user) and not who:  # as parties()
            who.add("staff")
        state = order_state(db, o, dispute_open=o["uuid"] in disputed, intent_open=o["uuid"] in busy)
        out[o["uuid"]] = [a for a in sm.ACTIONS if sm.decide(a, who, state)[0] == 200]
    return out


def get_order(db, user, order_uuid):
    """One order with statuses, shipping, intents, payouts, dispute; 404 unless party or staff."""
    row = _order_row(db, order_uuid)
    who = parties(db, user, row) if row else set()
    if not who:
        raise NotFound("no such order")
    out = order_json(row)
    decimals = row["decimals"]
    out["statuses"] = [{"time": s["time"], "status": s["status"], "amount": _units(s["amount"], decimals),
                        "comment": s["comment"], "payment_receipt_uuid": s["payment_receipt_uuid"]}
                       for s in sm.history(db, row["uuid"])]
    out["shipping"] = [{"time": s["time"], "status": s["status"], "comment": s["comment"]}
                       for s in sm.shipping_history(db, row["uuid"])]
    out["intents"] = intents.of_order(db, row["uuid"])
    out["payouts"] = payouts(db, row)
    out["dispute"] = None
    if row["dispute_uuid"]:
        d = db.one("SELECT uuid, status, resolution, refund_percent, created_at, resolved_at "
                   "FROM disputes WHERE uuid = ?", (row["dispute_uuid"],))
        out["dispute"] = d
    out["usd_rate"] = row["usd_rate"]
    out["decimals"] = decimals
    out["refund_address"] = row["refund_address"] if ({"buyer", "staff"} & who) else None
    out["my_roles"] = sorted(who)
    out["allowed_actions"] = allowed_actions(db, user, row, who)
    return out


def amount_due(order):
    """(received, remaining) of an order from get_order(), in base units: what the escrow
    holds and what the buyer still has to pay (never below 0)."""
    decimals = order["decimals"]
    due = pricing.parse_amount(order["required_amount"], decimals)
    received = pricing.parse_amount(order["received_amount"] or "0", decimals)
    return received, max(due - received, 0)


def waiting(order):
    """Whether an order from get_order() waits on cron: unpaid, or an intent or a payout
    under way (the page refreshes itself meanwhile)."""
    return order["current_status"] == sm.PENDING or any(
        i["status"] in ("pending", "processing") for i in order["intents"]) or any(
        p["status"] in ("signed", "broadcast") for p in order["payouts"])


def payouts(db, order):
    rows = db.query("SELECT id, kind, recipient_role, to_address, amount, currency, tx_hash, status, "
                    "block_number, replacements, retry_of, error, created_at, updated_at FROM payouts "
                    "WHERE transaction_uuid = ? ORDER BY id", (order["uuid"],))
    out = []
    for p in rows:
        p["amount"] = _units(p["amount"], order["decimals"])
        try:
            p["explorer_url"] = chains.explorer_tx_url(order["chain_id"], p["tx_hash"])
        except ValueError:
            p["explorer_url"] = None
        out.append(p)
    return out


def _open_dispute(db, order, user, comment=None):
    """Open a dispute on `order` (inside the caller's transaction); return its uuid.

    Called by take_action('dispute') after decide() allowed it.
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


def _close_dispute(db, dispute, staff_user, action, refund_percent=None, comment=None):
    """Mark an open dispute resolved (inside the caller's transaction)."""
    now = utc_now()
    changed = db.execute("UPDATE disputes SET status = 'resolved', resolution = ?, refund_percent = ?, "
                         "resolved_by = ?, resolved_at = ? WHERE uuid = ? AND status = 'open'",
                         (RESOLUTION_OF_ACTION[action], refund_percent, staff_user["uuid"], now,
                          dispute["uuid"]))
    if changed != 1:
        raise Conflict("this dispute is already resolved")
    if comment:
        db.insert("dispute_claims", {"dispute_uuid": dispute["uuid"], "user_uuid": staff_user["uuid"],
                                     "claim": comment, "created_at": now})
    audit.log(db, "dispute_resolved", staff_user["uuid"], dispute["uuid"],
              f"{RESOLUTION_OF_ACTION[action]} {refund_percent or ''}".strip())
    webhooks.dispute_event(db, "dispute.resolved", dispute["uuid"])


# -- actions ---------------------------------------------------------------------

def parse_percent(value):
    """refund_percent: a whole number from 1 to 100 (400 otherwise); 100 gives the buyer all
    of the remainder after the resolver's share (as the original allowed)."""
    text = str(value).strip() if value is not None else ""
    if not text:
        raise BadRequest("refund_percent is required for a partial refund (1-100)",
                        fields={"refund_percent": "required"})
    if not (text.isascii() and text.isdigit() and len(text) <= 3):
        raise BadRequest("refund_percent must be a whole number from 1 to 100",
                        fields={"refund_percent": "not a number"})
    percent = int(text)
    if not 1 <= percent <= 100:
        raise BadRequest("refund_percent must be between 1 and 100",
                        fields={"refund_percent": "out of range"})
    return percent


def _lock(db, order_uuid):
    """Lock the order row for the rest of the transaction (must be its first read)."""
    if not validate.is_uuid(order_uuid):
        return None
    return db.one("SELECT id FROM transactions WHERE uuid = ? FOR UPDATE", (order_uuid,))


def take_action(db, user, order_uuid, action, refund_percent=None, comment=None, ip=None):
    """Apply `action` to the order for `user`; returns {"ok", "action", "transaction_uuid",
    "intent"} (intent: {uuid, action, status, refund_percent} or None).

    400 unknown action / bad refund_percent / bad comment; 404 not visible to the user;
    403 this person may not; 409 not in this state, or an intent already open.
    Staff moving funds on an order with an open dispute resolves that dispute in the
    same transaction (release -> 'release', cancel -> 'refund', partial_refund).
    """
    action = (action or "").strip().lower() if isinstance(action, str) else ""
    if action not in sm.ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(sm.ACTIONS)}", fields={"action": "unknown"})
    percent = parse_percent(refund_percent) if action == "partial_refund" else None
    comment = validate.text(comment, "comment", 5000)
    intent = None
    with db.transaction():
        if _lock(db, order_uuid) is None:
            raise NotFound("no such order")
        order = _order_row(db, order_uuid)
        who = parties(db, user, order)
        if not who:
            raise NotFound("no such order")
        state = order_state(db, order)
        code, message = sm.decide(action, who, state)
        if code != 200 and roles.is_staff(user) and "staff" not in who \
                and sm.decide(action, {"staff"}, state)[0] == 200:
            code, message = 403, (f"you are a party to this order, so you may not {action.replace('_', ' ')} "
                                  f"it as staff: another staff member or an admin decides")
        if code != 200:
            raise HttpError(code, message)
        if action in sm.MOVES_FUNDS:
            dispute = open_dispute_row(db, order["uuid"]) if "staff" in who else None
            try:
                intent = intents.open_intent(db, order["uuid"], sm.MOVES_FUNDS[action], user["uuid"], percent)
            except intents.IntentConflict as e:
                raise Conflict(str(e))
            if dispute is not None:
                _close_dispute(db, dispute, user, action, percent, comment)
        elif action == "dispatch":
            sm.append_shipping(db, order["uuid"], sm.DISPATCHED, user["uuid"], comment[:255] if comment else None)
        elif action == "confirm":
            now = utc_now()
            db.execute("UPDATE transactions SET buyer_confirmed_at = ?, updated_at = ? WHERE uuid = ?",
                       (now, now, order["uuid"]))
        elif action == "dispute":
            try:
                sm.append_status(db, order["uuid"], sm.FROZEN, order["current_amount"],
                                 f"dispute opened by {user['username']}")
            except sm.TransitionError as e:
                raise Conflict(str(e))
            _open_dispute(db, order, user, comment)
        db.execute("UPDATE transactions SET updated_at = ? WHERE uuid = ?", (utc_now(), order["uuid"]))
        webhooks.action_event(db, action, order["uuid"])
        audit.log(db, f"order_{action}", user["uuid"], order["uuid"],
                  f"refund_percent={percent}" if percent else None, ip)
    return {"ok": True, "action": action, "transaction_uuid": order["uuid"],
            "intent": None if intent is None else {
                "uuid": intent["uuid"], "action": intent["action"], "status": intent["status"],
                "refund_percent": intent["refund_percent"]}}
