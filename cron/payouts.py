"""Payouts: splits, planning and signing, and the crash-safe commit (SPEC section 7).

The promise: killing cron at any point and running it again pays every recipient
exactly once, and nobody is told a payout happened before the chain shows it.

1. Plan (network reads only, nothing written): the escrow's confirmed balance, the
   split of SPEC section 7 in integer base units, current fees (cron/fees.py, under
   the operator's ceiling), a simulation of every leg (eth_estimateGas, and for a
   token eth_call of transfer(): a revert, a contract that refuses the coin, a token
   that answers `false` or a blacklisted recipient make that leg "unsent", with the
   reason, while the other legs go ahead), nonces from the chain reconciled with the
   database. Every sendable leg, and the gas-station top-up of an ERC-20 escrow, is
   signed.
2. One database transaction claims the intent (pending -> processing, an atomic
   UPDATE, so two cron processes on two machines cannot both win) and inserts every
   leg into `payouts` and its signed bytes into `payout_attempts`, before anything is
   sent. `UNIQUE (chain_id, from_address, nonce)` refuses a second transaction for the
   same nonce whatever the process. An unsent leg puts the intent in needs_attention.
3. cron/follow.py broadcasts the stored bytes, looks receipts up for every attempt,
   verifies them (status 1, and the token's Transfer log for the planned amount),
   replaces what is stuck (same nonce, higher fees), re-checks block hashes at the
   confirmation depth, and finalizes the order once every leg is settled.

A staff retry (lib/intents.py) puts the intent back to pending: `execute_order_intent`
then re-plans only the failed legs (at current fees, to the redirected address if
staff gave one), each new row pointing at the leg it retries (`retry_of`).

Fee policy (README, "Fee policy"): payouts are EIP-1559 (type 2) where the chain has a
base fee. For native-coin escrows each leg reserves gas x maxFeePerGas out of the fee
bearer's share: the marketplace commission for releases (then the vendor's share), the
refunded amount for refunds, late refunds and rescues, the buyer's share first for
partial refunds (then the resolver's, then the vendor's), the withdrawn amount for
deposit withdrawals. What the network does not charge of that reservation stays in
the escrow, recorded as retained (evm_transactions.retained_amount) so it is never
mistaken for a late payment. Token escrows pay out their token balance in full; the gas
station (operator-funded) sends them exactly the reserved gas first.
"""
import math
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction

from cron import fees as feemod
from cron.rpc_client import RpcCallError, RpcError
from lib import config, intents
from lib import status_machine as sm
from lib.chains import get_chain, is_hex_address, keccak256, to_checksum_address
from lib.db import IntegrityError, utc_now

NATIVE_TRANSFER_GAS = 21000
GAS_LIMIT_MARGIN = Fraction(5, 4)      # estimates for contract calls/recipients x 1.25
TOKEN_TRANSFER_GAS_FALLBACK = 100000   # when eth_estimateGas gives no figure for a token transfer
TRANSFER_SELECTOR = "a9059cbb"
TRANSFER_TOPIC = "0x" + keccak256(b"Transfer(address,address,uint256)").hex()
IN_FLIGHT = ("signed", "broadcast")

LATE_REFUND, RESCUE, WITHDRAW = intents.LATE_REFUND, intents.RESCUE, intents.WITHDRAW

# Who bears the network fee, in order (native-coin payouts only).
FEE_ORDER = {
    sm.RELEASE: ("commission", "vendor"),
    sm.CANCEL: ("buyer",),
    LATE_REFUND: ("buyer",),
    RESCUE: ("buyer",),
    sm.PARTIAL_REFUND: ("buyer", "resolver", "vendor"),
    WITHDRAW: ("store",),
}


class PayoutRefused(Exception):
    """A reason the intent cannot be executed now (nothing was signed)."""


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
    unsent: str = None           # why this leg is not sent (a failed simulation)
    retry_of: int = None         # the failed leg this one retries


@dataclass
class Plan:
    chain_id: int
    currency: str
    token_contract: str            # '' for the native coin
    source: object                 # LocalAccount of the escrow / deposit address
    balance: int
    legs: list = field(default_factory=list)
    fees: object = None            # fees.Fees
    fee: int = 0                   # native payouts: total network fee reserved from the balance
    topup: int = 0                 # ERC-20: wei the gas station sends first
    rows: list = field(default_factory=list)   # payouts rows, each with its first attempt
    comment: str = ""

    @property
    def unsent(self):
        return [leg for leg in self.legs if leg.unsent]


def gas_price_for(ctx, rpc):
    """The node's gas price plus GAS_PRICE_MARGIN_PERCENT (default 25) headroom (legacy figure)."""
    margin = int(ctx.env.get("GAS_PRICE_MARGIN_PERCENT") or 25)
    return rpc.gas_price() * (100 + margin) // 100


def next_nonce(db, rpc, chain_id, address):
    """The chain's pending nonce, unless we hold signed transactions beyond it.

    Transactions of ours the node has not seen (signed, not yet sent, or dropped from
    its pool) keep their nonces: the next one follows them, and they are (re)sent in
    nonce order, so no gap is ever left behind a nonce we gave up.
    """
    chain = rpc.get_transaction_count(address, "pending")
    stored = db.value("SELECT MAX(nonce) FROM payouts WHERE chain_id = ? AND from_address = ? AND nonce >= 0 "
                      "AND status IN ('signed', 'broadcast')", (chain_id, address))
    return max(chain, int(stored) + 1 if stored is not None else 0)


def gas_credit(db, chain_id, address):
    """Native coin of ours in `address` (an ERC-20 escrow or deposit): top-ups the gas
    station sent it, less the network fees its transactions paid or still reserve."""
    topped = sum(int(r["amount"]) for r in db.query(
        "SELECT amount FROM payouts WHERE chain_id = ? AND to_address = ? AND kind = 'gas' "
        "AND block_hash IS NOT NULL AND status IN ('broadcast', 'confirmed')", (chain_id, address)))
    spent = 0
    for r in db.query("SELECT gas_used, effective_gas_price, gas_limit, max_fee_per_gas, status, block_hash "
                      "FROM payouts WHERE chain_id = ? AND from_address = ? AND nonce >= 0", (chain_id, address)):
        if r["gas_used"] is not None:
            spent += int(r["gas_used"]) * int(r["effective_gas_price"])
        elif r["status"] in IN_FLIGHT and r["gas_limit"] is not None:
            spent += int(r["gas_limit"]) * int(r["max_fee_per_gas"])
    return max(topped - spent, 0)


def _transfer_data(to, amount):
    return "0x" + TRANSFER_SELECTOR + to.lower()[2:].rjust(64, "0") + format(amount, "x").rjust(64, "0")


def _margin(gas):
    return math.ceil(gas * GAS_LIMIT_MARGIN)


def _simulate_native(rpc, source, legs):
    """21000 for recipients without code (exact); estimate x 1.25 for contracts, whose
    refusal makes the leg unsent."""
    codes = rpc.batch([("eth_getCode", [leg.to.lower(), "latest"]) for leg in legs])
    for leg, code in zip(legs, codes):
        if code in (None, "0x", "0x0", ""):
            leg.gas = NATIVE_TRANSFER_GAS
            continue
        try:
            leg.gas = _margin(rpc.estimate_gas({"from": source.lower(), "to": leg.to.lower(), "value": "0x1"}))
        except RpcCallError as e:
            leg.unsent = ("the %s address %s is a contract that does not accept this transfer (%s)"
                          % (leg.role, leg.to, e))


def _simulate_token(rpc, source, token, legs):
    """A token transfer must neither revert nor answer false; its gas is estimated."""
    for leg in legs:
        call = {"from": source.lower(), "to": token.lower(), "data": _transfer_data(leg.to, leg.amount)}
        try:
            answer = rpc.call("eth_call", [call, "latest"])
        except RpcCallError as e:
            leg.unsent = "the token refuses the transfer of the %s share to %s (%s)" % (leg.role, leg.to, e)
            continue
        if isinstance(answer, str) and len(answer) >= 66 and int(answer[2:66], 16) == 0:
            leg.unsent = ("the token answers false to the transfer of the %s share to %s (nothing would move)"
                          % (leg.role, leg.to))
            continue
        try:
            leg.gas = _margin(rpc.estimate_gas(call))
        except RpcCallError:
            leg.gas = TOKEN_TRANSFER_GAS_FALLBACK


def _nonce_order(legs, fee_order):
    """Fee bearers last, the first bearer very last: a replacement takes its higher fee
    out of the highest unmined nonce of the escrow."""
    bearers = [r for r in fee_order]
    rank = {r: i for i, r in enumerate(reversed(bearers))}
    return sorted(legs, key=lambda leg: (leg.role in rank, rank.get(leg.role, 0)))


def plan_payout(ctx, rpc, *, chain_id, currency, token_contract, source, balance, gross, fee_order):
    """Work out and sign every transaction moving `balance` out of `source` as `gross` says.

    gross: list of (role, to, amount[, retry_of]) summing to balance. Network reads only;
    raises fees.FeeTooHigh, NotYet, NothingToPay.
    """
    db = ctx.db
    plan = Plan(chain_id, currency, token_contract or "", source, balance)
    plan.fees = feemod.current(ctx.env, rpc, chain_id)
    legs = [Leg(g[0], g[1], g[2], retry_of=g[3] if len(g) > 3 else None) for g in gross if g[2] > 0]
    if len({leg.role for leg in legs}) != len(legs):
        raise ValueError("duplicate role in %r" % ([leg.role for leg in legs],))
    # The confirmed balance is what we split; the latest state must hold at least that
    # much, else something is still moving (a payout of ours not yet deep enough).
    if plan.token_contract:
        latest = rpc.erc20_balance(plan.token_contract, source.address, "latest")
    else:
        latest = rpc.get_balance(source.address, "latest")
    if latest < balance:
        raise NotYet("%s holds %d at the head, less than its confirmed %d: waiting for the chain to settle"
                     % (source.address, latest, balance))
    if not legs:
        raise NothingToPay("nothing to pay")
    if plan.token_contract:
        _simulate_token(rpc, source.address, plan.token_contract, legs)
    else:
        _simulate_native(rpc, source.address, legs)
    sendable = [leg for leg in legs if not leg.unsent]
    if sendable and not plan.token_contract:
        order = [r for r in fee_order if r in {leg.role for leg in sendable}]
        order += [leg.role for leg in sendable if leg.role not in order]
        net, plan.fee = apply_native_fees({leg.role: leg.amount for leg in sendable},
                                          {leg.role: leg.gas for leg in sendable}, plan.fees.max_fee, order)
        sendable = [Leg(leg.role, leg.to, net[leg.role], leg.gas, None, leg.retry_of)
                    for leg in sendable if leg.role in net]
    plan.legs = _nonce_order(sendable, fee_order) + [leg for leg in legs if leg.unsent]
    if sendable and plan.token_contract:
        need = sum(leg.gas for leg in sendable) * plan.fees.max_fee
        have = min(gas_credit(db, chain_id, source.address), rpc.get_balance(source.address, "latest"))
        plan.topup = max(0, need - have)
    _sign_plan(ctx, rpc, plan)
    return plan


def _row(plan, kind, role, source, to, amount, gas, currency, token, nonce, signed, fee):
    now = utc_now()
    return {"chain_id": plan.chain_id, "created_at": now, "updated_at": now, "status": "signed",
            "kind": kind, "recipient_role": role, "currency": currency, "token_contract": token,
            "from_address": source, "to_address": to, "amount": str(amount), "fee": str(fee),
            "nonce": nonce, "tx_hash": signed["tx_hash"], "raw_tx": signed["raw_tx"],
            "tx_type": plan.fees.tx_type, "gas_limit": gas, "max_fee_per_gas": str(plan.fees.max_fee),
            "max_priority_fee_per_gas": None if plan.fees.tip is None else str(plan.fees.tip)}


def _sign_plan(ctx, rpc, plan):
    """Sign the gas top-up first (from the gas station), then the legs in nonce order."""
    db = ctx.db
    chain_id = plan.chain_id
    if plan.topup:
        station = ctx.wallet().gas_station_key()
        station_fee = NATIVE_TRANSFER_GAS * plan.fees.max_fee
        have = rpc.get_balance(station.address, "latest")
        if have < plan.topup + station_fee:
            raise PayoutRefused("gas station %s has %d wei; it needs %d to pay this payout's gas: fund it"
                                % (station.address, have, plan.topup + station_fee))
        nonce = next_nonce(db, rpc, chain_id, station.address)
        signed = sign(station, chain_id, plan.fees, nonce, plan.source.address, plan.topup, NATIVE_TRANSFER_GAS, None)
        plan.rows.append(_row(plan, "gas", "escrow", station.address, plan.source.address, plan.topup,
                              NATIVE_TRANSFER_GAS, get_chain(chain_id).native_symbol, "", nonce, signed, station_fee))
    nonce = next_nonce(db, rpc, chain_id, plan.source.address) if any(not leg.unsent for leg in plan.legs) else 0
    for leg in plan.legs:
        if leg.unsent:
            row = _unsent_row(plan, leg)
        else:
            signed = sign(plan.source, chain_id, plan.fees, nonce, leg.to, leg.amount, leg.gas, plan.token_contract)
            row = _row(plan, "payout", leg.role, plan.source.address, leg.to, leg.amount, leg.gas, plan.currency,
                       plan.token_contract, nonce, signed, leg.gas * plan.fees.max_fee)
            nonce += 1
        row["retry_of"] = leg.retry_of
        plan.rows.append(row)


def _unsent_row(plan, leg):
    """A leg the simulation refused: no transaction, a negative placeholder nonce (so the
    UNIQUE nonce of real transactions is untouched), status failed with the reason."""
    now = utc_now()
    marker = os.urandom(16).hex()
    return {"chain_id": plan.chain_id, "created_at": now, "updated_at": now, "status": "failed",
            "kind": "payout", "recipient_role": leg.role, "currency": plan.currency,
            "token_contract": plan.token_contract, "from_address": plan.source.address, "to_address": leg.to,
            "amount": str(leg.amount), "fee": "0", "nonce": -int(marker[:12], 16) - 1,
            "tx_hash": "unsent-" + marker, "raw_tx": "", "tx_type": plan.fees.tx_type, "gas_limit": None,
            "max_fee_per_gas": None, "max_priority_fee_per_gas": None, "error": leg.unsent[:255]}


def sign(account, chain_id, fees, nonce, to, amount, gas, token):
    """Sign one transfer (native coin, or `token`'s transfer()). fees: fees.Fees (an int
    is a legacy gas price)."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ValueError("refusing to sign a transfer of %r base units" % (amount,))
    if isinstance(fees, int):
        fees = feemod.Fees(0, fees)
    if token:
        tx = {"to": to_checksum_address(token), "value": 0, "data": _transfer_data(to, amount)}
    else:
        tx = {"to": to, "value": amount, "data": b""}
    tx.update({"gas": gas, "nonce": nonce, "chainId": chain_id}, **fees.tx_fields())
    signed = account.sign_transaction(tx)
    return {"nonce": nonce, "raw_tx": "0x" + bytes(signed.raw_transaction).hex(),
            "tx_hash": "0x" + bytes(signed.hash).hex()}


_sign = sign    # the name the unit tests know


def attempt_row(payout_id, row):
    return {"payout_id": payout_id, "tx_hash": row["tx_hash"], "raw_tx": row["raw_tx"], "amount": row["amount"],
            "tx_type": row["tx_type"], "max_fee_per_gas": row["max_fee_per_gas"],
            "max_priority_fee_per_gas": row["max_priority_fee_per_gas"], "created_at": utc_now()}


def insert_rows(db, rows, extra):
    """Insert payouts rows (with `extra` columns) and the first attempt of each signed one."""
    for row in rows:
        row = dict(row, **extra)
        payout_id = db.insert("payouts", row)
        if row["raw_tx"]:
            db.insert("payout_attempts", attempt_row(payout_id, row))


def commit_plan(ctx, table, intent, plan, ref, recheck=None, on_nothing=None):
    """Claim the intent and store its transactions in one database transaction.

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
            if not intents.claim(db, table, intent, ctx.worker):
                return False     # another worker has it
            if recheck is not None:
                recheck(db)
            if plan is None:
                on_nothing(db)
                intents.finish(db, table, intent, intents.COMPLETED)
                return True
            insert_rows(db, plan.rows, {"intent_uuid": intent["uuid"], table.ref_column: ref})
            if plan.unsent:
                reason = "; ".join(leg.unsent for leg in plan.unsent)
                intents.needs_attention(db, table, intent, reason, kind="leg_failed", chain_id=plan.chain_id,
                                        address=plan.source.address, token_contract=plan.token_contract,
                                        amount=sum(leg.amount for leg in plan.unsent))
            ctx.crash("after_sign")
    except PayoutRefused as e:
        refuse(ctx, table, intent, str(e))
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


def refuse(ctx, table, intent, reason):
    """Nothing could be signed: a person's request fails, cron's own waits and retries."""
    backoff = tuple(int(x) for x in (ctx.env.get("CRON_RETRY_BACKOFF_SECONDS") or "").split(",") if x.strip()) \
        or intents.DEFAULT_BACKOFF
    status = intents.refuse(ctx.db, table, intent, reason, backoff)
    ctx.count("payouts", "refused" if status != intents.NEEDS_ATTENTION else "needs_attention")
    ctx.log("intent %s (%s) refused (%s): %s" % (intent["uuid"], intents.action_of(intent), status, reason))


def wait_for_fees(ctx, table, intent, reason):
    """The network costs more than the ceiling allows: nothing is signed; staff see why."""
    intents.note(ctx.db, table, intent, str(reason))
    ctx.count("payouts", "fee_above_ceiling")
    ctx.log("intent %s: %s" % (intent["uuid"], reason))


def stop_planning(ctx, table, intent, error, refused):
    """No plan could be made: a network fee over the ceiling waits for a cheaper one
    (wait_for_fees); any other refusal goes to refused(ctx, table, intent, reason)."""
    if isinstance(error, feemod.FeeTooHigh):
        wait_for_fees(ctx, table, intent, error)
    else:
        refused(ctx, table, intent, str(error))


def fail_intent(ctx, table, intent, reason):
    """Claim and fail in one transaction: the intent can no longer execute at all."""
    with ctx.db.transaction():
        if intents.claim(ctx.db, table, intent, ctx.worker):
            intents.finish(ctx.db, table, intent, intents.FAILED, reason)
            ctx.count("payouts", "failed")
            ctx.log("intent %s (%s) failed: %s" % (intent["uuid"], intents.action_of(intent), reason))


# -- order intents ------------------------------------------------------------------

ORDER_SQL = ("SELECT t.uuid, t.store_uuid, t.buyer_uuid, t.dispute_uuid, e.chain_id, e.currency, "
             "e.token_contract, e.decimals, e.required_amount, e.received_amount, e.refund_address, "
             "e.escrow_address, e.derivation_index, e.retained_amount, e.retained_native, e.closed_at, s.tier "
             "FROM transactions t JOIN evm_transactions e ON e.transaction_uuid = t.uuid "
             "JOIN stores s ON s.uuid = t.store_uuid WHERE t.uuid = ?")


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
    if action in (sm.CANCEL, LATE_REFUND, RESCUE):
        return [("buyer", refund_address(db, order), balance)]
    if action == sm.PARTIAL_REFUND:
        pct = intent.get("refund_percent")
        if pct is None or not 1 <= int(pct) <= 100:
            raise PayoutRefused("partial refund needs refund_percent 1-100")
        buyer = refund_address(db, order)
        resolver = None
        if intent.get("requested_by"):
            row = db.one("SELECT payout_address FROM users WHERE uuid = ?", (intent["requested_by"],))
            if row and row["payout_address"]:
                resolver = checked_address(row["payout_address"], "resolver payout address")
        if resolver is None:
            # A resolver without a payout address: the share goes to the marketplace.
            resolver = commission_wallet(ctx.env, chain_id)
        shares = split_partial_refund(balance, config.fraction(db, "partial_refund_resolver_percent"), pct)
        # refund_percent 100 leaves the vendor nothing: no payout address is needed then
        vendor = vendor_address(db, order["store_uuid"]) if shares["vendor"] > 0 else None
        return [("buyer", buyer, shares["buyer"]), ("resolver", resolver, shares["resolver"]),
                ("vendor", vendor, shares["vendor"])]
    raise PayoutRefused("unknown action %s" % action)


def _asset(db, order, intent):
    """(token contract, currency symbol, decimals) the intent moves: the order's own,
    or for a rescue the flagged asset."""
    if intent["action"] != RESCUE or (intent.get("asset") or "") == (order["token_contract"] or ""):
        return order["token_contract"] or "", order["currency"], int(order["decimals"])
    asset = intent.get("asset") or ""
    chain_id = int(order["chain_id"])
    if not asset:
        chain = get_chain(chain_id)
        return "", chain.native_symbol, chain.native_decimals
    row = db.one("SELECT symbol, decimals FROM accepted_tokens WHERE chain_id = ? AND contract_address = ?",
                 (chain_id, asset))
    if row is None or row["decimals"] is None:
        raise PayoutRefused("the rescued token %s is not an accepted token of chain %d" % (asset, chain_id))
    return asset, row["symbol"], int(row["decimals"])


def retained_of(ctx, order, token):
    """What of `token` in the escrow is knowingly ours (not the buyer's to have back)."""
    if (token or "") == (order["token_contract"] or ""):
        return int(order["retained_amount"] or 0) if order["closed_at"] else 0
    if not token:      # native coin in an ERC-20 escrow: the gas station's leftovers
        return gas_credit(ctx.db, int(order["chain_id"]), order["escrow_address"])
    return 0


def execute_order_intent(ctx, intent):
    db = ctx.db
    table = intents.ORDERS
    order = db.one(ORDER_SQL, (intent["transaction_uuid"],))
    if order is None:
        fail_intent(ctx, table, intent, "order not found")
        return
    if not ctx.serves(order["chain_id"]):
        return                  # another cron process holds this chain's payouts lease
    cur = sm.current_status(db, order["uuid"])
    status = cur["status"] if cur else sm.PENDING
    reason = sm.intent_may_execute(intent["action"], status)
    if reason:
        fail_intent(ctx, table, intent, reason)
        return
    chain_id = int(order["chain_id"])
    if db.value("SELECT 1 FROM payouts WHERE transaction_uuid = ? AND status IN ('signed', 'broadcast') "
                "AND intent_uuid <> ?", (order["uuid"], intent["uuid"])) is not None:
        raise NotYet("an earlier payout from this escrow is still in flight")
    if intents.legs(db, intent["uuid"]):
        return retry_failed_legs(ctx, table, intent, order)
    plan = None
    nothing = None
    try:
        # A release needs the commission wallet whatever the balance: nobody is paid without it.
        if intent["action"] == sm.RELEASE:
            commission_wallet(ctx.env, chain_id)
        token, currency, _decimals = _asset(db, order, intent)
        if order["escrow_address"] is None and intent["action"] == sm.CANCEL and status == sm.PENDING:
            balance, source, rpc = 0, None, None
        else:
            source = escrow_account(ctx, order)
            rpc = ctx.rpc(chain_id)
            balance = confirmed_balance(ctx, rpc, chain_id, token, source.address)
            if intent["action"] in (LATE_REFUND, RESCUE):
                balance = max(balance - retained_of(ctx, order, token), 0)
        if balance == 0:
            if intent["action"] in (sm.RELEASE, sm.PARTIAL_REFUND, RESCUE):
                raise PayoutRefused("the escrow's confirmed balance is 0")
            nothing = "nothing to refund: the escrow is empty"
        else:
            gross = order_gross(ctx, intent, order, balance)
            try:
                plan = plan_payout(ctx, rpc, chain_id=chain_id, currency=currency, token_contract=token,
                                   source=source, balance=balance, gross=gross,
                                   fee_order=FEE_ORDER[intent["action"]])
            except NothingToPay as e:
                if intent["action"] in (sm.RELEASE, sm.PARTIAL_REFUND):
                    raise PayoutRefused("escrow balance too small: %s" % e)
                nothing = "nothing refunded: %s" % e
    except (PayoutRefused, feemod.FeeTooHigh) as e:
        stop_planning(ctx, table, intent, e, refuse)
        return

    def recheck(db):
        now = sm.current_status(db, order["uuid"])
        r = sm.intent_may_execute(intent["action"], now["status"] if now else sm.PENDING)
        if r:
            raise PayoutRefused(r)

    def on_nothing(db):
        if intent["action"] == sm.CANCEL:
            sm.append_status(db, order["uuid"], sm.CANCELLED, "0", comment=nothing)
            touch(db, order["uuid"])
        if intent.get("flag_id"):
            intents.resolve_flags(db, intent["requested_by"], nothing, flag_id=intent["flag_id"])
        ctx.count("payouts", "completed")

    if commit_plan(ctx, table, intent, plan, order["uuid"], recheck, on_nothing):
        if plan is not None:
            ctx.count("payouts", "signed", len([r for r in plan.rows if r["raw_tx"]]))
            ctx.log("intent %s (%s) of order %s: signed %d transaction(s) from %s"
                    % (intent["uuid"], intent["action"], order["uuid"], len([r for r in plan.rows if r["raw_tx"]]),
                       plan.source.address))


def leg_remaining(leg):
    """What of a failed leg is still in its source: its gross share, less any fee its
    reverted transaction burned (native coin)."""
    amount = int(leg["amount"])
    if leg["token_contract"]:
        return amount
    spent = int(leg["gas_used"]) * int(leg["effective_gas_price"]) if leg["gas_used"] is not None else 0
    return amount + int(leg["fee"] or 0) - spent


def retry_failed_legs(ctx, table, intent, order=None, source=None, fee_order=None):
    """Staff asked for a retry: re-plan and re-sign only the failed legs, at current fees."""
    db = ctx.db
    failed = [leg for leg in intents.legs(db, intent["uuid"]) if leg["status"] == "failed"]
    if not failed:
        with db.transaction():
            if intents.claim(db, table, intent, ctx.worker):
                intents.set_processing(db, table, intent)
        return
    chain_id = int(failed[0]["chain_id"])
    token = failed[0]["token_contract"] or ""
    try:
        if source is None:
            source = escrow_account(ctx, order)
        if source.address != failed[0]["from_address"]:
            raise PayoutRefused("the legs were paid from %s, not %s" % (failed[0]["from_address"], source.address))
        rpc = ctx.rpc(chain_id)
        gross = []
        for leg in failed:
            remaining = leg_remaining(leg)
            if token and int(leg["delivered_amount"] or 0) > 0:
                raise PayoutRefused("the %s leg delivered %s of %s: abandon it rather than pay it again"
                                    % (leg["recipient_role"], leg["delivered_amount"], leg["amount"]))
            to = checked_address(leg["redirect_to"] or leg["to_address"], "the %s address" % leg["recipient_role"])
            gross.append((leg["recipient_role"], to, remaining, leg["id"]))
        action = intents.action_of(intent)
        plan = plan_payout(ctx, rpc, chain_id=chain_id, currency=failed[0]["currency"], token_contract=token,
                           source=source, balance=sum(g[2] for g in gross), gross=gross,
                           fee_order=fee_order or FEE_ORDER[action])
    except NothingToPay as e:
        _back_to_staff(ctx, table, intent, "the failed legs hold too little to pay their own network fee: %s" % e)
        return
    except (PayoutRefused, feemod.FeeTooHigh) as e:
        stop_planning(ctx, table, intent, e, _back_to_staff)
        return
    if commit_plan(ctx, table, intent, plan, intent.get(table.ref_column)):
        ctx.count("payouts", "retried", len(failed))
        ctx.log("intent %s: re-signed %d failed leg(s)" % (intent["uuid"], len(failed)))


def _back_to_staff(ctx, table, intent, reason):
    """A retry staff asked for cannot be signed: the intent needs them again, with why."""
    with ctx.db.transaction():
        if intents.claim(ctx.db, table, intent, ctx.worker):
            intents.needs_attention(ctx.db, table, intent, "retry refused: " + reason, kind="retry_refused")
    ctx.count("payouts", "retry_refused")
    ctx.log("intent %s: retry refused: %s" % (intent["uuid"], reason))


def touch(db, transaction_uuid):
    db.execute("UPDATE transactions SET updated_at = ? WHERE uuid = ?", (utc_now(), transaction_uuid))


# -- the task -------------------------------------------------------------------------

def recover_stale_claims(ctx):
    """Give back processing intents a dead process left without a single payout row."""
    cutoff_seconds = int(ctx.env.get("CRON_STALE_CLAIM_SECONDS") or 600)
    for table in (intents.ORDERS, intents.WITHDRAWALS):
        for intent_uuid in intents.release_stale_claims(ctx.db, table, cutoff_seconds):
            ctx.log("intent %s: stale claim without payouts given back" % intent_uuid)


def run(ctx):
    """Duty 5: execute intents, then broadcast, follow and finalize payouts."""
    from cron import follow
    db = ctx.db
    recover_stale_claims(ctx)
    limit = int(ctx.env.get("CRON_INTENTS_PER_RUN") or 200)
    for intent in intents.due(db, intents.ORDERS, limit):
        try:
            execute_order_intent(ctx, intent)
        except NotYet as e:
            ctx.count("payouts", "waiting")
            ctx.log("intent %s: %s" % (intent["uuid"], e))
        except (RpcError, OSError) as e:
            ctx.error("payouts", "intent %s (%s): %s: %s" % (intent["uuid"], intent["action"], type(e).__name__, e))
        except Exception as e:
            ctx.error("payouts", "intent %s (%s): %s: %s" % (intent["uuid"], intent["action"], type(e).__name__, e))
    # Deposit withdrawals are planned by duty 6 (cron/deposits.py); their transactions
    # are broadcast and followed here like every other payout.
    follow.run(ctx)
    record_chain_figures(ctx)


DEFAULT_GAS_STATION_MIN = Fraction(5, 100)     # native coin units: 0.05 ETH / POL


def record_chain_figures(ctx):
    """The gas station's balance and the fee market of each chain cron pays on, for
    /health.php and the staff dashboard (the web side never asks a node)."""
    from cron.tasks import _token_chains
    db = ctx.db
    chains = {c for c in _token_chains(ctx) | {int(r["chain_id"]) for r in db.query(
        "SELECT DISTINCT chain_id FROM payouts WHERE status IN ('signed', 'broadcast')")} if ctx.serves(c)}
    if not chains or not ctx.env.get("MNEMONIC"):
        return
    station = ctx.wallet().gas_station_address()
    for chain_id in sorted(chains):
        try:
            rpc = ctx.rpc(chain_id)
            ctx.head(chain_id, rpc)
            balance = rpc.get_balance(station, "latest")
            data = rpc.fee_data()
        except Exception as e:
            ctx.error("payouts", "chain %d: reading the gas station and fees failed: %s" % (chain_id, e))
            continue
        text = (ctx.env.get("GAS_STATION_MIN_BALANCE_%d" % chain_id) or "").strip()
        try:
            minimum = Fraction(text) if text else DEFAULT_GAS_STATION_MIN
        except (ValueError, ZeroDivisionError):
            ctx.error("payouts", "GAS_STATION_MIN_BALANCE_%d is not a number: %r" % (chain_id, text))
            minimum = DEFAULT_GAS_STATION_MIN
        min_wei = int(minimum * 10 ** get_chain(chain_id).native_decimals)
        db.execute("UPDATE chain_heads SET gas_station_address = ?, gas_station_balance = ?, "
                   "gas_station_min_balance = ?, base_fee_per_gas = ?, max_fee_ceiling = ?, confirmations = ? "
                   "WHERE chain_id = ?",
                   (station, str(balance), str(min_wei),
                    None if data.base_fee_per_gas is None else str(data.base_fee_per_gas),
                    str(feemod.ceiling(ctx.env, chain_id)), str(ctx.depth(chain_id)), chain_id))
        if balance < min_wei:
            ctx.count("payouts", "gas_station_low")
