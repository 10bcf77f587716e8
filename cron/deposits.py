"""Duty 6: store deposits (branch m/44'/60'/0'/1/i): addresses, balances, withdrawals.

A deposit's address is derived like an escrow's (index from the deposit uuid, the
next free index on a collision, stored under a UNIQUE constraint). Balances are read
at the same confirmation depth as escrows; a change appends a `deposit_history`
row ('balance'). A withdrawal intent pays the whole confirmed balance to its
`to_address` through the crash-safe payout machinery of cron/payouts.py (network
fee out of the withdrawn amount; ERC-20 deposits get their gas from the gas station).
"""
from cron import fees, follow, payouts
from cron.tasks import assign_derived_address, balances_by_chain, fmt_units
from lib import intents
from lib.db import utc_now


def _history(db, deposit_uuid, event, balance, comment=None):
    db.insert("deposit_history", {"deposit_uuid": deposit_uuid, "time": utc_now(), "event": event,
                                  "balance": str(balance), "comment": comment[:255] if comment else None})


def fill_addresses(ctx):
    db = ctx.db
    rows = db.query("SELECT id, uuid FROM deposits WHERE address IS NULL ORDER BY id")
    if not rows:
        return
    wallet = ctx.wallet()
    for row in rows:

        def store(index, address, row=row):
            n = db.execute("UPDATE deposits SET address = ?, derivation_index = ?, updated_at = ? "
                           "WHERE id = ? AND address IS NULL", (address, index, utc_now(), row["id"]))
            if n:
                _history(db, row["uuid"], "address", 0, "deposit address %s assigned" % address)
            return bool(n)

        result = assign_derived_address(
            ctx, "deposits", "deposit", row["uuid"],
            lambda i: db.value("SELECT 1 FROM deposits WHERE derivation_index = ?", (i,)) is not None,
            wallet.deposit_address, store)
        if result and result[0]:
            ctx.count("deposits", "addresses")


def update_balances(ctx):
    db = ctx.db
    rows = ctx.served(db.query("SELECT uuid, chain_id, token_contract, decimals, address, balance FROM deposits "
                               "WHERE address IS NOT NULL"))
    for _chain_id, _rpc, _block, chain_rows, balances in balances_by_chain(ctx, rows, "address", "deposits"):
        for r in chain_rows:
            if r["address"] not in balances:
                continue
            new = balances[r["address"]]
            if str(new) == str(r["balance"]):
                continue
            with db.transaction():
                db.execute("UPDATE deposits SET balance = ?, updated_at = ? WHERE uuid = ?",
                           (str(new), utc_now(), r["uuid"]))
                _history(db, r["uuid"], "balance", new, "balance %s" % fmt_units(new, r["decimals"]))
            ctx.count("deposits", "balance_changes")


def execute_withdrawal(ctx, intent):
    db = ctx.db
    table = intents.WITHDRAWALS
    dep = db.one("SELECT * FROM deposits WHERE uuid = ?", (intent["deposit_uuid"],))
    if dep is not None and not ctx.serves(dep["chain_id"]):
        return False            # another cron process holds this chain's payouts lease
    if dep is not None and dep["address"] and intents.legs(db, intent["uuid"]):
        source = ctx.wallet().deposit_key(int(dep["derivation_index"]))
        payouts.retry_failed_legs(ctx, table, intent, source=source, fee_order=payouts.FEE_ORDER[payouts.WITHDRAW])
        return False
    try:
        if dep is None:
            raise payouts.PayoutRefused("deposit not found")
        if not dep["address"] or dep["derivation_index"] is None:
            raise payouts.PayoutRefused("the deposit has no address yet")
        to = payouts.checked_address(intent["to_address"], "withdrawal address")
        chain_id = int(dep["chain_id"])
        if db.value("SELECT 1 FROM payouts WHERE deposit_uuid = ? AND status IN ('signed', 'broadcast')",
                    (dep["uuid"],)) is not None:
            raise payouts.NotYet("an earlier withdrawal from this deposit is still in flight")
        account = ctx.wallet().deposit_key(int(dep["derivation_index"]))
        if account.address.lower() != dep["address"].lower():
            raise payouts.PayoutRefused("deposit address %s does not match MNEMONIC: refusing to sign"
                                        % dep["address"])
        rpc = ctx.rpc(chain_id)
        balance = payouts.confirmed_balance(ctx, rpc, chain_id, dep["token_contract"], account.address)
        if balance == 0:
            raise payouts.PayoutRefused("the deposit's confirmed balance is 0")
        try:
            plan = payouts.plan_payout(ctx, rpc, chain_id=chain_id, currency=dep["currency"],
                                       token_contract=dep["token_contract"], source=account, balance=balance,
                                       gross=[("store", to, balance)], fee_order=payouts.FEE_ORDER[payouts.WITHDRAW])
        except payouts.NothingToPay as e:
            raise payouts.PayoutRefused("deposit balance too small: %s" % e)
    except payouts.PayoutRefused as e:
        payouts.refuse(ctx, table, intent, str(e))
        return False
    except fees.FeeTooHigh as e:
        payouts.wait_for_fees(ctx, table, intent, e)
        return False
    if payouts.commit_plan(ctx, table, intent, plan, dep["uuid"]):
        ctx.count("deposits", "withdrawals_signed")
        return True
    return False


def finalize_withdrawal(ctx, intent, rows):
    db = ctx.db
    dep = db.one("SELECT uuid, decimals FROM deposits WHERE uuid = ?", (intent["deposit_uuid"],))
    with db.transaction():
        still = db.one("SELECT status FROM deposit_withdraw_intents WHERE id = ? FOR UPDATE", (intent["id"],))
        if not still or still["status"] != "processing":
            return
        follow.insert_receipts(db, rows, deposit_uuid=dep["uuid"])
        for r in rows:
            if r["kind"] == "gas" or r["status"] != "confirmed":
                continue
            _history(db, dep["uuid"], "withdrawn", r["amount"],
                     "withdrew %s to %s (tx %s)" % (fmt_units(r["amount"], dep["decimals"]), r["to_address"],
                                                    r["tx_hash"]))
        intents.finish(db, intents.WITHDRAWALS, intent, intents.COMPLETED)
    ctx.count("deposits", "withdrawals_completed")


def run(ctx):
    fill_addresses(ctx)
    update_balances(ctx)
    signed = 0
    for intent in intents.due(ctx.db, intents.WITHDRAWALS, int(ctx.env.get("CRON_INTENTS_PER_RUN") or 200)):
        try:
            signed += bool(execute_withdrawal(ctx, intent))
        except payouts.NotYet as e:
            ctx.log("withdrawal %s: %s" % (intent["uuid"], e))
        except Exception as e:
            ctx.error("deposits", "withdrawal %s: %s: %s" % (intent["uuid"], type(e).__name__, e))
    if signed:
        follow.run(ctx)
