"""Payouts: splits, signing, crash-safe broadcast and confirmation (SPEC section 7).

The promise: killing cron at any point and running it again pays every recipient
exactly once. How:

1. Plan (network reads only, nothing written): the escrow's confirmed balance,
   the split of SPEC section 7 in integer base units, gas limits, gas price,
   nonces; every leg (and the gas-station top-up of an ERC-20 escrow) is signed.
2. One database transaction claims the intent (pending -> processing, an atomic
   UPDATE, so two cron processes on two machines cannot both win) and inserts
   every signed transaction into `payouts` (raw bytes, hash, nonce, status
   'signed'). Killed before the commit: nothing happened, the intent is still
   pending. `UNIQUE (chain_id, from_address, nonce)` refuses a second signed
   transaction for the same nonce whatever the process.
3. Broadcast the stored bytes, in nonce order; a later run re-sends exactly these
   bytes (a node answering "already known", or "nonce too low" for a transaction
   it has, counts as sent). A new payment is never signed for a claimed intent.
4. Follow receipts to `required_confirmations`.
5. When every transaction of the intent is confirmed, one database transaction
   writes the `payment_receipts` (uuid = tx hash), `referral_payments`, the
   RELEASED / CANCELLED status row linked to the receipt, and closes the intent.

Fee policy (README): payouts are legacy (type-0) transactions with a fixed gas
price, so a plain transfer to an address without code costs exactly
21000 x gasPrice and an ETH escrow is emptied to the wei. Network fees are taken
from the marketplace commission share for releases (any excess from the vendor's
share), from the refunded amount for refunds and late-payment refunds, from the
buyer's share first for partial refunds (then the resolver's, then the vendor's),
and from the withdrawn amount for deposit withdrawals. ERC-20 escrows: the token
balance is paid out in full; the gas station (operator-funded) pays the gas.
"""
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

from cron.alchemy_client import RpcCallError, RpcError
from lib import config
from lib import status_machine as sm
from lib.chains import get_chain, is_hex_address, to_checksum_address
from lib.db import IntegrityError, utc_now

NATIVE_TRANSFER_GAS = 21000
GAS_LIMIT_MARGIN = Fraction(5, 4)      # estimates for contract calls/recipients x 1.25
TOKEN_TRANSFER_GAS_FALLBACK = 100000   # when eth_estimateGas refuses a token transfer
TRANSFER_SELECTOR = "a9059cbb"

LATE_REFUND = "LATE_REFUND"            # funds that reached a finished order's escrow
WITHDRAW = "WITHDRAW"                  # deposit withdrawal (deposit_withdraw_intents)

# Who bears the network fee, in order (native-coin payouts only).
FEE_ORDER = {
    sm.RELEASE: ("commission", "vendor"),
    sm.CANCEL: ("buyer",),
    LATE_REFUND: ("buyer",),
    sm.PARTIAL_REFUND: ("buyer", "resolver", "vendor"),
    WITHDRAW: ("store",),
}


class PayoutRefused(Exception):
    """A reason the intent cannot be executed now; it fails with this message (retryable)."""


class NotYet(Exception):
    """The chain is not settled enough to plan this payout; the intent stays pending."""


class NothingToPay(Exception):
    """The balance does not cover a single transfer's network fee."""


# -- splits (pure integer arithmetic) --------------------------------------------

def _floor_mul(amount, fraction):
    f = Fraction(fraction)
    return amount * f.numerator // f.denominator


def split_release(balance, commission, referral_percent, has_referrer):
    """vendor 1 - c; referrer c x referral_percent (if any); commission wallet the rest."""
    commission_total = _floor_mul(balance, commission)
    referrer = _floor_mul(commission_total, referral_percent) if has_referrer else 0
    return {"vendor": balance - commission_total, "referrer": referrer,
            "commission": commission_total - referrer}


def split_partial_refund(balance, resolver_percent, refund_percent):
    """resolver gets resolver_percent; buyer refund_percent % of the rest; vendor the remainder."""
    resolver = _floor_mul(balance, resolver_percent)
    rest = balance - resolver
    buyer = rest * int(refund_percent) // 100
    return {"resolver": resolver, "buyer": buyer, "vendor": rest - buyer}


def apply_native_fees(gross, gas, gas_price, fee_order):
    """Deduct network fees from native-coin legs.

    gross: {role: amount}; gas: {role: gas limit}. Returns ({role: net}, total_fee)
    with sum(net) + total_fee == sum(gross) exactly. Fees come out of the roles in
    `fee_order`, the first first. A fee bearer whose share is used up entirely is
    dropped (one transaction fewer, so less fee) and what was left of its share
    goes on to the next bearer. NothingToPay when no transfer can be afforded.
    """
    balance = sum(gross.values())
    amounts = {r: a for r, a in gross.items() if a > 0}
    while True:
        if not amounts:
            raise NothingToPay("balance %d does not cover the network fee" % balance)
        fee = sum(gas[r] for r in amounts) * gas_price
        net = dict(amounts)
        remaining = fee
        for r in fee_order:
            if r in net and remaining:
                d = min(net[r], remaining)
                net[r] -= d
                remaining -= d
        if remaining:
            raise NothingToPay("balance %d does not cover the network fee %d" % (balance, fee))
        zeros = [r for r in net if net[r] == 0]
        if not zeros:
            assert sum(net.values()) + fee == balance
            return net, fee
        for r in zeros:
            moved = amounts.pop(r)
            nxt = next((b for b in fee_order if b in amounts), None)
            if nxt is None:
                raise NothingToPay("balance %d does not cover the network fee" % balance)
            amounts[nxt] += moved


# -- addresses -----------------------------------------------------------------------

def checked_address(value, what):
    if not value or not str(value).strip():
        raise PayoutRefused("%s is not set" % what)
    value = str(value).strip()
    if not is_hex_address(value) or int(value, 16) == 0:
        raise PayoutRefused("%s %r is not a valid address" % (what, value))
    return to_checksum_address(value)


def commission_wallet(env, chain_id):
    """COMMISSION_WALLET_<CHAIN_ID>, else COMMISSION_WALLET_<NETWORK> (SPEC section 8)."""
    network = get_chain(chain_id).network
    for key in ("COMMISSION_WALLET_%d" % chain_id, "COMMISSION_WALLET_%s" % network):
        value = (env.get(key) or "").strip()
        if value:
            return checked_address(value, key)
    raise PayoutRefused("no commission wallet for chain %d: set COMMISSION_WALLET_%d or "
                        "COMMISSION_WALLET_%s" % (chain_id, chain_id, network))


def vendor_address(db, store_uuid):
    store = db.one("SELECT payout_address FROM stores WHERE uuid = ?", (store_uuid,))
    if store and store["payout_address"]:
        return checked_address(store["payout_address"], "the store's payout address")
    owner = db.one("SELECT u.payout_address FROM store_users su JOIN users u ON u.uuid = su.user_uuid "
                   "WHERE su.store_uuid = ? AND su.role = 'owner' ORDER BY su.id LIMIT 1", (store_uuid,))
    if owner and owner["payout_address"]:
        return checked_address(owner["payout_address"], "the store owner's payout address")
    raise PayoutRefused("vendor has no payout address")


def refund_address(db, order):
    if order.get("refund_address"):
        return checked_address(order["refund_address"], "the order's refund address")
    buyer = db.one("SELECT refund_address FROM users WHERE uuid = ?", (order["buyer_uuid"],))
    if buyer and buyer["refund_address"]:
        return checked_address(buyer["refund_address"], "the buyer's refund address")
    raise PayoutRefused("buyer has no refund address")


def referrer_of(db, buyer_uuid):
    """(referrer uuid, payout address) when the buyer was invited by someone with a payout address."""
    row = db.one("SELECT r.uuid, r.payout_address FROM users b JOIN users r ON r.uuid = b.inviter_uuid "
                 "WHERE b.uuid = ?", (buyer_uuid,))
    if not row or not row["payout_address"]:
        return None, None
    try:
        return row["uuid"], checked_address(row["payout_address"], "referrer payout address")
    except PayoutRefused:
        return None, None


# -- planning and signing -----------------------------------------------------------

@dataclass
class Leg:
    role: str
    to: str
    amount: int
    gas: int = NATIVE_TRANSFER_GAS


@dataclass
class Plan:
    chain_id: int
    currency: str
    token_contract: str            # '' for the native coin
    source: object                 # LocalAccount of the escrow / deposit address
    balance: int
    legs: list = field(default_factory=list)
    gas_price: int = 0
    fee: int = 0                   # native payouts: total network fee taken from the balance
    topup: int = 0                 # ERC-20: wei the gas station sends first
    rows: list = field(default_factory=list)   # signed payouts rows, ready to insert
    comment: str = ""


def gas_price_for(ctx, rpc):
    """The node's gas price plus GAS_PRICE_MARGIN_PERCENT (default 25) headroom."""
    margin = int(ctx.env.get("GAS_PRICE_MARGIN_PERCENT") or 25)
    return rpc.gas_price() * (100 + margin) // 100


def next_nonce(db, rpc, chain_id, address):
    """max(the chain's pending nonce, the highest nonce we ever signed + 1)."""
    stored = db.value("SELECT MAX(nonce) FROM payouts WHERE chain_id = ? AND from_address = ?",
                      (chain_id, address))
    chain = rpc.get_transaction_count(address, "pending")
    return max(chain, int(stored) + 1 if stored is not None else 0)


def _transfer_data(to, amount):
    return "0x" + TRANSFER_SELECTOR + to.lower()[2:].rjust(64, "0") + format(amount, "x").rjust(64, "0")


def _margin(gas):
    return math.ceil(gas * GAS_LIMIT_MARGIN)


def _native_gas_limits(rpc, source, legs):
    """21000 for recipients without code (exact); estimate x 1.25 for contracts."""
    codes = rpc.batch([("eth_getCode", [leg.to.lower(), "latest"]) for leg in legs])
    for leg, code in zip(legs, codes):
        if code in (None, "0x", "0x0", ""):
            leg.gas = NATIVE_TRANSFER_GAS
        else:
            try:
                leg.gas = _margin(rpc.estimate_gas({"from": source.lower(), "to": leg.to.lower(), "value": "0x1"}))
            except RpcCallError as e:
                raise PayoutRefused("the %s address %s is a contract that does not accept this transfer (%s)"
                                    % (leg.role, leg.to, e))


def _token_gas_limit(rpc, source, token, leg):
    try:
        return _margin(rpc.estimate_gas({"from": source.lower(), "to": token.lower(),
                                         "data": _transfer_data(leg.to, leg.amount)}))
    except RpcCallError:
        return TOKEN_TRANSFER_GAS_FALLBACK


def plan_payout(ctx, rpc, *, chain_id, currency, token_contract, source, balance, gross, fee_order):
    """Work out and sign every transaction moving `balance` out of `source` as `gross` says.

    gross: list of (role, to, amount) summing to balance. Network reads only.
    """
    db = ctx.db
    plan = Plan(chain_id, currency, token_contract or "", source, balance)
    plan.gas_price = gas_price_for(ctx, rpc)
    legs = [Leg(r, to, a) for r, to, a in gross if a > 0]
    # The confirmed balance is what we split; the latest state must hold at least that
    # much, else something is still moving (a payout of ours not yet deep enough).
    if plan.token_contract:
        latest = rpc.erc20_balance(plan.token_contract, source.address, "latest")
    else:
        latest = rpc.get_balance(source.address, "latest")
    if latest < balance:
        raise NotYet("%s holds %d at the head, less than its confirmed %d: waiting for the chain to settle"
                     % (source.address, latest, balance))
    by_role = {}
    for leg in legs:
        if leg.role in by_role:
            raise ValueError("duplicate role %s" % leg.role)
        by_role[leg.role] = leg
    if not plan.token_contract:
        if legs:
            _native_gas_limits(rpc, source.address, legs)
        net, plan.fee = apply_native_fees({l.role: l.amount for l in legs}, {l.role: l.gas for l in legs},
                                          plan.gas_price, fee_order)
        plan.legs = [Leg(l.role, l.to, net[l.role], l.gas) for l in legs if l.role in net]
    else:
        plan.legs = legs
        if not legs:
            raise NothingToPay("token balance is zero")
        for leg in legs:
            leg.gas = _token_gas_limit(rpc, source.address, plan.token_contract, leg)
        need = sum(l.gas for l in legs) * plan.gas_price
        have = rpc.get_balance(source.address, "latest")
        plan.topup = max(0, need - have)
    # Sign: gas top-up first (from the gas station), then the legs in nonce order.
    now = utc_now()
    base = {"chain_id": chain_id, "created_at": now, "updated_at": now, "status": "signed"}
    if plan.topup:
        station = ctx.wallet().gas_station_key()
        station_fee = NATIVE_TRANSFER_GAS * plan.gas_price
        have = rpc.get_balance(station.address, "latest")
        if have < plan.topup + station_fee:
            raise PayoutRefused("gas station %s has %d wei; it needs %d to pay this payout's gas: fund it"
                                % (station.address, have, plan.topup + station_fee))
        nonce = next_nonce(db, rpc, chain_id, station.address)
        plan.rows.append(dict(base, **_sign(station, chain_id, plan.gas_price, nonce, source.address,
                                            plan.topup, NATIVE_TRANSFER_GAS, None),
                              kind="gas", recipient_role="escrow", currency=get_chain(chain_id).native_symbol,
                              token_contract="", from_address=station.address, to_address=source.address,
                              amount=str(plan.topup), fee=str(station_fee)))
    nonce = next_nonce(db, rpc, chain_id, source.address)
    for leg in plan.legs:
        signed = _sign(source, chain_id, plan.gas_price, nonce, leg.to, leg.amount, leg.gas, plan.token_contract)
        plan.rows.append(dict(base, **signed, kind="payout", recipient_role=leg.role, currency=currency,
                              token_contract=plan.token_contract, from_address=source.address,
                              to_address=leg.to, amount=str(leg.amount), fee=str(leg.gas * plan.gas_price)))
        nonce += 1
    return plan


def _sign(account, chain_id, gas_price, nonce, to, amount, gas, token):
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValueError("refusing to sign a transfer of %r base units" % (amount,))
    if token:
        tx = {"to": to_checksum_address(token), "value": 0, "data": _transfer_data(to, amount)}
    else:
        tx = {"to": to, "value": amount, "data": b""}
    tx.update({"gas": gas, "gasPrice": gas_price, "nonce": nonce, "chainId": chain_id})
    signed = account.sign_transaction(tx)
    return {"nonce": nonce, "raw_tx": "0x" + bytes(signed.raw_transaction).hex(),
            "tx_hash": "0x" + bytes(signed.hash).hex()}


# -- intents: the two kinds (orders and deposit withdrawals) -------------------------

class OrderIntents:
    table = "transaction_intents"
    ref_column = "transaction_uuid"

    @staticmethod
    def pending(db, limit):
        return db.query("SELECT * FROM transaction_intents WHERE status = 'pending' ORDER BY id LIMIT ?", (limit,))

    @staticmethod
    def claim(db, intent, worker):
        return sm.claim_intent(db, intent["id"], worker)

    @staticmethod
    def finish(db, intent, status, error=None):
        sm.finish_intent(db, intent["id"], status, error[:255] if error else None)


class WithdrawIntents:
    table = "deposit_withdraw_intents"
    ref_column = "deposit_uuid"

    @staticmethod
    def pending(db, limit):
        return db.query("SELECT * FROM deposit_withdraw_intents WHERE status = 'pending' ORDER BY id LIMIT ?",
                        (limit,))

    @staticmethod
    def claim(db, intent, worker):
        now = utc_now()
        return db.execute("UPDATE deposit_withdraw_intents SET status = 'processing', claimed_by = ?, "
                          "claimed_at = ?, attempts = attempts + 1, updated_at = ? "
                          "WHERE id = ? AND status = 'pending'", (worker, now, now, intent["id"])) == 1

    @staticmethod
    def finish(db, intent, status, error=None):
        db.execute("UPDATE deposit_withdraw_intents SET status = ?, error = ?, open_key = NULL, updated_at = ? "
                   "WHERE id = ?", (status, error[:255] if error else None, utc_now(), intent["id"]))


def fail_intent(ctx, kind, intent, reason):
    """Claim and fail in one transaction (so a concurrent worker cannot be overruled)."""
    with ctx.db.transaction():
        if kind.claim(ctx.db, intent, ctx.worker):
            kind.finish(ctx.db, intent, "failed", reason)
            ctx.count("payouts", "failed")
            ctx.log("intent %s (%s) failed: %s" % (intent["uuid"], intent.get("action", WITHDRAW), reason))


def commit_plan(ctx, kind, intent, plan, ref, recheck=None, on_nothing=None):
    """Claim the intent and store its signed transactions in one database transaction.

    recheck(db) may raise PayoutRefused when the order changed since planning.
    on_nothing(db) finishes an intent that moves no funds (called inside the transaction).
    Returns True when this worker stored the plan.
    """
    db = ctx.db
    pause = float(ctx.env.get("CRON_TEST_PAUSE_BEFORE_CLAIM") or 0)
    if pause:
        time.sleep(pause)   # test hook: lets two workers sign the same intent, then race
    try:
        with db.transaction():
            if not kind.claim(db, intent, ctx.worker):
                return False     # another worker has it
            if recheck is not None:
                recheck(db)
            if plan is None:
                on_nothing(db)
                kind.finish(db, intent, "completed")
                return True
            for row in plan.rows:
                row = dict(row, intent_uuid=intent["uuid"])
                row[kind.ref_column] = ref
                db.insert("payouts", row)
            ctx.crash("after_sign")
    except PayoutRefused as e:
        fail_intent(ctx, kind, intent, str(e))
        return False
    except IntegrityError as e:
        # Another worker signed with the same nonce first: nothing was stored, the
        # intent is still pending and the next run plans it again.
        ctx.count("payouts", "nonce_races")
        ctx.log("intent %s: a nonce was taken by another worker meanwhile; planned again next run (%s)"
                % (intent["uuid"], e))
        return False
    ctx.crash("after_commit")
    return True


# -- order intents ------------------------------------------------------------------

ORDER_SQL = ("SELECT t.uuid, t.store_uuid, t.buyer_uuid, t.dispute_uuid, e.chain_id, e.currency, "
             "e.token_contract, e.decimals, e.required_amount, e.received_amount, e.refund_address, "
             "e.escrow_address, e.derivation_index, s.tier "
             "FROM transactions t JOIN evm_transactions e ON e.transaction_uuid = t.uuid "
             "JOIN stores s ON s.uuid = t.store_uuid WHERE t.uuid = ?")


def _is_staff(db, user_uuid):
    if not user_uuid:
        return False
    return db.value("SELECT role FROM users WHERE uuid = ?", (user_uuid,)) in ("staff", "admin")


def _allowed(db, intent, status):
    """Whether the intent may move funds from an order in `status` (else a reason)."""
    action = intent["action"]
    if action == LATE_REFUND:
        return None if status in sm.FINAL else "order is %s" % status
    if status in sm.FINAL:
        return "order is already %s" % status
    if action == sm.RELEASE:
        if status == sm.COMPLETED or (status == sm.FROZEN and _is_staff(db, intent["requested_by"])):
            return None
        return "cannot release an order that is %s" % status
    if action == sm.CANCEL:
        if status in (sm.PENDING, sm.COMPLETED) or (status == sm.FROZEN and _is_staff(db, intent["requested_by"])):
            return None
        return "cannot cancel an order that is %s" % status
    if action == sm.PARTIAL_REFUND:
        return None if status == sm.FROZEN else "cannot partially refund an order that is %s" % status
    return "unknown action %s" % action


def escrow_account(ctx, order):
    idx = order["derivation_index"]
    if idx is None or not order["escrow_address"]:
        raise PayoutRefused("the order has no escrow address yet")
    account = ctx.wallet().escrow_key(int(idx))
    if account.address.lower() != order["escrow_address"].lower():
        raise PayoutRefused("escrow address %s does not match MNEMONIC at index %s: refusing to sign"
                            % (order["escrow_address"], idx))
    return account


def confirmed_balance(ctx, rpc, chain_id, token, address):
    block = ctx.confirmed_block(chain_id, rpc)
    if token:
        return rpc.erc20_balance(token, address, block)
    return rpc.get_balance(address, block)


def order_gross(ctx, intent, order, balance):
    """[(role, to, amount)] for the intent's action, before network fees."""
    db, action = ctx.db, intent["action"]
    chain_id = int(order["chain_id"])
    if action == sm.RELEASE:
        wallet = commission_wallet(ctx.env, chain_id)
        vendor = vendor_address(db, order["store_uuid"])
        ref_uuid, ref_addr = referrer_of(db, order["buyer_uuid"])
        tier = order["tier"] if order["tier"] in config.TIERS else "free"
        shares = split_release(balance, config.commission(db, tier), config.referral_percent(db, tier),
                               ref_addr is not None)
        return [("vendor", vendor, shares["vendor"]), ("referrer", ref_addr, shares["referrer"]),
                ("commission", wallet, shares["commission"])]
    if action in (sm.CANCEL, LATE_REFUND):
        return [("buyer", refund_address(db, order), balance)]
    if action == sm.PARTIAL_REFUND:
        pct = intent.get("refund_percent")
        if pct is None or not 1 <= int(pct) <= 99:
            raise PayoutRefused("partial refund needs refund_percent 1-99")
        buyer = refund_address(db, order)
        vendor = vendor_address(db, order["store_uuid"])
        resolver = None
        if intent.get("requested_by"):
            row = db.one("SELECT payout_address FROM users WHERE uuid = ?", (intent["requested_by"],))
            if row and row["payout_address"]:
                resolver = checked_address(row["payout_address"], "resolver payout address")
        if resolver is None:
            # A resolver without a payout address: the share goes to the marketplace.
            resolver = commission_wallet(ctx.env, chain_id)
        shares = split_partial_refund(balance, config.fraction(db, "partial_refund_resolver_percent"), pct)
        return [("buyer", buyer, shares["buyer"]), ("resolver", resolver, shares["resolver"]),
                ("vendor", vendor, shares["vendor"])]
    raise PayoutRefused("unknown action %s" % action)


def execute_order_intent(ctx, intent):
    db = ctx.db
    order = db.one(ORDER_SQL, (intent["transaction_uuid"],))
    if order is None:
        fail_intent(ctx, OrderIntents, intent, "order not found")
        return
    cur = sm.current_status(db, order["uuid"])
    status = cur["status"] if cur else sm.PENDING
    reason = _allowed(db, intent, status)
    if reason:
        fail_intent(ctx, OrderIntents, intent, reason)
        return
    chain_id = int(order["chain_id"])
    if db.value("SELECT 1 FROM payouts WHERE transaction_uuid = ? AND status IN ('signed', 'broadcast')",
                (order["uuid"],)) is not None:
        raise NotYet("an earlier payout from this escrow is still in flight")
    plan = None
    nothing = None
    try:
        # A release needs the commission wallet whatever the balance: nobody is paid without it.
        if intent["action"] == sm.RELEASE:
            commission_wallet(ctx.env, chain_id)
        if order["escrow_address"] is None and intent["action"] == sm.CANCEL and status == sm.PENDING:
            balance, source, rpc = 0, None, None
        else:
            source = escrow_account(ctx, order)
            rpc = ctx.rpc(chain_id)
            balance = confirmed_balance(ctx, rpc, chain_id, order["token_contract"], source.address)
        if balance == 0:
            if intent["action"] == sm.RELEASE or intent["action"] == sm.PARTIAL_REFUND:
                raise PayoutRefused("the escrow's confirmed balance is 0")
            nothing = "nothing to refund: the escrow is empty"
        else:
            gross = order_gross(ctx, intent, order, balance)
            try:
                plan = plan_payout(ctx, rpc, chain_id=chain_id, currency=order["currency"],
                                   token_contract=order["token_contract"], source=source, balance=balance,
                                   gross=gross, fee_order=FEE_ORDER[intent["action"]])
            except NothingToPay as e:
                if intent["action"] in (sm.RELEASE, sm.PARTIAL_REFUND):
                    raise PayoutRefused("escrow balance too small: %s" % e)
                nothing = "nothing refunded: %s" % e
    except PayoutRefused as e:
        fail_intent(ctx, OrderIntents, intent, str(e))
        return

    def recheck(db):
        now = sm.current_status(db, order["uuid"])
        r = _allowed(db, intent, now["status"] if now else sm.PENDING)
        if r:
            raise PayoutRefused(r)

    def on_nothing(db):
        if intent["action"] == sm.CANCEL:
            sm.append_status(db, order["uuid"], sm.CANCELLED, "0", comment=nothing)
            _touch(db, order["uuid"])
        ctx.count("payouts", "completed")

    if commit_plan(ctx, OrderIntents, intent, plan, order["uuid"], recheck, on_nothing):
        if plan is not None:
            ctx.count("payouts", "signed", len(plan.rows))
            ctx.log("intent %s (%s) of order %s: signed %d transaction(s) from %s"
                    % (intent["uuid"], intent["action"], order["uuid"], len(plan.rows), plan.source.address))


def _touch(db, transaction_uuid):
    db.execute("UPDATE transactions SET updated_at = ? WHERE uuid = ?", (utc_now(), transaction_uuid))


# -- broadcast, follow, finalize --------------------------------------------------------

def _open_intent_uuids(db):
    rows = db.query("SELECT DISTINCT intent_uuid FROM payouts WHERE status IN ('signed', 'broadcast') "
                    "AND intent_uuid IS NOT NULL")
    return [r["intent_uuid"] for r in rows]


def _mark(db, row_id, status, error=None, block=None):
    db.execute("UPDATE payouts SET status = ?, error = ?, block_number = COALESCE(?, block_number), "
               "updated_at = ? WHERE id = ?", (status, error[:255] if error else None, block, utc_now(), row_id))


def _send(ctx, rpc, row):
    """Broadcast a stored transaction's exact bytes. True when the node has it."""
    try:
        rpc.send_raw_transaction(row["raw_tx"])
    except RpcError as e:
        ctx.db.execute("UPDATE payouts SET error = ?, updated_at = ? WHERE id = ?",
                       (str(e)[:255], utc_now(), row["id"]))
        ctx.error("payouts", "broadcast of %s (%s) failed: %s" % (row["tx_hash"], row["recipient_role"], e))
        return False
    ctx.count("payouts", "broadcast")
    return True


def _wait_receipt(ctx, rpc, tx_hash, seconds):
    deadline = time.monotonic() + seconds
    while True:
        r = rpc.get_transaction_receipt(tx_hash)
        if r is not None or time.monotonic() >= deadline:
            return r
        time.sleep(0.5)


def broadcast_intent(ctx, intent_uuid):
    """Send the intent's signed transactions: the gas top-up first, then the legs by nonce."""
    db = ctx.db
    rows = db.query("SELECT * FROM payouts WHERE intent_uuid = ? ORDER BY id", (intent_uuid,))
    if not rows:
        return
    rpc = ctx.rpc(int(rows[0]["chain_id"]))
    gas_rows = [r for r in rows if r["kind"] == "gas"]
    legs = sorted((r for r in rows if r["kind"] != "gas"), key=lambda r: r["nonce"])
    for g in gas_rows:
        if g["status"] == "signed":
            if not _send(ctx, rpc, g):
                return
            _mark(db, g["id"], "broadcast")
            ctx.crash("after_gas")
        if g["status"] in ("signed", "broadcast"):
            # The escrow cannot pay for its transfers until the top-up is mined.
            wait = float(ctx.env.get("CRON_GAS_WAIT_SECONDS") or 30)
            receipt = _wait_receipt(ctx, rpc, g["tx_hash"], wait)
            if receipt is None:
                ctx.log("gas top-up %s not mined yet; legs wait for the next run" % g["tx_hash"])
                return
    for leg in legs:
        if leg["status"] != "signed":
            continue
        if not _send(ctx, rpc, leg):
            return      # later nonces would only queue behind it
        ctx.crash("after_broadcast")
        _mark(db, leg["id"], "broadcast")


def follow_payouts(ctx):
    """Receipts of broadcast transactions, to required_confirmations; re-send the unmined."""
    db = ctx.db
    rows = db.query("SELECT * FROM payouts WHERE status = 'broadcast' ORDER BY id")
    by_chain = {}
    for r in rows:
        by_chain.setdefault(int(r["chain_id"]), []).append(r)
    for chain_id, chain_rows in by_chain.items():
        try:
            rpc = ctx.rpc(chain_id)
            head = rpc.block_number()
            receipts = rpc.batch([("eth_getTransactionReceipt", [r["tx_hash"]]) for r in chain_rows])
        except Exception as e:
            ctx.error("payouts", "chain %d: following receipts failed: %s" % (chain_id, e))
            continue
        for row, rc in zip(chain_rows, receipts):
            if rc is None:
                _send(ctx, rpc, row)     # dropped from the mempool? the same bytes again
                continue
            block = int(rc["blockNumber"], 16)
            if int(rc.get("status", "0x1"), 16) != 1:
                with db.transaction():      # the failed row and its staff flag together
                    _mark(db, row["id"], "failed", "reverted in block %d" % block, block)
                    _flag(db, row, "payout %s (%s) reverted on chain %d: funds stay in %s; staff must decide"
                          % (row["tx_hash"], row["recipient_role"], chain_id, row["from_address"]))
                ctx.error("payouts", "transaction %s reverted" % row["tx_hash"])
                continue
            confs = head - block + 1
            if confs >= max(ctx.confirmations, 1):
                _mark(db, row["id"], "confirmed", None, block)
                ctx.count("payouts", "confirmed")
            elif row["block_number"] != block:
                _mark(db, row["id"], "broadcast", None, block)


def _flag(db, row, reason):
    db.insert("staff_flags", {"transaction_uuid": row.get("transaction_uuid"), "reason": reason[:255],
                              "amount": row.get("amount"), "created_at": utc_now(), "resolved_at": None})


def finalize_ready(ctx):
    """Close every processing intent whose transactions are all confirmed."""
    db = ctx.db
    for kind in (OrderIntents, WithdrawIntents):
        intents = db.query("SELECT * FROM %s WHERE status = 'processing' ORDER BY id" % kind.table)
        for intent in intents:
            rows = db.query("SELECT * FROM payouts WHERE intent_uuid = ? ORDER BY id", (intent["uuid"],))
            if not rows or any(r["status"] != "confirmed" for r in rows):
                continue
            ctx.crash("before_status")
            try:
                if kind is OrderIntents:
                    _finalize_order(ctx, intent, rows)
                else:
                    from cron import deposits
                    deposits.finalize_withdrawal(ctx, intent, rows)
            except Exception as e:
                ctx.error("payouts", "finalizing intent %s failed: %s: %s" % (intent["uuid"], type(e).__name__, e))


def _fmt(amount, decimals):
    """Base units as a decimal string in token units ('1.5')."""
    amount, decimals = int(amount), int(decimals)
    whole, frac = divmod(amount, 10 ** decimals)
    if not frac:
        return str(whole)
    return "%d.%s" % (whole, str(frac).rjust(decimals, "0").rstrip("0"))


def insert_receipts(db, rows, transaction_uuid=None, deposit_uuid=None):
    """payment_receipts for the recipient legs; returns {role: receipt uuid}."""
    out = {}
    for r in rows:
        if r["kind"] == "gas":
            continue
        if db.one("SELECT id FROM payment_receipts WHERE uuid = ?", (r["tx_hash"],)) is None:
            db.insert("payment_receipts", {
                "uuid": r["tx_hash"], "transaction_uuid": transaction_uuid, "deposit_uuid": deposit_uuid,
                "chain_id": r["chain_id"], "to_address": r["to_address"], "amount": r["amount"],
                "currency": r["currency"], "block_number": r["block_number"], "created_at": utc_now()})
        out[r["recipient_role"]] = r["tx_hash"]
    return out


def _finalize_order(ctx, intent, rows):
    db = ctx.db
    order = db.one(ORDER_SQL, (intent["transaction_uuid"],))
    decimals = int(order["decimals"])
    with db.transaction():
        still = db.one("SELECT status FROM transaction_intents WHERE id = ? FOR UPDATE", (intent["id"],))
        if not still or still["status"] != "processing":
            return
        receipts = insert_receipts(db, rows, transaction_uuid=order["uuid"])
        legs = [r for r in rows if r["kind"] != "gas"]
        paid = sum(int(r["amount"]) for r in legs)
        fees = sum(int(r["fee"] or 0) for r in rows if r["kind"] != "gas" and not r["token_contract"])
        parts = ", ".join("%s %s" % (r["recipient_role"], _fmt(r["amount"], decimals)) for r in legs)
        if fees:
            parts += "; network fee %s" % _fmt(fees, 18)
        action = intent["action"]
        if "referrer" in receipts:
            # The inviter as such: paid already, even if their payout address changed since.
            ref_uuid = db.value("SELECT inviter_uuid FROM users WHERE uuid = ?", (order["buyer_uuid"],))
            ref_row = next(r for r in legs if r["recipient_role"] == "referrer")
            if ref_uuid and db.one("SELECT id FROM referral_payments WHERE payment_receipt_uuid = ?",
                                   (ref_row["tx_hash"],)) is None:
                db.insert("referral_payments", {
                    "transaction_uuid": order["uuid"], "referrer_uuid": ref_uuid, "amount": ref_row["amount"],
                    "currency": ref_row["currency"], "chain_id": ref_row["chain_id"],
                    "payment_receipt_uuid": ref_row["tx_hash"], "created_at": utc_now()})
        if action == sm.RELEASE:
            link = receipts.get("vendor") or next(iter(receipts.values()))
            sm.append_status(db, order["uuid"], sm.RELEASED, str(paid),
                             comment=("released: " + parts)[:255], receipt=link)
        elif action == sm.CANCEL:
            sm.append_status(db, order["uuid"], sm.CANCELLED, str(paid),
                             comment=("refunded: " + parts)[:255], receipt=receipts.get("buyer"))
        elif action == sm.PARTIAL_REFUND:
            link = receipts.get("buyer") or receipts.get("vendor") or next(iter(receipts.values()))
            sm.append_status(db, order["uuid"], sm.CANCELLED, str(paid),
                             comment=("partial refund (%s%% of the remainder to the buyer): %s"
                                      % (intent["refund_percent"], parts))[:255], receipt=link)
        # LATE_REFUND: the order's status is final; the receipt records the refund.
        OrderIntents.finish(db, intent, "completed")
        _touch(db, order["uuid"])
    ctx.count("payouts", "completed")
    ctx.log("intent %s (%s) of order %s completed: %s" % (intent["uuid"], action, order["uuid"], parts))


# -- the task -------------------------------------------------------------------------

def recover_stale_claims(ctx):
    """A processing intent without a single signed transaction can only be left by a
    process that died outside this module's claim+sign transaction: give it back."""
    cutoff_seconds = int(ctx.env.get("CRON_STALE_CLAIM_SECONDS") or 600)
    for kind in (OrderIntents, WithdrawIntents):
        rows = ctx.db.query("SELECT i.id, i.uuid, i.claimed_at FROM %s i WHERE i.status = 'processing' AND "
                            "NOT EXISTS (SELECT 1 FROM payouts p WHERE p.intent_uuid = i.uuid)" % kind.table)
        for r in rows:
            if r["claimed_at"] and _age(r["claimed_at"]) > cutoff_seconds:
                ctx.db.execute("UPDATE %s SET status = 'pending', updated_at = ? WHERE id = ? "
                               "AND status = 'processing'" % kind.table, (utc_now(), r["id"]))
                ctx.log("intent %s: stale claim without payouts given back" % r["uuid"])


def _age(stamp):
    import datetime
    then = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return (datetime.datetime.now(datetime.timezone.utc) - then).total_seconds()


def run(ctx):
    """Duty 5: execute intents, then broadcast, follow and finalize payouts."""
    db = ctx.db
    recover_stale_claims(ctx)
    limit = int(ctx.env.get("CRON_INTENTS_PER_RUN") or 200)
    for intent in OrderIntents.pending(db, limit):
        try:
            execute_order_intent(ctx, intent)
        except NotYet as e:
            ctx.count("payouts", "waiting")
            ctx.log("intent %s: %s" % (intent["uuid"], e))
        except Exception as e:
            ctx.error("payouts", "intent %s (%s): %s: %s" % (intent["uuid"], intent["action"], type(e).__name__, e))
    # Deposit withdrawals are planned by duty 6 (cron/deposits.py); their transactions
    # are broadcast and followed here like every other payout.
    process_signed(ctx)


def process_signed(ctx):
    for intent_uuid in _open_intent_uuids(ctx.db):
        try:
            broadcast_intent(ctx, intent_uuid)
        except Exception as e:
            ctx.error("payouts", "broadcasting intent %s: %s: %s" % (intent_uuid, type(e).__name__, e))
    follow_payouts(ctx)
    finalize_ready(ctx)
