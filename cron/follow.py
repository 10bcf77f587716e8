"""Payouts on chain: broadcast, receipts, replacement, confirmation, reorgs, finalization.

Each run, per chain, without waiting for anything:

1. Receipts are looked up for EVERY signed attempt of every unmined payout (a
   replacement and the transaction it replaced share a nonce; either may be mined).
   The senders' nonces are read first: a nonce the chain has used while none of our
   attempts has a receipt was taken by a transaction cron did not sign (staff flag).
2. A receipt is evidence only once verified: status 1, and for a token leg the token's
   Transfer(from = source, to = recipient) log for the planned amount. Nothing else
   counts: a token that answers false moves nothing and logs nothing; a fee-on-transfer
   token logs less. Such a leg, or a reverted one, fails: its intent goes to
   needs_attention with the reason and a staff flag; the other legs go on.
3. At the chain's confirmation depth the receipt's block hash is compared with the
   canonical block of that number. A payout reorganised out of the chain goes back to
   broadcast and its stored bytes are sent again; only a leg whose block is still
   canonical at depth is confirmed.
4. Unmined transactions are sent in nonce order per sender (an ERC-20 escrow's legs
   once its gas top-up is mined), re-sent while they wait, and replaced when the lowest
   one has waited CRON_REPLACE_AFTER_BLOCKS (3) blocks: every unmined transaction of
   that sender is re-signed with the SAME nonce and both fee fields raised by 12.5%
   (cron/fees.py), each attempt committed before it is sent. A native-coin escrow's
   higher fee comes out of its last (fee-bearing) leg; an ERC-20 escrow gets more gas
   from the gas station first.
5. An intent whose legs are all settled (confirmed, or abandoned by staff) is finalized
   in one transaction: receipts, referral payment, the RELEASED / CANCELLED row, what
   stays in the escrow on purpose (retained), the intent closed.
"""
from cron import fees as feemod
from cron import payouts
from cron.rpc_client import RpcError, hex_to_int
from cron.tasks import fmt_units
from lib import intents
from lib import status_machine as sm
from lib import webhooks
from lib.chains import get_chain
from lib.db import utc_now

IN_FLIGHT = payouts.IN_FLIGHT


def run(ctx):
    db = ctx.db
    rows = ctx.served(db.query("SELECT * FROM payouts WHERE status IN ('signed', 'broadcast') ORDER BY id"))
    by_chain = {}
    for r in rows:
        by_chain.setdefault(int(r["chain_id"]), []).append(r)
    for chain_id, chain_rows in sorted(by_chain.items()):
        try:
            follow_chain(ctx, chain_id, chain_rows)
        except Exception as e:
            ctx.error("payouts", "chain %d: following payouts failed: %s: %s" % (chain_id, type(e).__name__, e))
    finalize_ready(ctx)


def _attempts(db, rows):
    out = {r["id"]: [] for r in rows}
    ids = list(out)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for a in db.query("SELECT * FROM payout_attempts WHERE payout_id IN (%s) ORDER BY id"
                          % ", ".join("?" * len(chunk)), chunk):
            out[a["payout_id"]].append(a)
    return out


def follow_chain(ctx, chain_id, rows):
    db = ctx.db
    rpc = ctx.rpc(chain_id)
    head = ctx.head(chain_id, rpc)
    attempts = _attempts(db, rows)
    unmined = [r for r in rows if r["block_hash"] is None]
    senders = sorted({r["from_address"] for r in unmined})
    nonces = dict(zip(senders, (hex_to_int(n, "nonce") for n in rpc.batch(
        [("eth_getTransactionCount", [s.lower(), "latest"]) for s in senders]))))
    hashes = [a["tx_hash"] for r in unmined for a in attempts[r["id"]]]
    receipts = dict(zip(hashes, rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])))
    for r in unmined:
        found = next(((a, receipts[a["tx_hash"]]) for a in attempts[r["id"]] if receipts.get(a["tx_hash"])), None)
        if found:
            record_mined(ctx, r, found[0], found[1])
        elif int(r["nonce"]) < nonces[r["from_address"]]:
            _nonce_taken(ctx, r)
    confirmed_upto = ctx.confirmed_block(chain_id, rpc)
    for r in rows:
        if r["status"] in IN_FLIGHT and r["block_number"] is not None and int(r["block_number"]) <= confirmed_upto:
            _at_depth(ctx, rpc, head, r, attempts[r["id"]])
    by_sender = {}
    for r in rows:
        if r["status"] in IN_FLIGHT and r["block_hash"] is None:
            by_sender.setdefault(r["from_address"], []).append(r)
    waiting_gas = {r["to_address"] for r in rows
                   if r["kind"] == "gas" and r["status"] in IN_FLIGHT and r["block_hash"] is None}
    for sender, sender_rows in by_sender.items():
        sender_rows.sort(key=lambda r: int(r["nonce"]))
        try:
            _advance(ctx, rpc, chain_id, head, sender, sender_rows, sender in waiting_gas)
        except RpcError as e:
            ctx.error("payouts", "chain %d: sending from %s: %s" % (chain_id, sender, e))


# -- receipts and their verification --------------------------------------------------

def transfer_delivered(receipt, token, source, recipient):
    """What the token's Transfer(source -> recipient) logs in this receipt add up to."""
    total = 0
    for log in receipt.get("logs") or []:
        if log.get("removed") or (log.get("address") or "").lower() != token.lower():
            continue
        topics = log.get("topics") or []
        if len(topics) < 3 or topics[0].lower() != payouts.TRANSFER_TOPIC:
            continue
        if int(topics[1], 16) == int(source, 16) and int(topics[2], 16) == int(recipient, 16):
            total += int(log.get("data") or "0x0", 16)
    return total


def record_mined(ctx, row, attempt, receipt):
    """A receipt for one of the row's attempts: store it and what it proves (not final yet)."""
    block = hex_to_int(receipt["blockNumber"], "block number")
    ok = hex_to_int(receipt.get("status", "0x1"), "status") == 1
    gas_used = hex_to_int(receipt["gasUsed"], "gas used")
    price = hex_to_int(receipt.get("effectiveGasPrice") or receipt.get("gasPrice") or "0x0", "gas price")
    amount = int(attempt["amount"])
    problem = None
    delivered = amount if ok else 0
    if not ok:
        problem = "reverted in block %d" % block
    elif row["token_contract"] and row["kind"] == "payout":
        delivered = transfer_delivered(receipt, row["token_contract"], row["from_address"], row["to_address"])
        if delivered == 0:
            problem = ("the token reported success but its Transfer log shows nothing moved to %s "
                       "(a token that returns false?)" % row["to_address"])
        elif delivered != amount:
            problem = ("the recipient %s received %d of %d base units (a fee-on-transfer token?)"
                       % (row["to_address"], delivered, amount))
    fee = int(row["gas_limit"] or 0) * int(attempt["max_fee_per_gas"]) if row["kind"] == "payout" \
        and not row["token_contract"] else row["fee"]
    changes = {"tx_hash": attempt["tx_hash"], "raw_tx": attempt["raw_tx"], "amount": attempt["amount"],
               "max_fee_per_gas": attempt["max_fee_per_gas"],
               "max_priority_fee_per_gas": attempt["max_priority_fee_per_gas"], "tx_type": attempt["tx_type"],
               "fee": str(fee), "block_number": block, "block_hash": receipt["blockHash"], "gas_used": gas_used,
               "effective_gas_price": str(price), "delivered_amount": str(delivered),
               "error": problem[:255] if problem else None, "status": "broadcast", "updated_at": utc_now()}
    _update(ctx.db, row, changes)
    ctx.count("payouts", "mined")


def _update(db, row, changes):
    db.execute("UPDATE payouts SET %s WHERE id = ?" % ", ".join("%s = ?" % k for k in changes),
               list(changes.values()) + [row["id"]])
    row.update(changes)


def _at_depth(ctx, rpc, head, row, attempts):
    """The row's block is deep enough: confirm it if that block is still canonical."""
    db = ctx.db
    block = rpc.get_block(int(row["block_number"]))
    if block is None or (block.get("hash") or "").lower() != row["block_hash"].lower():
        receipts = rpc.batch([("eth_getTransactionReceipt", [a["tx_hash"]]) for a in attempts])
        again = next(((a, rc) for a, rc in zip(attempts, receipts) if rc), None)
        ctx.count("payouts", "reorged")
        if again and again[1]["blockHash"].lower() != row["block_hash"].lower():
            ctx.log("payout %s: reorganised into block %s" % (row["tx_hash"], int(again[1]["blockNumber"], 16)))
            record_mined(ctx, row, again[0], again[1])
            return
        ctx.log("payout %s: its block %s left the chain; sending its stored bytes again"
                % (row["tx_hash"], row["block_number"]))
        _update(db, row, {"block_number": None, "block_hash": None, "gas_used": None, "effective_gas_price": None,
                          "delivered_amount": None, "error": None, "status": "broadcast", "sent_block": head,
                          "updated_at": utc_now()})
        _send(ctx, rpc, row)
        return
    if row["error"]:
        with db.transaction():
            _update(db, row, {"status": "failed", "updated_at": utc_now()})
            _leg_failed(ctx, row, row["error"])
        ctx.error("payouts", "transaction %s (%s) failed: %s" % (row["tx_hash"], row["recipient_role"], row["error"]))
        return
    _update(db, row, {"status": "confirmed", "updated_at": utc_now()})
    ctx.count("payouts", "confirmed")


def _intent_of(db, row):
    for table in (intents.ORDERS, intents.WITHDRAWALS):
        intent = db.one("SELECT * FROM %s WHERE uuid = ?" % table.name, (row["intent_uuid"],))
        if intent:
            return table, intent
    return None, None


def _leg_failed(ctx, row, reason):
    """A transaction of an intent failed for good: staff decide (the other legs go on)."""
    db = ctx.db
    table, intent = _intent_of(db, row)
    what = "gas top-up" if row["kind"] == "gas" else "%s leg" % row["recipient_role"]
    text = "%s %s on chain %s: %s; funds stay in %s" % (what, row["tx_hash"], row["chain_id"], reason,
                                                       row["from_address"])
    kind = "short_delivery" if row["delivered_amount"] not in (None, "0") and row["kind"] == "payout" \
        and row["token_contract"] and "received" in reason else "leg_failed"
    flag = {"chain_id": row["chain_id"], "address": row["to_address"], "token_contract": row["token_contract"],
            "amount": row["amount"]}
    if intent is None:
        intents.flag(db, text, kind, transaction_uuid=row["transaction_uuid"], **flag)
    elif intent["status"] == intents.NEEDS_ATTENTION:
        intents.flag(db, text, kind, transaction_uuid=intent.get("transaction_uuid"), intent_uuid=intent["uuid"],
                     **flag)
    else:
        intents.needs_attention(db, table, intent, text, kind=kind, **flag)


def _nonce_taken(ctx, row):
    reason = ("nonce %s of %s was used by a transaction cron did not sign; this transfer can never be mined"
              % (row["nonce"], row["from_address"]))
    with ctx.db.transaction():
        _update(ctx.db, row, {"status": "failed", "error": reason[:255], "updated_at": utc_now()})
        _leg_failed(ctx, row, reason)
    ctx.error("payouts", reason)


# -- sending and replacing -----------------------------------------------------------

def _send(ctx, rpc, row):
    """Broadcast a stored transaction's exact bytes (to every endpoint). True when taken."""
    try:
        rpc.send_raw_transaction(row["raw_tx"])
    except RpcError as e:
        ctx.db.execute("UPDATE payouts SET error = ?, updated_at = ? WHERE id = ?",
                       (str(e)[:255], utc_now(), row["id"]))
        ctx.error("payouts", "broadcast of %s (%s) failed: %s" % (row["tx_hash"], row["recipient_role"], e))
        return False
    ctx.count("payouts", "broadcast")
    return True


def _advance(ctx, rpc, chain_id, head, sender, rows, waiting_for_gas):
    """Send, re-send or replace the unmined transactions of one sender, in nonce order."""
    db = ctx.db
    replace_after = int(ctx.env.get("CRON_REPLACE_AFTER_BLOCKS") or 3)
    for i, row in enumerate(rows):
        if waiting_for_gas and row["kind"] == "payout":
            ctx.count("payouts", "waiting_for_gas")
            return            # the escrow cannot pay for its transfers until the top-up is mined
        if row["sent_block"] is None:
            _update(db, row, {"sent_block": head})
        stuck = i == 0 and head - int(row["sent_block"]) >= replace_after
        if row["status"] == "signed":
            sent = _send(ctx, rpc, row)
            ctx.crash("after_gas" if row["kind"] == "gas" else "after_broadcast")
            if sent:
                _update(db, row, {"status": "broadcast", "error": None, "updated_at": utc_now()})
                continue
            if stuck:         # refused for blocks now (under the base fee?): offer more
                replace(ctx, rpc, chain_id, head, sender, rows)
            return            # later nonces would only queue behind it
        if stuck and replace(ctx, rpc, chain_id, head, sender, rows):
            return
        _resend_quietly(ctx, rpc, row)


def _resend_quietly(ctx, rpc, row):
    """Dropped from a mempool? The same bytes again; a refusal here is only logged."""
    try:
        rpc.send_raw_transaction(row["raw_tx"])
    except RpcError as e:
        ctx.log("re-send of %s: %s" % (row["tx_hash"], e))


def _fees_of(row):
    tip = row["max_priority_fee_per_gas"]
    return feemod.Fees(int(row["tx_type"] or 0), int(row["max_fee_per_gas"]), int(tip) if tip else None)


def _account_of(ctx, chain_id, address):
    """The key of an address cron pays from: the gas station, an escrow or a deposit."""
    wallet = ctx.wallet()
    if address == wallet.gas_station_address():
        return wallet.gas_station_key()
    idx = ctx.db.value("SELECT derivation_index FROM evm_transactions WHERE escrow_address = ?", (address,))
    if idx is not None:
        return wallet.escrow_key(int(idx))
    idx = ctx.db.value("SELECT derivation_index FROM deposits WHERE address = ?", (address,))
    if idx is not None:
        return wallet.deposit_key(int(idx))
    raise payouts.PayoutRefused("no key for %s" % address)


def replace(ctx, rpc, chain_id, head, sender, rows):
    """Re-sign every unmined transaction of `sender` with the same nonces and higher fees.

    Returns True when replacements (or the gas they need first) were committed and sent.
    """
    db = ctx.db
    limit = feemod.ceiling(ctx.env, chain_id)
    try:
        market = feemod.current(ctx.env, rpc, chain_id)
    except feemod.FeeTooHigh:
        market = _fees_of(rows[0])
    new = [feemod.bumped(_fees_of(r), market, limit) for r in rows]
    if any(f is None for f in new):
        ctx.count("payouts", "at_fee_ceiling")
        ctx.log("%s: stuck transactions are at the fee ceiling (MAX_FEE_GWEI_%d); waiting" % (sender, chain_id))
        return False
    account = _account_of(ctx, chain_id, sender)
    extra = sum(int(r["gas_limit"]) * (f.max_fee - int(r["max_fee_per_gas"])) for r, f in zip(rows, new))
    amounts = [int(r["amount"]) for r in rows]
    token_legs = any(r["kind"] == "payout" and r["token_contract"] for r in rows)
    station = sender == ctx.wallet().gas_station_address()
    if token_legs:
        need = sum(int(r["gas_limit"]) * f.max_fee for r, f in zip(rows, new))
        have = rpc.get_balance(sender, "latest")
        if have < need:
            # A quarter more than needed, so a market that moves a little while the top-up
            # is mined does not call for another one; what is left stays the station's.
            return _more_gas(ctx, rpc, chain_id, head, rows[0], sender, need * 5 // 4 - have, market)
    elif not station:
        if amounts[-1] - extra <= 0:
            ctx.log("%s: the last leg cannot bear the higher fee of a replacement; waiting" % sender)
            return False
        amounts[-1] -= extra
    signed = []
    with db.transaction():
        for r, f, amount in zip(rows, new, amounts):
            s = payouts.sign(account, chain_id, f, int(r["nonce"]), r["to_address"], amount, int(r["gas_limit"]),
                             r["token_contract"] if r["kind"] == "payout" else None)
            fee = int(r["gas_limit"]) * f.max_fee if not r["token_contract"] and r["kind"] == "payout" else int(r["fee"])
            changes = {"tx_hash": s["tx_hash"], "raw_tx": s["raw_tx"], "amount": str(amount), "fee": str(fee),
                       "tx_type": f.tx_type, "max_fee_per_gas": str(f.max_fee),
                       "max_priority_fee_per_gas": None if f.tip is None else str(f.tip),
                       "replacements": int(r["replacements"] or 0) + 1, "sent_block": head, "status": "broadcast",
                       "updated_at": utc_now()}
            _update(db, r, changes)
            db.insert("payout_attempts", payouts.attempt_row(r["id"], dict(r, **changes)))
            signed.append(r)
    ctx.crash("after_replace")
    for r in signed:
        if not _send(ctx, rpc, r):
            break
    ctx.count("payouts", "replaced", len(signed))
    ctx.log("%s: replaced %d stuck transaction(s) from nonce %s at %s wei per gas"
            % (sender, len(signed), rows[0]["nonce"], new[0].max_fee))
    return True


def _more_gas(ctx, rpc, chain_id, head, leg, escrow, amount, market):
    """An ERC-20 escrow needs more gas for its replacements: a top-up from the station."""
    db = ctx.db
    station = ctx.wallet().gas_station_key()
    fee = payouts.NATIVE_TRANSFER_GAS * market.max_fee
    if rpc.get_balance(station.address, "latest") < amount + fee:
        ctx.error("payouts", "gas station %s cannot fund the replacement of stuck transfers from %s: fund it"
                  % (station.address, escrow))
        return False
    nonce = payouts.next_nonce(db, rpc, chain_id, station.address)
    s = payouts.sign(station, chain_id, market, nonce, escrow, amount, payouts.NATIVE_TRANSFER_GAS, None)
    now = utc_now()
    row = {"intent_uuid": leg["intent_uuid"], "transaction_uuid": leg["transaction_uuid"],
           "deposit_uuid": leg["deposit_uuid"], "chain_id": chain_id, "created_at": now, "updated_at": now,
           "status": "signed", "kind": "gas", "recipient_role": "escrow", "currency": get_chain(chain_id).native_symbol,
           "token_contract": "", "from_address": station.address, "to_address": escrow, "amount": str(amount),
           "fee": str(fee), "nonce": nonce, "tx_hash": s["tx_hash"], "raw_tx": s["raw_tx"],
           "tx_type": market.tx_type, "gas_limit": payouts.NATIVE_TRANSFER_GAS, "max_fee_per_gas": str(market.max_fee),
           "max_priority_fee_per_gas": None if market.tip is None else str(market.tip), "sent_block": head}
    with db.transaction():
        row["id"] = db.insert("payouts", row)
        db.insert("payout_attempts", payouts.attempt_row(row["id"], row))
    if _send(ctx, rpc, row):
        _update(db, row, {"status": "broadcast"})
    ctx.count("payouts", "gas_for_replacement")
    return True


# -- finalization ---------------------------------------------------------------------

def finalize_ready(ctx):
    """Close every processing intent whose transactions are all settled."""
    db = ctx.db
    for table in (intents.ORDERS, intents.WITHDRAWALS):
        for intent in db.query("SELECT * FROM %s WHERE status = 'processing' ORDER BY id" % table.name):
            rows = db.query("SELECT * FROM payouts WHERE intent_uuid = ? ORDER BY id", (intent["uuid"],))
            if not rows or any(r["status"] in IN_FLIGHT for r in rows) or not ctx.serves(rows[0]["chain_id"]):
                continue
            legs = intents.legs(db, intent["uuid"])
            if not all(intents.settled(leg) for leg in legs):
                failed = [leg for leg in legs if leg["status"] == "failed"]
                intents.needs_attention(db, table, intent, "; ".join(
                    "%s leg: %s" % (leg["recipient_role"], leg["error"] or "failed") for leg in failed))
                continue
            ctx.crash("before_status")
            try:
                if table is intents.ORDERS:
                    finalize_order(ctx, intent, rows)
                else:
                    from cron import deposits
                    deposits.finalize_withdrawal(ctx, intent, rows)
            except Exception as e:
                ctx.error("payouts", "finalizing intent %s failed: %s: %s" % (intent["uuid"], type(e).__name__, e))


def insert_receipts(db, rows, transaction_uuid=None, deposit_uuid=None):
    """payment_receipts for the confirmed recipient legs; returns {role: receipt uuid}."""
    out = {}
    for r in rows:
        if r["kind"] == "gas" or r["status"] != "confirmed":
            continue
        if db.one("SELECT id FROM payment_receipts WHERE uuid = ?", (r["tx_hash"],)) is None:
            db.insert("payment_receipts", {
                "uuid": r["tx_hash"], "transaction_uuid": transaction_uuid, "deposit_uuid": deposit_uuid,
                "chain_id": r["chain_id"], "to_address": r["to_address"], "amount": r["amount"],
                "currency": r["currency"], "block_number": r["block_number"], "created_at": utc_now()})
        out[r["recipient_role"]] = r["tx_hash"]
    return out


def _moved(row):
    """What left the source through this row: (asset moved, native fee paid)."""
    fee = int(row["gas_used"]) * int(row["effective_gas_price"]) if row["gas_used"] is not None else 0
    if row["block_hash"] is None:
        return 0, 0
    delivered = int(row["delivered_amount"] or 0)
    if row["token_contract"]:
        return (int(row["amount"]) if delivered > 0 else 0), fee
    return delivered, fee


def retained(db, order):
    """(order asset, native coin) knowingly left in the escrow by its completed intents:
    fee reservations the network did not charge, and legs staff settled off-platform."""
    token = order["token_contract"] or ""
    done = {r["uuid"] for r in db.query("SELECT uuid FROM transaction_intents WHERE transaction_uuid = ? "
                                        "AND status = 'completed'", (order["uuid"],))}
    by_intent = {}
    for r in db.query("SELECT * FROM payouts WHERE transaction_uuid = ? AND kind = 'payout' ORDER BY id",
                      (order["uuid"],)):
        if r["intent_uuid"] in done:
            by_intent.setdefault(r["intent_uuid"], []).append(r)
    amount = native = 0
    for legs in by_intent.values():
        asset = legs[0]["token_contract"] or ""
        planned = sum(int(r["amount"]) + (0 if asset else int(r["fee"] or 0)) for r in legs if r["retry_of"] is None)
        out = 0
        for r in legs:
            moved, fee = _moved(r)
            out += moved + (0 if asset else fee)
        left = max(planned - out, 0)
        if asset == token:
            amount += left
        elif not asset:
            native += left
    if token:
        native += payouts.gas_credit(db, int(order["chain_id"]), order["escrow_address"])
    return amount, native


def finalize_order(ctx, intent, rows):
    db = ctx.db
    order = db.one(payouts.ORDER_SQL, (intent["transaction_uuid"],))
    with db.transaction():
        still = db.one("SELECT status FROM transaction_intents WHERE id = ? FOR UPDATE", (intent["id"],))
        if not still or still["status"] != "processing":
            return
        receipts = insert_receipts(db, rows, transaction_uuid=order["uuid"])
        legs = intents.legs(db, intent["uuid"])
        paid_legs = [r for r in legs if r["status"] == "confirmed"]
        decimals = int(order["decimals"]) if (legs[0]["token_contract"] or "") == (order["token_contract"] or "") \
            else get_chain(order["chain_id"]).native_decimals
        paid = sum(int(r["amount"]) for r in paid_legs)
        fees = sum(int(r["gas_used"]) * int(r["effective_gas_price"]) for r in paid_legs
                   if not r["token_contract"] and r["gas_used"] is not None)
        parts = ", ".join("%s %s" % (r["recipient_role"], fmt_units(r["amount"], decimals)) for r in paid_legs)
        if fees:
            parts += "; network fee %s" % fmt_units(fees, 18)
        abandoned = [r for r in legs if r["status"] == "abandoned"]
        if abandoned:
            parts += "; settled off-platform: " + ", ".join(
                "%s %s" % (r["recipient_role"], fmt_units(r["amount"], decimals)) for r in abandoned)
        action = intent["action"]
        if "referrer" in receipts:
            # The inviter as such: paid already, even if their payout address changed since.
            ref_uuid = db.value("SELECT inviter_uuid FROM users WHERE uuid = ?", (order["buyer_uuid"],))
            ref_row = next(r for r in paid_legs if r["recipient_role"] == "referrer")
            if ref_uuid and db.one("SELECT id FROM referral_payments WHERE payment_receipt_uuid = ?",
                                   (ref_row["tx_hash"],)) is None:
                db.insert("referral_payments", {
                    "transaction_uuid": order["uuid"], "referrer_uuid": ref_uuid, "amount": ref_row["amount"],
                    "currency": ref_row["currency"], "chain_id": ref_row["chain_id"],
                    "payment_receipt_uuid": ref_row["tx_hash"], "created_at": utc_now()})
        first = next(iter(receipts.values()), None)
        if action == sm.RELEASE:
            sm.append_status(db, order["uuid"], sm.RELEASED, str(paid), comment=("released: " + parts)[:255],
                             receipt=receipts.get("vendor") or first)
        elif action == sm.CANCEL:
            sm.append_status(db, order["uuid"], sm.CANCELLED, str(paid), comment=("refunded: " + parts)[:255],
                             receipt=receipts.get("buyer") or first)
        elif action == sm.PARTIAL_REFUND:
            sm.append_status(db, order["uuid"], sm.CANCELLED, str(paid),
                             comment=("partial refund (%s%% of the remainder to the buyer): %s"
                                      % (intent["refund_percent"], parts))[:255],
                             receipt=receipts.get("buyer") or receipts.get("vendor") or first)
        # LATE_REFUND and RESCUE: the order's status stays; the receipts record the refund.
        if intent.get("flag_id"):
            intents.resolve_flags(db, intent["requested_by"], "refunded: " + parts, flag_id=intent["flag_id"])
        intents.finish(db, intents.ORDERS, intent, intents.COMPLETED)
        kept, kept_native = retained(db, order)
        db.execute("UPDATE evm_transactions SET retained_amount = ?, retained_native = ? WHERE transaction_uuid = ?",
                   (str(kept), str(kept_native), order["uuid"]))
        payouts.touch(db, order["uuid"])
        webhooks.payout_event(db, action, order["uuid"])
    ctx.count("payouts", "completed")
    ctx.log("intent %s (%s) of order %s completed: %s" % (intent["uuid"], action, order["uuid"], parts))

