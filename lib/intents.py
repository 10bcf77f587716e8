"""Intents: the requests for cron to move funds, and the staff actions that recover them.

Two tables hold intents: `transaction_intents` (an order's escrow: RELEASE, CANCEL,
PARTIAL_REFUND, and the cron- or staff-opened LATE_REFUND and RESCUE) and
`deposit_withdraw_intents` (a store deposit: WITHDRAW). This module is the only code
that opens, claims, defers, flags and closes them; `status_machine` is the rule book
that says which may execute in which order state; cron plans, signs and follows.

Statuses:

    pending --claim--> processing --every leg settled--> completed
       |                    |
       |                    +--a leg failed on chain--> needs_attention --staff--> pending | processing
       +--refused (a person's request)--> failed
       +--refused (cron's own request)--> pending again after a backoff; after
                                          MAX_AUTO_FAILURES tries: needs_attention

While an intent is pending, processing or needs_attention its `open_key` holds the
order (or deposit) uuid, so a UNIQUE index keeps at most one open per order, and the
order's funds cannot be moved twice. `needs_attention` always comes with a staff flag.

Staff recover a needs_attention intent with `staff_action()` (POST /api/payout-actions.php):
retry (re-plan and re-sign only the unpaid legs at current fees), redirect (pay one failed
leg to another address), abandon (the failed legs were settled off-platform). `rescue`
refunds funds found in the wrong place (a flag) to the buyer.
"""
import datetime
import uuid as uuidlib

from lib import audit, chains, roles
from lib import status_machine as sm
from lib import webhooks
from lib.db import IntegrityError, utc_now
from lib.http import BadRequest, Conflict, Forbidden, HttpError, NotFound

RELEASE, CANCEL, PARTIAL_REFUND = sm.RELEASE, sm.CANCEL, sm.PARTIAL_REFUND
LATE_REFUND = "LATE_REFUND"      # funds that reached a finished order's escrow, back to the buyer
RESCUE = "RESCUE"                # staff: an asset in the wrong place, back to the buyer
WITHDRAW = "WITHDRAW"            # a deposit's balance to the store's payout address
ORDER_ACTIONS = (RELEASE, CANCEL, PARTIAL_REFUND, LATE_REFUND, RESCUE)

PENDING, PROCESSING, NEEDS_ATTENTION = "pending", "processing", "needs_attention"
COMPLETED, FAILED = "completed", "failed"
OPEN = (PENDING, PROCESSING, NEEDS_ATTENTION)

MAX_AUTO_FAILURES = 3
DEFAULT_BACKOFF = (60, 300, 1800)   # seconds after the 1st, 2nd, 3rd refusal of a cron intent

STAFF_ACTIONS = ("retry", "redirect", "abandon", "rescue")


class IntentConflict(Exception):
    """The order (or deposit) already has an open intent."""


class Table:
    """One of the two intent tables."""

    def __init__(self, name, ref_column):
        self.name = name
        self.ref_column = ref_column

    def __repr__(self):
        return "<intents %s>" % self.name


ORDERS = Table("transaction_intents", "transaction_uuid")
WITHDRAWALS = Table("deposit_withdraw_intents", "deposit_uuid")


def action_of(intent):
    return intent.get("action") or WITHDRAW


def _later(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%d %H:%M:%S")


# -- opening -----------------------------------------------------------------------

def open_intent(db, transaction_uuid, action, requested_by, refund_percent=None, asset=None, flag_id=None):
    """A pending order intent; IntentConflict if the order already has an open one.

    The UNIQUE open_key makes this exact under concurrency on both databases.
    requested_by None: cron opened it (auto-release, expiry refund, late refund).
    """
    if action not in ORDER_ACTIONS:
        raise ValueError(f"unknown intent action {action}")
    now = utc_now()
    row = {"uuid": str(uuidlib.uuid4()), "transaction_uuid": transaction_uuid, "action": action,
           "status": PENDING, "open_key": transaction_uuid, "refund_percent": refund_percent,
           "requested_by": requested_by, "asset": asset, "flag_id": flag_id,
           "created_at": now, "updated_at": now}
    try:
        row["id"] = db.insert(ORDERS.name, row)
    except IntegrityError:
        raise IntentConflict("a payout for this order is already in progress")
    return row


def open_withdrawal(db, deposit_uuid, to_address, requested_by):
    """A pending withdrawal of a deposit; IntentConflict if one is open."""
    now = utc_now()
    row = {"uuid": str(uuidlib.uuid4()), "deposit_uuid": deposit_uuid, "to_address": to_address,
           "status": PENDING, "open_key": deposit_uuid, "requested_by": requested_by, "error": None,
           "attempts": 0, "claimed_by": None, "claimed_at": None, "created_at": now, "updated_at": now}
    try:
        row["id"] = db.insert(WITHDRAWALS.name, row)
    except IntegrityError:
        raise IntentConflict("a withdrawal of this deposit is already in progress")
    return row


def open_row(db, transaction_uuid):
    return db.one("SELECT * FROM transaction_intents WHERE open_key = ?", (transaction_uuid,))


def by_uuid(db, intent_uuid):
    """(table, row) of an intent of either kind, or (None, None)."""
    if not isinstance(intent_uuid, str) or len(intent_uuid) != 36:
        return None, None
    for table in (ORDERS, WITHDRAWALS):
        row = db.one("SELECT * FROM %s WHERE uuid = ?" % table.name, (intent_uuid,))
        if row:
            return table, row
    return None, None


def of_order(db, transaction_uuid):
    return db.query("SELECT uuid, action, status, refund_percent, error, attempts, failures, next_attempt_at, "
                    "created_at, updated_at FROM transaction_intents WHERE transaction_uuid = ? ORDER BY id",
                    (transaction_uuid,))


# -- cron's side: due, claim, defer, flag, finish ------------------------------------

def due(db, table, limit):
    """Pending intents whose backoff (if any) has passed, oldest first."""
    return db.query("SELECT * FROM %s WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
                    "ORDER BY id LIMIT ?" % table.name, (utc_now(), int(limit)))


def claim(db, table, intent, worker):
    """Atomically move a pending intent to processing; True if this worker got it."""
    now = utc_now()
    return db.execute("UPDATE %s SET status = 'processing', claimed_by = ?, claimed_at = ?, "
                      "attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = 'pending'" % table.name,
                      (worker, now, now, intent["id"])) == 1


def finish(db, table, intent, status, error=None):
    """Close an intent: 'completed' or 'failed' (with the reason). Frees the order's slot."""
    if status not in (COMPLETED, FAILED):
        raise ValueError(status)
    db.execute("UPDATE %s SET status = ?, error = ?, open_key = NULL, updated_at = ? WHERE id = ?" % table.name,
               (status, error[:255] if error else None, utc_now(), intent["id"]))


def release_stale_claims(db, table, cutoff_seconds):
    """A processing intent without a single payout row can only be left by a cron process
    that died outside the claim-and-sign transaction: back to pending. Returns their uuids."""
    cutoff = (datetime.datetime.now(datetime.timezone.utc)
              - datetime.timedelta(seconds=cutoff_seconds)).strftime("%Y-%m-%d %H:%M:%S")
    rows = db.query("SELECT i.id, i.uuid FROM %s i WHERE i.status = 'processing' AND i.claimed_at < ? AND "
                    "NOT EXISTS (SELECT 1 FROM payouts p WHERE p.intent_uuid = i.uuid)" % table.name, (cutoff,))
    for r in rows:
        db.execute("UPDATE %s SET status = 'pending', updated_at = ? WHERE id = ? AND status = 'processing'"
                   % table.name, (utc_now(), r["id"]))
    return [r["uuid"] for r in rows]


def set_processing(db, table, intent):
    db.execute("UPDATE %s SET status = 'processing', updated_at = ? WHERE id = ?" % table.name,
               (utc_now(), intent["id"]))


def flag(db, reason, kind, transaction_uuid=None, intent_uuid=None, amount=None, chain_id=None,
         address=None, token_contract=None):
    """A staff flag (shown on the staff pages and counted by /health.php); returns its id."""
    return db.insert("staff_flags", {
        "transaction_uuid": transaction_uuid, "reason": reason[:255], "amount": None if amount is None else str(amount),
        "kind": kind, "intent_uuid": intent_uuid, "chain_id": chain_id, "address": address,
        "token_contract": token_contract, "created_at": utc_now(), "resolved_at": None})


def resolve_flags(db, user_uuid, resolution, intent_uuid=None, flag_id=None):
    now = utc_now()
    if flag_id is not None:
        db.execute("UPDATE staff_flags SET resolved_at = ?, resolved_by = ?, resolution = ? "
                   "WHERE id = ? AND resolved_at IS NULL", (now, user_uuid, resolution[:255], flag_id))
    if intent_uuid is not None:
        db.execute("UPDATE staff_flags SET resolved_at = ?, resolved_by = ?, resolution = ? "
                   "WHERE intent_uuid = ? AND resolved_at IS NULL", (now, user_uuid, resolution[:255], intent_uuid))


def needs_attention(db, table, intent, reason, kind="leg_failed", **flag_fields):
    """Hand the intent to staff: status needs_attention (the order stays locked), a flag."""
    with db.transaction():
        db.execute("UPDATE %s SET status = 'needs_attention', error = ?, updated_at = ? WHERE id = ?" % table.name,
                   (reason[:255], utc_now(), intent["id"]))
        ref = intent.get("transaction_uuid")
        flag(db, reason, kind, transaction_uuid=ref, intent_uuid=intent["uuid"], **flag_fields)
        webhooks.needs_attention_event(db, table, intent, reason)


def refuse(db, table, intent, reason, backoff=DEFAULT_BACKOFF):
    """Cron could not execute the intent (nothing was signed). Returns the new status.

    A person's request fails at once with the reason (they see it and may ask again);
    cron's own request (requested_by NULL) is tried again after a backoff, and after
    MAX_AUTO_FAILURES refusals goes to staff (needs_attention with a flag). The claim and
    the change are one transaction, so a concurrent worker cannot be overruled.
    """
    with db.transaction():
        fresh = db.one("SELECT * FROM %s WHERE id = ? FOR UPDATE" % table.name, (intent["id"],))
        if fresh is None or fresh["status"] != PENDING:
            return fresh["status"] if fresh else None
        if fresh.get("requested_by") is not None or table is WITHDRAWALS:
            claim(db, table, fresh, "cron")
            finish(db, table, fresh, FAILED, reason)
            return FAILED
        failures = int(fresh.get("failures") or 0) + 1
        if failures >= MAX_AUTO_FAILURES:
            db.execute("UPDATE %s SET failures = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?"
                       % table.name, (failures, utc_now(), fresh["id"]))
            needs_attention(db, table, fresh, "%s (after %d attempts)" % (reason, failures), kind="intent_refused")
            return NEEDS_ATTENTION
        wait = backoff[min(failures - 1, len(backoff) - 1)]
        db.execute("UPDATE %s SET failures = ?, attempts = attempts + 1, error = ?, next_attempt_at = ?, "
                   "updated_at = ? WHERE id = ?" % table.name,
                   (failures, reason[:255], _later(wait), utc_now(), fresh["id"]))
        return PENDING


def note(db, table, intent, reason):
    """Why a pending intent waits (fee above the ceiling, chain not settled): shown to staff."""
    db.execute("UPDATE %s SET error = ?, updated_at = ? WHERE id = ? AND status = 'pending'" % table.name,
               (reason[:255], utc_now(), intent["id"]))


# -- legs --------------------------------------------------------------------------

def legs(db, intent_uuid):
    """The live payout legs of an intent: every 'payout' row no later row retries."""
    rows = db.query("SELECT * FROM payouts WHERE intent_uuid = ? ORDER BY id", (intent_uuid,))
    retried = {r["retry_of"] for r in rows if r["retry_of"] is not None}
    return [r for r in rows if r["kind"] == "payout" and r["id"] not in retried]


def settled(leg):
    return leg["status"] in ("confirmed", "abandoned")


# -- staff actions (POST /api/payout-actions.php, the staff pages) ------------------

def _parties_to_order(db, user, transaction_uuid):
    """A staff member who is the buyer or a member of the store never decides the order."""
    row = db.one("SELECT t.buyer_uuid, t.store_uuid FROM transactions t WHERE t.uuid = ?", (transaction_uuid,))
    if not row:
        return False
    if row["buyer_uuid"] == user["uuid"]:
        return True
    return db.value("SELECT 1 FROM store_users WHERE store_uuid = ? AND user_uuid = ?",
                    (row["store_uuid"], user["uuid"])) is not None


def _require_staff(db, user, intent):
    if not roles.is_staff(user):
        raise Forbidden("only staff may act on payouts")
    if intent.get("transaction_uuid") and _parties_to_order(db, user, intent["transaction_uuid"]):
        raise Forbidden("you are a party to this order: another staff member or an admin decides")
    if intent.get("deposit_uuid") and db.value(
            "SELECT 1 FROM deposits d JOIN store_users su ON su.store_uuid = d.store_uuid "
            "WHERE d.uuid = ? AND su.user_uuid = ?", (intent["deposit_uuid"], user["uuid"])) is not None:
        raise Forbidden("you are a member of this deposit's store: another staff member or an admin decides")


def staff_action(db, user, intent_uuid, action, payout_id=None, to_address=None, comment=None, ip=None):
    """Staff recover an intent that needs attention. Returns {"ok", "action", "intent_uuid", "status"}.

    retry: cron re-plans and re-signs only the unpaid legs at current fees.
    redirect: the failed leg `payout_id` is paid to `to_address` instead (then as retry).
    abandon: the failed legs were settled off-platform (`comment` says how); the order
    finalizes with the receipts of the legs that landed.
    400 bad input, 403 not staff (or a party to the order), 404 unknown, 409 wrong state.
    """
    action = action.strip().lower() if isinstance(action, str) else ""
    if action not in ("retry", "redirect", "abandon"):
        raise BadRequest("action must be one of retry, redirect, abandon, rescue", fields={"action": "unknown"})
    if not roles.is_staff(user):
        raise Forbidden("only staff may act on payouts")
    if not intent_uuid or not isinstance(intent_uuid, str):
        raise BadRequest("intent_uuid is required", fields={"intent_uuid": "required"})
    if action == "redirect":
        payout_id = _parse_id(payout_id, "payout_id")
        if to_address in (None, ""):
            raise BadRequest("to_address is required for a redirect", fields={"to_address": "required"})
        problem = chains.address_error(to_address if isinstance(to_address, str) else None)
        if problem:
            raise BadRequest(f"to_address: {problem}", fields={"to_address": problem})
        if int(to_address, 16) == 0:
            raise BadRequest("to_address: the zero address burns funds", fields={"to_address": "zero address"})
    if action == "abandon":
        comment = comment.strip() if isinstance(comment, str) else ""
        if not comment:
            raise BadRequest("comment is required: say how the payout was settled off-platform",
                            fields={"comment": "required"})
        if len(comment) > 255 or any(ord(c) < 32 for c in comment):
            raise BadRequest("comment must be one line of at most 255 characters", fields={"comment": "bad"})
    with db.transaction():
        table, intent = by_uuid(db, intent_uuid)
        if intent is None:
            raise NotFound("no such intent")
        intent = db.one("SELECT * FROM %s WHERE id = ? FOR UPDATE" % table.name, (intent["id"],))
        _require_staff(db, user, intent)
        if intent["status"] != NEEDS_ATTENTION:
            raise Conflict(f"the intent is {intent['status']}; only an intent that needs attention "
                                 "can be retried, redirected or abandoned")
        live = legs(db, intent["uuid"])
        failed = [leg for leg in live if leg["status"] == "failed"]
        if action == "redirect":
            leg = next((leg for leg in failed if int(leg["id"]) == payout_id), None)
            if leg is None:
                raise HttpError(409 if any(int(x["id"]) == payout_id for x in live) else 404,
                                "payout %d is not a failed leg of this intent" % payout_id)
            if int(to_address, 16) == int(leg["from_address"], 16):
                raise BadRequest("to_address is the address the leg pays from", fields={"to_address": "source"})
            db.execute("UPDATE payouts SET redirect_to = ?, updated_at = ? WHERE id = ?",
                       (to_address.strip(), utc_now(), leg["id"]))
        if action in ("retry", "redirect"):
            db.execute("UPDATE %s SET status = 'pending', error = NULL, failures = 0, next_attempt_at = NULL, "
                       "updated_at = ? WHERE id = ?" % table.name, (utc_now(), intent["id"]))
            status = PENDING
        else:
            if failed:
                for leg in failed:
                    db.execute("UPDATE payouts SET status = 'abandoned', settled_by = ?, error = ?, updated_at = ? "
                               "WHERE id = ?", (user["uuid"], ("settled off-platform: " + comment)[:255],
                                                utc_now(), leg["id"]))
                set_processing(db, table, intent)
                status = PROCESSING
            elif live:
                raise Conflict("no leg of this intent has failed; nothing to abandon")
            else:
                finish(db, table, intent, FAILED, ("abandoned by staff: " + comment)[:255])
                status = FAILED
        detail = {"retry": "retry", "redirect": "redirect payout %s to %s" % (payout_id, to_address),
                  "abandon": "abandon: %s" % comment}[action]
        resolve_flags(db, user["uuid"], detail, intent_uuid=intent["uuid"])
        audit.log(db, "payout_" + action, user["uuid"], intent["uuid"], detail, ip)
    return {"ok": True, "action": action, "intent_uuid": intent["uuid"], "status": status}


def rescue(db, user, flag_id, ip=None):
    """Refund funds a flag found in the wrong place (or late, or dust) to the buyer.

    Opens a RESCUE intent of the flagged order for the flagged asset; cron pays the
    escrow's balance of that asset (less what is knowingly retained) to the buyer's
    refund address. 400/403/404 as usual; 409 resolved flag or an intent already open.
    """
    if not roles.is_staff(user):
        raise Forbidden("only staff may act on payouts")
    flag_id = _parse_id(flag_id, "flag_id")
    with db.transaction():
        row = db.one("SELECT * FROM staff_flags WHERE id = ? FOR UPDATE", (flag_id,))
        if row is None:
            raise NotFound("no such flag")
        if not row["transaction_uuid"] or row["kind"] not in (None, "wrong_asset", "late_funds", "dust"):
            raise Conflict("this flag is not about funds in an escrow; rescue does not apply")
        if row["resolved_at"]:
            raise Conflict("this flag is already resolved")
        if _parties_to_order(db, user, row["transaction_uuid"]):
            raise Forbidden("you are a party to this order: another staff member or an admin decides")
        asset = row["token_contract"]
        if asset is None:       # a flag of the previous release: about the order's own asset
            asset = db.value("SELECT token_contract FROM evm_transactions WHERE transaction_uuid = ?",
                             (row["transaction_uuid"],)) or ""
        try:
            intent = open_intent(db, row["transaction_uuid"], RESCUE, user["uuid"], asset=asset, flag_id=flag_id)
        except IntentConflict as e:
            raise Conflict(str(e))
        audit.log(db, "payout_rescue", user["uuid"], intent["uuid"],
                  "flag %d: %s base units of %s" % (flag_id, row["amount"], row["token_contract"] or "native"), ip)
    return {"ok": True, "action": "rescue", "intent_uuid": intent["uuid"], "status": PENDING, "flag_id": flag_id}


def _parse_id(value, field):
    text = str(value).strip() if value is not None else ""
    if not text:
        raise BadRequest(f"{field} is required", fields={field: "required"})
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise BadRequest(f"{field} must be a whole number", fields={field: "not a number"})
    return int(text)


def needing_attention(db, limit=100):
    """Intents of both kinds that need staff, newest first, with their failed legs."""
    out = []
    for table in (ORDERS, WITHDRAWALS):
        for row in db.query("SELECT * FROM %s WHERE status = 'needs_attention' ORDER BY id DESC LIMIT ?"
                            % table.name, (int(limit),)):
            row["kind"] = "order" if table is ORDERS else "withdrawal"
            row["action"] = action_of(row)
            row["legs"] = legs(db, row["uuid"])
            out.append(row)
    return out
