#!/usr/bin/env python3
"""The auditor (`make audit`): every escrow's chain state against the database.

    python cron/audit.py             every chain with escrows
    python cron/audit.py --chain 1   one chain (repeatable)

Per chain, per escrow and asset (the order's own asset; for an ERC-20 order also the
native coin its gas was paid in), read at the chain's confirmed block:

- paid out per recipient: every payout transaction the database records as mined from
  the escrow is looked up on chain (receipt and transaction): it must exist, have the
  recorded outcome, come from the escrow and move the recorded amount to the recorded
  recipient (ERC-20: its Transfer log), and have cost the recorded gas;
- no other transaction left the escrow: its nonce on chain equals the number of mined
  transactions the database records from it;
- what remains: the escrow's balance on chain equals what the database accounts for:
  the received amount of an open order, the amount the payout engine retained in a
  closed one (`retained_amount`, `retained_native`), plus the funds open staff flags
  already report (late funds, dust, wrong asset);
- totals, chain and database side by side: received = paid out + fees + remaining,
  per escrow and per chain.

While it audits a chain the auditor holds that chain's `payouts` lease (cron/leases.py;
it waits up to AUDIT_LEASE_WAIT_SECONDS [120] for a running payouts duty), so nothing is paid on the
chain between its reads. An escrow with a payout still in flight (signed or broadcast,
not yet at depth) is left for the next audit. An open order's escrow holding more than the order counted is
not a discrepancy (the poll counts it, and the payout pays the whole balance); less is.

Each discrepancy is printed and raised once as a staff flag of kind 'audit' (shown on
the staff pages and counted by /health.php; an unresolved flag with the same reason is
not raised again). Exit status: 0 clean, 1 discrepancies, 2 the audit could not run
(settings, database or a chain's node unreachable).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, ROOT)

import argparse  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

from cron import follow, leases  # noqa: E402
from cron.tasks import FUNDS_FLAG_KINDS, Context, fmt_units, lock_order  # noqa: E402
from lib import intents  # noqa: E402
from lib.chains import get_chain  # noqa: E402

FLAG_KIND = "audit"
LEASE_WAIT_SECONDS = 120
IN_FLIGHT = ("signed", "broadcast")

ESCROWS_SQL = ("SELECT e.transaction_uuid, e.chain_id, e.currency, e.token_contract, e.decimals, e.escrow_address, "
               "e.received_amount, e.retained_amount, e.retained_native, e.closed_at, "
               "(SELECT s.status FROM transaction_statuses s WHERE s.transaction_uuid = e.transaction_uuid "
               "ORDER BY s.id DESC LIMIT 1) AS status "
               "FROM evm_transactions e WHERE e.escrow_address IS NOT NULL AND e.chain_id = ? ORDER BY e.id")


class Ledger:
    """One escrow's account of one asset: in = out + fees + remaining."""

    def __init__(self):
        self.gas_in = 0
        self.out = {}          # recipient role/address -> amount
        self.fees = 0
        self.remaining = 0

    @property
    def paid_out(self):
        return sum(self.out.values())

    @property
    def received(self):
        return self.paid_out + self.fees + self.remaining


class Audit:
    def __init__(self, env, db, log=print):
        self.env = env
        self.db = db
        self.ctx = Context(env, db, worker="audit", log=None)
        self.log = log
        self.discrepancies = []        # (chain_id, transaction_uuid, escrow, token, amount, reason)
        self.totals = {}               # (chain_id, asset label) -> {'chain': Ledger, 'db': Ledger}
        self.escrows = 0
        self.skipped = 0

    # -- the parts ------------------------------------------------------------------
    def discrepancy(self, order, token, amount, reason):
        self.discrepancies.append((int(order["chain_id"]), order["transaction_uuid"], order["escrow_address"],
                                   token, amount, reason))
        self.log("  DISCREPANCY order %s, escrow %s: %s" % (order["transaction_uuid"], order["escrow_address"],
                                                            reason))

    def chains(self, only=None):
        rows = self.db.query("SELECT DISTINCT chain_id FROM evm_transactions WHERE escrow_address IS NOT NULL")
        found = sorted(int(r["chain_id"]) for r in rows)
        return [c for c in found if c in set(only)] if only else found

    def run_chain(self, chain_id):
        db, ctx = self.db, self.ctx
        rpc = ctx.rpc(chain_id)
        block = ctx.confirmed_block(chain_id, rpc)
        native = get_chain(chain_id).native_symbol
        self.log("chain %d: auditing at block %d" % (chain_id, block))
        orders = db.query(ESCROWS_SQL, (chain_id,))
        in_flight = {r["from_address"].lower() for r in db.query(
            "SELECT DISTINCT from_address FROM payouts WHERE chain_id = ? AND status IN ('signed', 'broadcast')",
            (chain_id,))} | {r["to_address"].lower() for r in db.query(
            "SELECT DISTINCT to_address FROM payouts WHERE chain_id = ? AND kind = 'gas' "
            "AND status IN ('signed', 'broadcast')", (chain_id,))}
        ready = []
        for o in orders:
            if o["escrow_address"].lower() in in_flight:
                self.skipped += 1
                self.log("  order %s: a payout is in flight; left for the next audit" % o["transaction_uuid"])
            else:
                ready.append(o)
        addrs = [o["escrow_address"] for o in ready]
        natives = rpc.get_balances(addrs, block) if addrs else {}
        tokens = {}
        for contract in sorted({o["token_contract"] for o in ready if o["token_contract"]}):
            mine = [o["escrow_address"] for o in ready if o["token_contract"] == contract]
            tokens[contract] = rpc.erc20_balances(contract, mine, block)
        nonces = dict(zip(addrs, rpc.batch([("eth_getTransactionCount", [a, hex(block)]) for a in addrs]))) \
            if addrs else {}
        for o in ready:
            self.escrows += 1
            token = o["token_contract"] or ""
            balance = tokens[token][o["escrow_address"]] if token else natives[o["escrow_address"]]
            self.audit_escrow(rpc, o, token, o["currency"], int(o["decimals"]), balance,
                              natives[o["escrow_address"]], int(nonces[o["escrow_address"]], 16), native)

    def audit_escrow(self, rpc, o, token, symbol, decimals, balance, native_balance, nonce, native):
        db = self.db
        escrow = o["escrow_address"]
        chain_id = int(o["chain_id"])
        rows = db.query("SELECT * FROM payouts WHERE chain_id = ? AND (LOWER(from_address) = ? OR "
                        "(kind = 'gas' AND LOWER(to_address) = ?)) ORDER BY id",
                        (chain_id, escrow.lower(), escrow.lower()))
        sent = [r for r in rows if r["from_address"].lower() == escrow.lower() and r["gas_used"] is not None]
        gas_in = [r for r in rows if r["kind"] == "gas" and r["to_address"].lower() == escrow.lower()
                  and r["status"] == "confirmed"]
        # What the database says, and what the chain says, of the order's asset and the native coin.
        own = {"db": Ledger(), "chain": Ledger()}
        coin = {"db": Ledger(), "chain": Ledger()} if token else own
        for r in gas_in:
            coin["db"].gas_in += int(r["amount"])
            coin["chain"].gas_in += int(r["amount"])
        for r in sent:
            delivered = int(r["delivered_amount"] or 0) if r["status"] == "confirmed" else 0
            fee = int(r["gas_used"]) * int(r["effective_gas_price"] or 0)
            who = "%s %s" % (r["recipient_role"], r["to_address"])
            book = own if (r["token_contract"] or "") == token else coin
            if delivered:
                book["db"].out[who] = book["db"].out.get(who, 0) + delivered
            coin["db"].fees += fee
            seen_delivered, seen_fee = self.on_chain(rpc, o, r, token)
            if seen_delivered:
                book["chain"].out[who] = book["chain"].out.get(who, 0) + seen_delivered
            coin["chain"].fees += seen_fee
        if nonce != len(sent):
            self.discrepancy(o, "", None, "%d transaction(s) left the escrow on chain; the database records %d"
                             % (nonce, len(sent)))
        flagged = self.flagged(o)
        # What remains, as the database accounts for it.
        if o["closed_at"]:
            expect_own = int(o["retained_amount"] or 0)
            expect_native = int(o["retained_native"] or 0) if token else None
        else:
            expect_own = int(o["received_amount"] or 0) - own["db"].paid_out - (0 if token else coin["db"].fees)
            expect_native = (coin["db"].gas_in - coin["db"].fees) if token else None
        expect_own += flagged.get(token.lower(), 0)
        own["db"].remaining, own["chain"].remaining = expect_own, balance
        self.check_remaining(o, token, symbol, decimals, balance, expect_own)
        if token:
            expect_native += flagged.get("", 0)
            coin["db"].remaining, coin["chain"].remaining = expect_native, native_balance
            self.check_remaining(o, "", native, get_chain(chain_id).native_decimals, native_balance, expect_native)
        # Received: for the native coin of a token escrow, what came in is the gas top-ups.
        for label, book, dec in ((symbol, own, decimals),) + (((native, coin, 18),) if token else ()):
            for side in ("db", "chain"):
                t = self.totals.setdefault((chain_id, label), {"db": Ledger(), "chain": Ledger()})[side]
                for who, amount in book[side].out.items():
                    t.out[who.split()[0]] = t.out.get(who.split()[0], 0) + amount
                t.fees += book[side].fees if book is coin else 0
                t.remaining += book[side].remaining
            self.log("  order %s %s %s: received %s = paid out %s + fees %s + remaining %s (chain); database: "
                     "%s = %s + %s + %s%s"
                     % (o["transaction_uuid"], escrow, label,
                        *(fmt_units(x, dec) for x in (book["chain"].received, book["chain"].paid_out,
                                                      book["chain"].fees if book is coin else 0,
                                                      book["chain"].remaining,
                                                      book["db"].received, book["db"].paid_out,
                                                      book["db"].fees if book is coin else 0,
                                                      book["db"].remaining)),
                        "".join("; %s: %s" % (who, fmt_units(a, dec)) for who, a in sorted(book["db"].out.items()))))

    def on_chain(self, rpc, o, r, token):
        """(delivered, fee) of one recorded transaction as the chain has it; a discrepancy
        for every way it differs from the row."""
        what = "payout %s (%s %s to %s)" % (r["tx_hash"], r["recipient_role"], r["amount"], r["to_address"])
        receipt = rpc.get_transaction_receipt(r["tx_hash"])
        tx = rpc.get_transaction(r["tx_hash"]) if receipt is not None else None
        if receipt is None or tx is None:
            self.discrepancy(o, r["token_contract"] or "", r["amount"],
                             "%s is recorded as %s but is not on chain" % (what, r["status"]))
            return 0, 0
        ok = int(receipt.get("status", 1)) == 1
        fee = int(receipt["gasUsed"]) * int(receipt.get("effectiveGasPrice") or 0)
        problems = []
        if (tx.get("from") or "").lower() != r["from_address"].lower():
            problems.append("sent from %s" % tx.get("from"))
        if ok != (r["status"] == "confirmed"):
            problems.append("on chain it %s" % ("succeeded" if ok else "reverted"))
        if r["token_contract"] and r["kind"] == "payout":
            delivered = follow.transfer_delivered(receipt, r["token_contract"], r["from_address"], r["to_address"]) \
                if ok else 0
        else:
            delivered = int(tx.get("value") or "0x0", 16) if ok else 0
            if ok and (tx.get("to") or "").lower() != r["to_address"].lower():
                problems.append("paid %s" % tx.get("to"))
                delivered = 0
        recorded = int(r["delivered_amount"] or 0) if r["status"] == "confirmed" else 0
        if delivered != recorded:
            problems.append("moved %d, recorded %d" % (delivered, recorded))
        if fee != int(r["gas_used"]) * int(r["effective_gas_price"] or 0):
            problems.append("cost %d in gas, recorded %d" % (fee, int(r["gas_used"]) * int(r["effective_gas_price"] or 0)))
        if problems:
            self.discrepancy(o, r["token_contract"] or "", r["amount"], "%s: %s" % (what, "; ".join(problems)))
        return delivered, fee

    def flagged(self, o):
        """{asset: amount} the open funds flags of the order already report."""
        out = {}
        for f in self.db.query("SELECT kind, amount, token_contract FROM staff_flags WHERE transaction_uuid = ? "
                               "AND resolved_at IS NULL AND amount IS NOT NULL", (o["transaction_uuid"],)):
            if f["kind"] in FUNDS_FLAG_KINDS:
                key = (f["token_contract"] or "").lower()
                out[key] = out.get(key, 0) + int(f["amount"])
        return out

    def check_remaining(self, o, token, symbol, decimals, balance, expected):
        if balance == expected or (balance > expected and not o["closed_at"]):
            return
        self.discrepancy(o, token, balance - expected,
                         "the escrow holds %s %s on chain; the database accounts for %s (%s %s)"
                         % (fmt_units(balance, decimals), symbol, fmt_units(max(expected, 0), decimals),
                            "missing" if balance < expected else "unexplained",
                            fmt_units(abs(balance - expected), decimals)))

    def raise_flags(self):
        """A staff flag per discrepancy, once while an unresolved one with the same reason exists."""
        raised = 0
        for chain_id, uuid, escrow, token, amount, reason in self.discrepancies:
            text = ("audit: " + reason)[:255]
            with self.db.transaction():
                lock_order(self.db, uuid)       # two audits at once raise it once
                if self.db.value("SELECT 1 FROM staff_flags WHERE kind = ? AND transaction_uuid = ? AND reason = ? "
                                 "AND resolved_at IS NULL", (FLAG_KIND, uuid, text)) is not None:
                    continue
                intents.flag(self.db, text, FLAG_KIND, transaction_uuid=uuid,
                             amount=None if amount is None else abs(int(amount)), chain_id=chain_id,
                             address=escrow, token_contract=token)
                raised += 1
        return raised

    def summary(self):
        for (chain_id, label), sides in sorted(self.totals.items()):
            c, d = sides["chain"], sides["db"]
            self.log("chain %d %s totals: received %d = paid out %d + fees %d + remaining %d (chain); "
                     "database %d = %d + %d + %d; paid out by role: %s"
                     % (chain_id, label, c.received, c.paid_out, c.fees, c.remaining, d.received, d.paid_out,
                        d.fees, d.remaining, ", ".join("%s %d" % kv for kv in sorted(d.out.items())) or "none"))

    def close(self):
        self.ctx.close()


def wait_for_lease(lease, chain_id, seconds):
    """Hold the chain's payouts lease while auditing it, so no payout is signed, sent or
    confirmed between the balances read and the rows read (cron skips the duty meanwhile)."""
    deadline = time.monotonic() + seconds
    while not lease.acquire("payouts", chain_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description="Audit every escrow's chain state against the database.")
    parser.add_argument("--chain", type=int, action="append", metavar="ID", help="audit this chain only (repeatable)")
    args = parser.parse_args(argv)
    from cron import env as cron_env
    from lib import db as dbmod
    try:
        env = cron_env.load()
        db = dbmod.from_env()
        dbmod.set_db(db)
        audit = Audit(env, db)
        chains = audit.chains(args.chain)
    except Exception as e:
        print("audit could not start: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
        return 2
    failed = False
    wait = int(env.get("AUDIT_LEASE_WAIT_SECONDS") or LEASE_WAIT_SECONDS)
    lease = leases.Leases(db, "audit:%s:%d" % (socket.gethostname(), os.getpid()), leases.lease_seconds(env))
    lease.start()
    try:
        for chain_id in chains:
            try:
                if not wait_for_lease(lease, chain_id, wait):
                    raise RuntimeError("cron's payouts on this chain held their lease for %d s" % wait)
                try:
                    audit.run_chain(chain_id)
                finally:
                    lease.release("payouts")
            except Exception as e:
                failed = True
                print("chain %d could not be audited: %s: %s" % (chain_id, type(e).__name__, e), file=sys.stderr,
                      flush=True)
        audit.summary()
        raised = audit.raise_flags()
    finally:
        lease.stop()
        lease.release_all()
        audit.close()
    n = len(audit.discrepancies)
    print("audit: %d escrow(s) on %d chain(s), %d left for later (payout in flight): %s"
          % (audit.escrows, len(chains), audit.skipped,
             "no discrepancy" if not n else "%d discrepancy(ies), %d new staff flag(s)" % (n, raised)), flush=True)
    if failed:
        return 2
    return 1 if n else 0


if __name__ == "__main__":
    sys.exit(main())
