"""The cron duties of SPEC section 6, and the per-run context they share.

Every duty reads the chain first and writes the database after, in short
transactions (one per order or deposit), so a provider that hangs never holds a
database lock, and a failure in one order or chain does not undo the others.

Confirmation depth (documented in the README): with required_confirmations = N
the head block counts as one confirmation, so balances are read at block
head - N + 1 (N = 0 reads the head itself), and a payout is confirmed when its
block is at least N deep (head - block + 1 >= N).
"""
import datetime
import os
import signal
import socket
import sys
import time
from fractions import Fraction

from cron.alchemy_client import RpcClient, RpcError, RpcTransportError, rpc_url_for
from cron.escrow import HDWallet, derivation_index, next_free_index
from lib import config
from lib import status_machine as sm
from lib.db import IntegrityError, utc_now


class CronConfigError(Exception):
    pass


class Context:
    """What one cron run knows: settings, database, wallet, RPC clients, counters, errors."""

    def __init__(self, env, db, worker=None, log=None):
        self.env = env
        self.db = db
        self.worker = worker or "%s:%d" % (socket.gethostname(), os.getpid())
        self._log = log
        self._rpcs = {}
        self._wallet = None
        self._heads_recorded = {}
        self.counts = {}
        self.errors = []
        self.polled = set()          # orders whose escrow balance was read in this run
        self.confirmations = config.count(db, "required_confirmations")

    # -- settings and clients ------------------------------------------------
    def wallet(self):
        if self._wallet is None:
            mnemonic = self.env.get("MNEMONIC")
            if not mnemonic:
                raise CronConfigError("MNEMONIC is not set (cron settings or SECRETS_FILE)")
            self._wallet = HDWallet(mnemonic)
        return self._wallet

    def rpc(self, chain_id):
        chain_id = int(chain_id)
        if chain_id not in self._rpcs:
            url = rpc_url_for(chain_id, self.env)
            self._rpcs[chain_id] = RpcClient(
                url, timeout=float(self.env.get("CRON_RPC_TIMEOUT") or 10),
                retries=int(self.env.get("CRON_RPC_RETRIES") or 3),
                backoff=float(self.env.get("CRON_RPC_BACKOFF") or 0.5),
                batch_size=int(self.env.get("CRON_RPC_BATCH_SIZE") or 100))
        return self._rpcs[chain_id]

    def head(self, chain_id, rpc=None):
        """The chain's newest block (asked afresh), recorded in chain_heads for /health."""
        rpc = rpc or self.rpc(chain_id)
        head = rpc.block_number()
        if self._heads_recorded.get(chain_id) != head:
            self.db.upsert("chain_heads", {"chain_id": int(chain_id)},
                           {"block_number": head, "seen_at": utc_now()})
            self._heads_recorded[chain_id] = head
        return head

    def confirmed_block(self, chain_id, rpc=None):
        head = self.head(chain_id, rpc)
        if self.confirmations <= 0:
            return head
        return max(head - self.confirmations + 1, 0)

    # -- bookkeeping ------------------------------------------------------------
    def count(self, task, key, n=1):
        t = self.counts.setdefault(task, {})
        t[key] = t.get(key, 0) + n

    def error(self, task, message):
        self.errors.append("%s: %s" % (task, message))
        self.log("ERROR %s: %s" % (task, message))

    def log(self, message):
        if self._log:
            self._log(message)

    def crash(self, point):
        """Test hook: CRON_CRASH_AT=<point> kills this process with SIGKILL at that point."""
        if self.env.get("CRON_CRASH_AT") == point:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def close(self):
        for client in self._rpcs.values():
            client.close()


# -- helpers -------------------------------------------------------------------------

def age_seconds(stamp):
    then = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return (datetime.datetime.now(datetime.timezone.utc) - then).total_seconds()


def open_intent_orders(db):
    return {r["transaction_uuid"] for r in
            db.query("SELECT transaction_uuid FROM transaction_intents WHERE open_key IS NOT NULL")}


def fmt_units(amount, decimals):
    amount, decimals = int(amount), int(decimals)
    whole, frac = divmod(amount, 10 ** decimals)
    if not frac:
        return str(whole)
    return "%d.%s" % (whole, str(frac).rjust(decimals, "0").rstrip("0"))


def read_balances(ctx, rpc, block, rows, address_key, task):
    """{address: balance} for rows of one chain, batched per token.

    A token whose balances cannot be read (a bad contract, say) is recorded as an
    error and left out, so the other tokens of the chain are still watched.
    Transport failures raise: nothing of the chain can be read then.
    """
    by_token = {}
    for r in rows:
        by_token.setdefault(r["token_contract"] or "", []).append(r[address_key])
    out = {}
    for token, addrs in by_token.items():
        if token:
            try:
                out.update(rpc.erc20_balances(token, addrs, block))
            except RpcTransportError:
                raise
            except RpcError as e:
                ctx.error(task, "token %s: %s" % (token, e))
        else:
            out.update(rpc.get_balances(addrs, block))
    return out


def balances_by_chain(ctx, rows, address_key, task):
    """Yield (chain_id, rpc, block, chain_rows, {address: balance}) per chain of `rows`.

    Balances are read at the confirmed block. A chain that cannot be read is recorded
    as an error of `task` and skipped, so the other chains are still served.
    """
    by_chain = {}
    for r in rows:
        by_chain.setdefault(int(r["chain_id"]), []).append(r)
    for chain_id, chain_rows in sorted(by_chain.items()):
        try:
            rpc = ctx.rpc(chain_id)
            block = ctx.confirmed_block(chain_id, rpc)
            balances = read_balances(ctx, rpc, block, chain_rows, address_key, task)
        except Exception as e:
            ctx.error(task, "chain %d: %s" % (chain_id, e))
            continue
        yield chain_id, rpc, block, chain_rows, balances


def assign_derived_address(ctx, task, what, uuid, index_taken, derive, store):
    """Give `uuid` the address at its derivation index, or the next free one.

    The index is derived from the bare uuid (SPEC section 5); `what` ('order',
    'deposit') only labels the error message.

    index_taken(i) -> bool; derive(i) -> address; store(index, address) -> bool runs in
    one transaction and answers whether it stored the address (False: someone else did).
    A UNIQUE violation (another worker took the index in between) makes it look again.
    Returns (stored, collided) or None after 5 attempts (recorded as an error of `task`).
    """
    start = derivation_index(uuid)
    for _attempt in range(5):
        index = next_free_index(start, index_taken)
        address = derive(index)
        try:
            with ctx.db.transaction():
                stored = store(index, address)
            return stored, index != start
        except IntegrityError:
            continue
    ctx.error(task, "%s %s: no free derivation index after 5 attempts" % (what, uuid))
    return None


# -- duty 1: escrow addresses ---------------------------------------------------------

def fill_escrow_addresses(ctx):
    db = ctx.db
    # An order without an address has no status row yet, so it is open: the closed_at test
    # lets idx_evm_transactions_open skip the closed orders instead of scanning them all.
    rows = db.query("SELECT e.id, e.transaction_uuid FROM evm_transactions e "
                    "WHERE e.closed_at IS NULL AND e.escrow_address IS NULL ORDER BY e.id")
    if not rows:
        return
    wallet = ctx.wallet()
    for row in rows:
        uuid = row["transaction_uuid"]

        def store(index, address, row=row, uuid=uuid):
            n = db.execute("UPDATE evm_transactions SET escrow_address = ?, derivation_index = ? "
                           "WHERE id = ? AND escrow_address IS NULL", (address, index, row["id"]))
            if n and sm.current_status(db, uuid) is None:
                sm.append_status(db, uuid, sm.PENDING, "0", comment="escrow address assigned")
            return bool(n)

        result = assign_derived_address(
            ctx, "escrow_addresses", "order", uuid,
            lambda i: db.value("SELECT 1 FROM evm_transactions WHERE derivation_index = ?", (i,)) is not None,
            wallet.escrow_address, store)
        if result and result[0]:
            ctx.count("escrow_addresses", "assigned")
            if result[1]:
                ctx.count("escrow_addresses", "index_collisions")


# -- duty 2: poll PENDING escrows -----------------------------------------------------

# Open orders with their current status (lib/status_machine.py): the cost follows the
# number of open orders, not of all orders ever made.
OPEN_ORDERS_FROM = sm.OPEN_ORDERS_FROM

# PENDING orders with an escrow address (polled, and expired after pending_duration).
PENDING_SQL = ("SELECT e.transaction_uuid, e.chain_id, e.token_contract, e.decimals, e.required_amount, "
               "e.received_amount, e.escrow_address, "
               "(SELECT t.created_at FROM transactions t WHERE t.uuid = e.transaction_uuid) AS created_at "
               + OPEN_ORDERS_FROM + " AND COALESCE(s.status, 'PENDING') = 'PENDING' AND e.escrow_address IS NOT NULL")

# COMPLETED orders (dispatch timeouts, auto-release, stuck), with the time they were paid.
# (COALESCE keeps the outer join, so no planner starts from every COMPLETED row ever written.)
COMPLETED_SQL = ("SELECT e.transaction_uuid, s.time AS updated_at " + OPEN_ORDERS_FROM
                 + " AND COALESCE(s.status, 'PENDING') = 'COMPLETED'")


def is_paid(received, required, tolerance):
    """received >= required x (1 - tolerance), exactly (integers and a Fraction)."""
    t = Fraction(tolerance)
    return received > 0 and received * t.denominator >= required * (t.denominator - t.numerator)


def poll_pending(ctx):
    db = ctx.db
    rows = db.query(PENDING_SQL)
    busy = open_intent_orders(db)
    tolerance = config.fraction(db, "completion_tolerance")
    for _chain_id, _rpc, _block, chain_rows, balances in balances_by_chain(ctx, rows, "escrow_address", "poll"):
        ctx.count("poll", "escrows", len(chain_rows))
        for r in chain_rows:
            if r["transaction_uuid"] in busy or r["escrow_address"] not in balances:
                continue
            ctx.polled.add(r["transaction_uuid"])
            try:
                _apply_balance(ctx, r, balances[r["escrow_address"]], tolerance)
            except Exception as e:
                ctx.error("poll", "order %s: %s: %s" % (r["transaction_uuid"], type(e).__name__, e))
    # Chains that accept payments but have nothing pending: still record their head, so
    # /health shows whether cron reaches every provider it will need.
    for chain_id in sorted(_token_chains(ctx) - {int(r["chain_id"]) for r in rows}):
        try:
            ctx.head(chain_id)
        except Exception as e:
            ctx.error("poll", "chain %d: %s" % (chain_id, e))


def _token_chains(ctx):
    from lib.chains import CHAINS, allow_dev_from_env
    out = set()
    for r in ctx.db.query("SELECT DISTINCT chain_id FROM accepted_tokens WHERE status = 'active'"):
        chain = CHAINS.get(int(r["chain_id"]))
        if chain is not None and (not chain.dev or allow_dev_from_env(ctx.env)):
            out.add(chain.chain_id)
    return out


def _apply_balance(ctx, r, received, tolerance):
    db = ctx.db
    uuid = r["transaction_uuid"]
    required = int(r["required_amount"])
    before = int(r["received_amount"] or 0)
    paid = is_paid(received, required, tolerance)
    if received == before and not paid:
        return
    with db.transaction():
        cur = sm.current_status(db, uuid)
        if cur is None or cur["status"] != sm.PENDING:
            return
        if received != before:
            db.execute("UPDATE evm_transactions SET received_amount = ? WHERE transaction_uuid = ?",
                       (str(received), uuid))
        if paid:
            sm.append_status(db, uuid, sm.COMPLETED, str(received),
                             comment="paid: %s of %s received" % (fmt_units(received, r["decimals"]),
                                                                  fmt_units(required, r["decimals"])))
            if sm.current_shipping(db, uuid) is None:
                sm.append_shipping(db, uuid, sm.DISPATCH_PENDING)
            ctx.count("poll", "completed")
        elif received > 0:
            sm.append_status(db, uuid, sm.PENDING, str(received),
                             comment="partial payment: %s of %s received" % (
                                 fmt_units(received, r["decimals"]), fmt_units(required, r["decimals"])))
            ctx.count("poll", "partial")
        db.execute("UPDATE transactions SET updated_at = ? WHERE uuid = ?", (utc_now(), uuid))


# -- duty 3: expire old PENDING orders -----------------------------------------------------

def _auto_intent_failed(db, uuid, action):
    """A cron-opened intent of this kind already failed: staff decide, cron does not retry it."""
    return db.value("SELECT 1 FROM transaction_intents WHERE transaction_uuid = ? AND action = ? "
                    "AND requested_by IS NULL AND status = 'failed'", (uuid, action)) is not None


def _open_auto_intent(ctx, task, uuid, action, why):
    if _auto_intent_failed(ctx.db, uuid, action):
        ctx.count(task, "waiting_for_staff")
        return
    try:
        sm.open_intent(ctx.db, uuid, action, None)
        ctx.count(task, action.lower())
        ctx.log("order %s: %s (%s)" % (uuid, action, why))
    except sm.IntentConflict:
        pass


def expire_pending(ctx):
    db = ctx.db
    limit = config.duration(db, "pending_duration")
    rows = db.query(PENDING_SQL)
    busy = open_intent_orders(db)
    for r in rows:
        if age_seconds(r["created_at"]) <= limit or r["transaction_uuid"] in busy:
            continue
        if r["transaction_uuid"] not in ctx.polled:
            ctx.count("expire", "skipped_unpolled")   # never fail an order on a stale balance
            continue
        uuid = r["transaction_uuid"]
        try:
            if int(r["received_amount"] or 0) == 0:
                with db.transaction():
                    cur = sm.current_status(db, uuid)
                    if cur and cur["status"] == sm.PENDING:
                        sm.append_status(db, uuid, sm.FAILED, "0", comment="no payment within pending_duration")
                        ctx.count("expire", "failed")
            else:
                _open_auto_intent(ctx, "expire", uuid, sm.CANCEL, "partly paid, pending_duration passed")
        except Exception as e:
            ctx.error("expire", "order %s: %s: %s" % (uuid, type(e).__name__, e))


# -- duty 4: dispatch timeouts, auto-release, stuck orders -----------------------------------

def timeouts(ctx):
    db = ctx.db
    dispatch_limit = config.duration(db, "dispatch_duration")
    release_after = config.duration(db, "completed_duration")
    stuck_limit = config.duration(db, "stuck_duration")
    # Open orders whose newest status row is COMPLETED (OPEN_ORDERS_FROM: only open orders
    # are looked at, never the COMPLETED rows of every order ever paid).
    rows = db.query(COMPLETED_SQL)
    busy = open_intent_orders(db)
    for r in rows:
        uuid = r["transaction_uuid"]
        if uuid in busy:
            continue
        try:
            completed_age = age_seconds(r["updated_at"])
            shipping = sm.current_shipping(db, uuid)
            dispatched = shipping is not None and shipping["status"] == sm.DISPATCHED
            disputed = db.value("SELECT 1 FROM disputes WHERE transaction_uuid = ? AND status = 'open'",
                                (uuid,)) is not None
            if dispatched and not disputed and age_seconds(shipping["time"]) > release_after:
                _open_auto_intent(ctx, "timeouts", uuid, sm.RELEASE, "dispatched and completed_duration passed")
            elif completed_age > stuck_limit:
                _freeze(ctx, uuid, "stuck: paid longer than stuck_duration ago")
            elif not dispatched and completed_age > dispatch_limit:
                _freeze(ctx, uuid, "not dispatched within dispatch_duration")
        except Exception as e:
            ctx.error("timeouts", "order %s: %s: %s" % (uuid, type(e).__name__, e))


def _freeze(ctx, uuid, why):
    db = ctx.db
    with db.transaction():
        cur = sm.current_status(db, uuid)
        if cur and cur["status"] == sm.COMPLETED:
            sm.append_status(db, uuid, sm.FROZEN, cur["amount"], comment=why)
            db.execute("UPDATE transactions SET updated_at = ? WHERE uuid = ?", (utc_now(), uuid))
            ctx.count("timeouts", "frozen")


# -- duty 7: reconcile late payments -------------------------------------------------------

RECONCILE_RECENT_SECONDS = 7 * 86400
RECONCILE_SLOTS = 60


def reconcile(ctx):
    """Funds reaching an escrow after FAILED / RELEASED / CANCELLED go back to the buyer.

    Escrows that reached their final status within the last 7 days are checked on every
    run; older ones in a rotation, 1/60 of them per run (each about once an hour with a
    one-minute crontab), which keeps the cost flat as orders accumulate.
    """
    from cron import payouts
    db = ctx.db
    slot = int(time.time() // 60) % RECONCILE_SLOTS
    recent = (datetime.datetime.now(datetime.timezone.utc)
              - datetime.timedelta(seconds=RECONCILE_RECENT_SECONDS)).strftime("%Y-%m-%d %H:%M:%S")
    rows = db.query("SELECT s.transaction_uuid, s.status, e.chain_id, e.token_contract, e.decimals, "
                    "e.escrow_address, e.refund_address, t.buyer_uuid "
                    "FROM transaction_statuses s JOIN evm_transactions e ON e.transaction_uuid = s.transaction_uuid "
                    "JOIN transactions t ON t.uuid = s.transaction_uuid "
                    "WHERE s.status IN ('FAILED', 'RELEASED', 'CANCELLED') AND e.escrow_address IS NOT NULL "
                    "AND (s.time >= ? OR (e.id % ?) = ?)", (recent, RECONCILE_SLOTS, slot))
    busy = open_intent_orders(db)
    rows = [r for r in rows if r["transaction_uuid"] not in busy]
    for chain_id, rpc, block, chain_rows, balances in balances_by_chain(ctx, rows, "escrow_address", "reconcile"):
        try:
            min_native = 2 * payouts.NATIVE_TRANSFER_GAS * payouts.gas_price_for(ctx, rpc)
        except Exception as e:
            ctx.error("reconcile", "chain %d: %s" % (chain_id, e))
            continue
        ctx.count("reconcile", "checked", len(chain_rows))
        for r in chain_rows:
            amount = balances.get(r["escrow_address"], 0)
            if amount <= 0 or (not r["token_contract"] and amount < min_native):
                continue        # empty, or dust that would not pay for its own refund
            try:
                _late_funds(ctx, r, amount, block)
            except Exception as e:
                ctx.error("reconcile", "order %s: %s: %s" % (r["transaction_uuid"], type(e).__name__, e))


def _late_funds(ctx, r, amount, block):
    from cron import payouts
    db = ctx.db
    uuid = r["transaction_uuid"]
    # A payout still in flight, or confirmed after the block we read, explains the balance.
    if db.value("SELECT 1 FROM payouts WHERE transaction_uuid = ? AND (status IN ('signed', 'broadcast') "
                "OR block_number >= ?)", (uuid, block)) is not None:
        return
    has_refund = bool(r["refund_address"]) or bool(
        db.value("SELECT refund_address FROM users WHERE uuid = ?", (r["buyer_uuid"],)))
    if has_refund and not _auto_intent_failed(db, uuid, payouts.LATE_REFUND):
        now = utc_now()
        try:
            db.insert("transaction_intents", {
                "uuid": _uuid4(), "transaction_uuid": uuid, "action": payouts.LATE_REFUND,
                "status": "pending", "open_key": uuid, "requested_by": None, "created_at": now,
                "updated_at": now})
            ctx.count("reconcile", "late_refunds")
            ctx.log("order %s (%s): %s late funds found; refund queued"
                    % (uuid, r["status"], fmt_units(amount, r["decimals"])))
        except IntegrityError:
            pass
        return
    reason = ("late payment of %s base units to the escrow of a %s order and no refund address"
              % (amount, r["status"])) if not has_refund else (
              "late payment of %s base units to the escrow of a %s order; the refund failed" % (amount, r["status"]))
    if db.value("SELECT 1 FROM staff_flags WHERE transaction_uuid = ? AND amount = ? AND resolved_at IS NULL",
                (uuid, str(amount))) is None:
        db.insert("staff_flags", {"transaction_uuid": uuid, "reason": reason[:255], "amount": str(amount),
                                  "created_at": utc_now(), "resolved_at": None})
        ctx.count("reconcile", "flagged")


def _uuid4():
    import uuid
    return str(uuid.uuid4())
