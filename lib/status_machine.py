"""The order lifecycle (SPEC section 6).

Statuses and shipping rows are append-only; the current status of an order is
its row with the highest id. Intents (lib/intents.py) ask the cron layer to move
funds; at most one is open per order.

This is the one rule book: `decide()` says whether a party may take an action in a
state (the JSON API, the web pages and staff dispute resolution call it), and
`intent_may_execute()` says whether an intent, once decided, may still move funds in
the order's current state (cron asks it just before signing, and again in the
transaction that claims the intent). Both read the same table, FUNDS_STATUSES.
"""
from dataclasses import dataclass

from lib.db import utc_now

PENDING, COMPLETED, RELEASED, FAILED, CANCELLED, FROZEN = (
    "PENDING", "COMPLETED", "RELEASED", "FAILED", "CANCELLED", "FROZEN")
STATUSES = (PENDING, COMPLETED, RELEASED, FAILED, CANCELLED, FROZEN)
FINAL = (RELEASED, FAILED, CANCELLED)

# Allowed moves of the payment status. PENDING -> PENDING records a partial payment;
# COMPLETED -> PENDING a payment that a reorganisation of the chain took away again.
TRANSITIONS = {
    None: {PENDING},
    PENDING: {PENDING, COMPLETED, FAILED, CANCELLED},
    COMPLETED: {RELEASED, CANCELLED, FROZEN, PENDING},
    FROZEN: {RELEASED, CANCELLED},
    RELEASED: set(), FAILED: set(), CANCELLED: set(),
}

DISPATCH_PENDING, DISPATCHED = "DISPATCH PENDING", "DISPATCHED"

# Intent actions (what cron executes); lib/intents.py owns the intents themselves.
RELEASE, CANCEL, PARTIAL_REFUND = "RELEASE", "CANCEL", "PARTIAL_REFUND"
LATE_REFUND, RESCUE, WITHDRAW = "LATE_REFUND", "RESCUE", "WITHDRAW"

# The order statuses in which each intent may move an escrow's funds. decide() never
# allows a moving action outside them; cron executes an intent only inside them.
FUNDS_STATUSES = {
    RELEASE: {COMPLETED, FROZEN},
    CANCEL: {PENDING, COMPLETED, FROZEN},
    PARTIAL_REFUND: {FROZEN},
    LATE_REFUND: set(FINAL),                  # only what arrives after the order is over
    RESCUE: set(STATUSES),                    # only the flagged asset, whatever the order does
}

ACTIONS = ("release", "cancel", "partial_refund", "dispatch", "confirm", "dispute")
PARTIES = ("buyer", "vendor", "staff")


class TransitionError(Exception):
    """An append that the lifecycle does not allow."""


class IntentConflict(Exception):
    """The order already has an open intent."""


# -- the decision table ----------------------------------------------------

@dataclass
class OrderState:
    status: str                 # current payment status
    dispatched: bool = False
    buyer_confirmed: bool = False
    dispute_open: bool = False
    intent_open: bool = False


def intent_may_execute(action, status):
    """None if an intent of `action` may move funds from an order in `status`, else why not."""
    if action not in FUNDS_STATUSES:
        return "unknown action %s" % action
    if status in FUNDS_STATUSES[action]:
        return None
    if status in FINAL:
        return "order is already %s" % status
    return "cannot %s an order that is %s" % (action.lower().replace("_", " "), status)


def _when(action, party, s):
    """True if `party` may take `action` in state `s` (assuming it may at all)."""
    if action in MOVES_FUNDS and s.status not in FUNDS_STATUSES[MOVES_FUNDS[action]]:
        return False
    paid = s.status == COMPLETED
    if action == "release":
        if party == "buyer":
            return paid and not s.dispute_open
        if party == "vendor":
            return paid and not s.dispute_open and s.buyer_confirmed
        # Staff also release a FROZEN order: that is their decision on it.
        return (paid and not s.dispute_open) or s.status == FROZEN
    if action == "cancel":
        if party == "buyer":
            return s.status == PENDING
        if party == "vendor":
            return paid and not s.dispatched and not s.dispute_open
        return s.status in (PENDING, COMPLETED, FROZEN)
    if action == "partial_refund":
        return s.status == FROZEN and s.dispute_open
    if action == "dispatch":
        return paid and not s.dispatched
    if action == "confirm":
        return paid and s.dispatched and not s.buyer_confirmed
    if action == "dispute":
        return paid and not s.dispute_open
    return False


# Who may ever take each action.
WHO = {
    "release": {"buyer", "vendor", "staff"},
    "cancel": {"buyer", "vendor", "staff"},
    "partial_refund": {"staff"},
    "dispatch": {"vendor"},
    "confirm": {"buyer"},
    "dispute": {"buyer", "vendor"},
}

# Actions that create an intent for cron (and so need no other intent open).
MOVES_FUNDS = {"release": RELEASE, "cancel": CANCEL, "partial_refund": PARTIAL_REFUND}


def decide(action, parties, state):
    """Return (http_status, message): 200 allowed, 403 not this person, 409 not now.

    `parties` is the set of ways the user relates to the order ('buyer', 'vendor',
    'staff'); any one of them that permits the action is enough.
    """
    if action not in WHO:
        return 400, f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}"
    able = WHO[action] & set(parties)
    if not able:
        return 403, f"you may not {action.replace('_', ' ')} this order"
    if state.status in FINAL:
        return 409, f"the order is {state.status}; nothing more can be done"
    if not any(_when(action, p, state) for p in able):
        return 409, f"cannot {action.replace('_', ' ')} an order that is {state.status}" + _why(action, state)
    if state.intent_open:
        # Nothing else may happen while a payout is pending or processing: a dispute,
        # dispatch or confirmation would race the cron layer moving the funds.
        return 409, "a payout for this order is already in progress"
    return 200, "ok"


def _why(action, s):
    if s.dispute_open and action in ("release", "cancel", "dispute"):
        return " with an open dispute"
    if action == "confirm" and not s.dispatched:
        return " and not yet dispatched"
    if action == "confirm" and s.buyer_confirmed:
        return " (receipt already confirmed)"
    if action == "dispatch" and s.dispatched:
        return " (already dispatched)"
    if action == "cancel" and s.dispatched:
        return " (already dispatched)"
    if action == "release" and s.status == COMPLETED and not s.buyer_confirmed:
        return " until the buyer confirms receipt"
    return ""


# -- the append-only logs --------------------------------------------------

def current_status(db, transaction_uuid):
    """The status row with the highest id, or None before the first row."""
    return db.one("SELECT id, transaction_uuid, time, amount, status, comment, payment_receipt_uuid "
                  "FROM transaction_statuses WHERE transaction_uuid = ? ORDER BY id DESC LIMIT 1",
                  (transaction_uuid,))


# Open orders with their current status row `s` (NULL before the first row, i.e. PENDING).
# Starts from idx_evm_transactions_open, so its cost follows the open orders, not every
# order ever made; the newest row per order comes from idx_transaction_statuses_tx.
OPEN_ORDERS_FROM = ("FROM evm_transactions e "
                    "LEFT JOIN transaction_statuses s ON s.id = (SELECT MAX(s2.id) FROM transaction_statuses s2 "
                    "WHERE s2.transaction_uuid = e.transaction_uuid) "
                    "WHERE e.closed_at IS NULL")


def count_by_status(db):
    """{status: number of orders whose current status it is}, without a full scan.

    A closed order has exactly one final row (nothing follows RELEASED, FAILED or
    CANCELLED), so closed orders are counted on idx_transaction_statuses_status; only
    open orders need their current status worked out.
    """
    counts = {r["status"]: int(r["n"]) for r in db.query(
        "SELECT status, COUNT(*) AS n FROM transaction_statuses "
        "WHERE status IN ('RELEASED', 'FAILED', 'CANCELLED') GROUP BY status")}
    for r in db.query("SELECT COALESCE(s.status, 'PENDING') AS status, COUNT(*) AS n "
                      + OPEN_ORDERS_FROM + " GROUP BY COALESCE(s.status, 'PENDING')"):
        counts[r["status"]] = counts.get(r["status"], 0) + int(r["n"])
    return counts


def append_status(db, transaction_uuid, status, amount="0", comment=None, receipt=None):
    """Append a status row after checking the move is allowed; return its id.

    A final status also sets evm_transactions.closed_at in the same transaction: that
    column indexes the open orders for cron, and this function is its only writer, so
    it always agrees with the log (closed_at IS NULL <=> the current status is not final).
    """
    if status not in STATUSES:
        raise TransitionError(f"unknown status {status}")
    with db.transaction():
        row = current_status(db, transaction_uuid)
        current = row["status"] if row else None
        if status not in TRANSITIONS[current]:
            raise TransitionError(f"{transaction_uuid}: {current} -> {status} is not allowed")
        now = utc_now()
        status_id = db.insert("transaction_statuses", {
            "transaction_uuid": transaction_uuid, "time": now, "amount": str(amount),
            "status": status, "comment": comment, "payment_receipt_uuid": receipt})
        if status in FINAL:
            db.execute("UPDATE evm_transactions SET closed_at = ? WHERE transaction_uuid = ? AND closed_at IS NULL",
                       (now, transaction_uuid))
        return status_id


def history(db, transaction_uuid):
    return db.query("SELECT id, time, amount, status, comment, payment_receipt_uuid "
                    "FROM transaction_statuses WHERE transaction_uuid = ? ORDER BY id",
                    (transaction_uuid,))


def current_shipping(db, transaction_uuid):
    return db.one("SELECT id, time, status, comment FROM shipping_statuses "
                  "WHERE transaction_uuid = ? ORDER BY id DESC LIMIT 1", (transaction_uuid,))


def append_shipping(db, transaction_uuid, status, user_uuid=None, comment=None):
    if status not in (DISPATCH_PENDING, DISPATCHED):
        raise TransitionError(f"unknown shipping status {status}")
    return db.insert("shipping_statuses", {
        "transaction_uuid": transaction_uuid, "time": utc_now(), "status": status,
        "comment": comment, "user_uuid": user_uuid})


def shipping_history(db, transaction_uuid):
    return db.query("SELECT id, time, status, comment FROM shipping_statuses "
                    "WHERE transaction_uuid = ? ORDER BY id", (transaction_uuid,))
