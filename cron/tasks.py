"""The cron duties of SPEC section 6, and the per-run context they share.

Every duty reads the chain first and writes the database after, in short
transactions (one per order or deposit), so a provider that hangs never holds a
database lock, and a failure in one order or chain does not undo the others.

Confirmation depth (documented in the README), per chain (config key
required_confirmations_<CHAIN_ID>): with N confirmations the head block counts as one,
so balances are read at block head - N + 1 (N = 0 reads the head itself), and a payout
is confirmed when its block is at least N deep (head - block + 1 >= N). With
'finalized' or 'safe' the node's block of that name is the confirmed block.

Late funds and dust (duty 7, reconcile()): a late ERC-20 amount in a closed escrow is
refunded automatically only when its USD value is at least LATE_REFUND_MIN_GAS_MULTIPLE
(3) times the USD cost of the refund's gas, (21000 top-up + 100000 token transfer) x the
node's gas price, at the native coin's price; cheaper amounts, and any amount whose price
(or the native coin's) is unknown, are flagged 'dust' for staff. Native late funds keep
the rule that an amount under 2 x 21000 x gas price is not worth its refund. Assets in
the wrong escrow are flagged 'wrong_asset', never refunded automatically.
"""
import datetime
import os
import signal
import socket
import sys
import time
from decimal import Decimal
from fractions import Fraction

from cron.escrow import HDWallet, derivation_index, next_free_index
from cron.rpc_client import RpcClient, RpcError, RpcTransportError, rpc_url_for
from lib import config, intents
from lib import webhooks
from lib import status_machine as sm
from lib.db import IntegrityError, age_seconds, utc_now
from lib.pricing import format_amount


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
        self._depths = {}
        self._confirmed = {}
        self.chains = None           # the chains whose lease the running duty holds (None: all)
        self.transfers_to = {}       # {chain_id: {token: addresses its logs named}} (poll_pending)

    def serves(self, chain_id):
        """Whether the running duty may work on this chain (cron/cron.py leases it per chain)."""
        return self.chains is None or int(chain_id) in self.chains

    def served(self, rows):
        """The rows (with a chain_id) of the chains the running duty holds."""
        return [r for r in rows if self.serves(r["chain_id"])]

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

    def depth(self, chain_id):
        """Confirmations of the chain: an int, or 'finalized' / 'safe' (lib/config.py)."""
        chain_id = int(chain_id)
        if chain_id not in self._depths:
            self._depths[chain_id] = config.confirmations(self.db, chain_id)
        return self._depths[chain_id]

    def confirmed_block(self, chain_id, rpc=None):
        """The newest block whose state counts (read once per run and chain)."""
        chain_id = int(chain_id)
        if chain_id in self._confirmed:
            return self._confirmed[chain_id]
        rpc = rpc or self.rpc(chain_id)
        head = self.head(chain_id, rpc)
        depth = self.depth(chain_id)
        if isinstance(depth, str):
            block = rpc.get_block(depth)
            # A node without finality tags (or anvil, which answers the genesis block):
            # 64 blocks, two Ethereum epochs.
            number = block["number"] if block and (block["number"] or head < 64) else max(head - 63, 0)
        elif depth <= 0:
            number = head
        else:
            number = max(head - depth + 1, 0)
        self._confirmed[chain_id] = number
        return number

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

    def provider_usage(self):
        """What this run asked of the providers, summed over chains (RpcClient.provider_usage)."""
        out = {"requests": 0, "calls": 0, "largest_batch": 0, "by_method": {}}
        for client in self._rpcs.values():
            u = client.provider_usage()
            out["requests"] += u["requests"]
            out["calls"] += u["calls"]
            out["largest_batch"] = max(out["largest_batch"], u["largest_batch"])
            for method, n in u["by_method"].items():
                out["by_method"][method] = out["by_method"].get(method, 0) + n
        return out

    def close(self):
        for client in self._rpcs.values():
            client.close()


# -- helpers -------------------------------------------------------------------------



def open_intent_orders(db):
    return {r["transaction_uuid"] for r in
            db.query("SELECT transaction_uuid FROM transaction_intents WHERE open_key IS NOT NULL")}


def lock_order(db, uuid):
    """The order's evm_transactions row, locked until the transaction ends.

    Every cron transaction that decides an order's status takes it first, so decisions on
    one order by two cron hosts run one after the other, and the reads after it see what
    the other committed (MariaDB: SELECT ... FOR UPDATE before any plain read; SQLite:
    BEGIN IMMEDIATE holds the database's write lock already).
    """
    return db.one("SELECT transaction_uuid, received_amount, closed_at FROM evm_transactions "
                  "WHERE transaction_uuid = ? FOR UPDATE", (uuid,))


fmt_units = format_amount  # base units as token units: (125000, 6) -> "0.125"


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

# PENDING orders with an escrow address (polled; expire_pending selects its own, EXPIRE_SQL).
PENDING_SQL = ("SELECT e.transaction_uuid, e.chain_id, e.token_contract, e.decimals, e.required_amount, "
               "e.received_amount, e.escrow_address, "
               "(SELECT t.created_at FROM transactions t WHERE t.uuid = e.transaction_uuid) AS created_at "
               + OPEN_ORDERS_FROM + " AND COALESCE(s.status, 'PENDING') = 'PENDING' AND e.escrow_address IS NOT NULL")

# PENDING orders with an escrow address created before a cutoff (expired after
# pending_duration). The creation time is tested first, so the status of the many
# younger orders is never looked up.
EXPIRE_SQL = ("SELECT e.transaction_uuid, e.chain_id, e.received_amount " + OPEN_ORDERS_FROM
              + " AND e.escrow_address IS NOT NULL"
              " AND (SELECT t.created_at FROM transactions t WHERE t.uuid = e.transaction_uuid) < ?"
              " AND COALESCE(s.status, 'PENDING') = 'PENDING'")

# COMPLETED orders (dispatch timeouts, auto-release, stuck), with the time they were paid.
# (COALESCE keeps the outer join, so no planner starts from every COMPLETED row ever written.)
COMPLETED_SQL = ("SELECT e.transaction_uuid, s.time AS updated_at " + OPEN_ORDERS_FROM
                 + " AND COALESCE(s.status, 'PENDING') = 'COMPLETED'")


def is_paid(received, required, tolerance):
    """received >= required x (1 - tolerance), exactly (integers and a Fraction)."""
    if received <= 0:
        return False
    t = Fraction(tolerance)
    return received * t.denominator >= required * (t.denominator - t.numerator)


def poll_pending(ctx):
    db = ctx.db
    rows = ctx.served(db.query(PENDING_SQL))
    busy = open_intent_orders(db)
    tolerance = config.fraction(db, "completion_tolerance")
    by_chain = {}
    for r in rows:
        by_chain.setdefault(int(r["chain_id"]), []).append(r)
    for chain_id, chain_rows in sorted(by_chain.items()):
        try:
            scan = _PaymentScan(ctx, chain_id, chain_rows)
        except Exception as e:
            ctx.error("poll", "chain %d: %s" % (chain_id, e))
            continue
        ctx.count("poll", "escrows", len(chain_rows))
        failed_tokens = set()
        for r in chain_rows:
            addr = r["escrow_address"]
            if r["transaction_uuid"] in busy or not (addr in scan.balances or addr in scan.unchanged):
                continue
            ctx.polled.add(r["transaction_uuid"])
            if addr not in scan.balances:
                continue
            try:
                _apply_balance(ctx, r, scan.balances[addr], tolerance)
            except Exception as e:
                failed_tokens.add((r["token_contract"] or "").lower())
                ctx.error("poll", "order %s: %s: %s" % (r["transaction_uuid"], type(e).__name__, e))
        scan.save(skip=failed_tokens)
    _recheck_completed(ctx, tolerance)
    # Chains that accept payments but have nothing pending: still record their head, so
    # /health shows whether cron reaches every provider it will need.
    for chain_id in sorted(c for c in _token_chains(ctx) - {int(r["chain_id"]) for r in rows} if ctx.serves(c)):
        try:
            ctx.head(chain_id)
        except Exception as e:
            ctx.error("poll", "chain %d: %s" % (chain_id, e))


# ERC-20 payments are found through the tokens' Transfer logs rather than one balanceOf
# per escrow: each run asks eth_getLogs for every Transfer of each token (those of the
# PENDING escrows and every active accepted token of the chain) in the blocks after the
# last one scanned up to the confirmed block, and matches the recipients here, so the
# provider is asked once per token and range whatever the number of escrows.
# token_log_scans keeps, per chain and token, the newest block scanned and its hash.
# balanceOf is read at the confirmed block only for the escrows that matter: those a log
# names, those holding part of a payment already (read every run, so a partial payment
# reorganised away is seen), and those of orders that have had an intent (a payment that
# arrived while one was open is not lost). The balance, never a log's value, is what
# counts, so tokens whose logs differ from what they move (fee-on-transfer, a false
# return) are judged as before. Every other escrow of the token holds what it held.
#
# A stored hash that differs from the chain's block of that number means a
# reorganisation reached blocks already scanned: the scan goes back LOG_REORG_WINDOW
# blocks. Without a scan row (a token's first escrows, a database from before), when more
# than LOG_SCAN_MAX_GAP blocks are to be scanned (cron stopped for long), or when the node
# refuses the logs, every escrow of the token is read with balanceOf, as every run once
# did, and the scan goes on from the confirmed block.
LOG_BLOCK_RANGE = 2000          # blocks per eth_getLogs request (providers cap ranges)
LOG_SCAN_MAX_GAP = 20000        # beyond this many blocks, read every balance instead
LOG_REORG_WINDOW = 128          # blocks scanned again after a reorganisation

ESCROWS_WITH_INTENTS_SQL = ("SELECT DISTINCT i.transaction_uuid FROM evm_transactions e "
                            "JOIN transaction_intents i ON i.transaction_uuid = e.transaction_uuid "
                            "WHERE e.closed_at IS NULL")


class _PaymentScan:
    """The confirmed balances of one chain's PENDING escrows for one run.

    balances: {escrow: balance read at the confirmed block}; unchanged: escrows of tokens
    whose logs show nothing sent to them since their balance was last read (it still is
    their received_amount, 0). ctx.transfers_to[chain_id][token] is the set of addresses
    (lower-case) the token's logs name in the blocks scanned this run, for reconcile; a
    token read in full has none. save() records how far each token's logs were scanned,
    once its balances have been applied.
    """

    def __init__(self, ctx, chain_id, rows):
        self.ctx, self.chain_id = ctx, int(chain_id)
        self.rpc = rpc = ctx.rpc(chain_id)
        self.block = ctx.confirmed_block(chain_id, rpc)
        self.balances, self.unchanged, self._scanned = {}, set(), {}
        self.seen = ctx.transfers_to.setdefault(self.chain_id, {})
        by_token, contracts = {}, {}
        for r in rows:
            key = (r["token_contract"] or "").lower()
            by_token.setdefault(key, []).append(r)
            contracts.setdefault(key, r["token_contract"])
        native = by_token.pop("", [])
        if native:
            self.balances.update(rpc.get_balances([r["escrow_address"] for r in native], self.block))
        for t in ctx.db.query("SELECT contract_address FROM accepted_tokens WHERE chain_id = ? AND status = 'active' "
                              "AND contract_address IS NOT NULL AND contract_address <> ''", (self.chain_id,)):
            key = t["contract_address"].lower()
            by_token.setdefault(key, [])
            contracts.setdefault(key, t["contract_address"])
        if not by_token:
            return
        states = {r["token_contract"]: r for r in ctx.db.query(
            "SELECT token_contract, scanned_block, scanned_hash FROM token_log_scans WHERE chain_id = ?",
            (self.chain_id,))}
        # The hashes of the blocks scanned last time and of the confirmed block, asked
        # before the logs: a reorganisation in between shows as a mismatch next run.
        numbers = sorted({int(s["scanned_block"]) for t, s in states.items() if t in by_token} | {self.block})
        blocks = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        hashes = {n: (b or {}).get("hash") for n, b in zip(numbers, blocks)}
        if not hashes[self.block]:
            raise RpcError("the node has no block %d" % self.block)
        with_intents = {r["transaction_uuid"] for r in ctx.db.query(ESCROWS_WITH_INTENTS_SQL)} \
            if any(by_token.values()) else set()
        for token, token_rows in sorted(by_token.items()):
            try:
                self._token(token, contracts[token], token_rows, states.get(token), hashes, with_intents)
            except RpcTransportError:
                raise
            except RpcError as e:
                ctx.error("poll", "token %s: %s" % (contracts[token], e))

    def _token(self, token, contract, rows, state, hashes, with_intents):
        ctx, rpc = self.ctx, self.rpc
        addrs = [r["escrow_address"] for r in rows]
        start = None
        if state is not None:
            scanned = int(state["scanned_block"])
            if hashes.get(scanned) == state["scanned_hash"]:
                start = scanned + 1
            else:
                start = max(scanned - LOG_REORG_WINDOW + 1, 0)
                ctx.count("poll", "log_rescans")
                ctx.log("chain %d token %s: block %d was reorganised; scanning from block %d again"
                        % (self.chain_id, contract, scanned, start))
            if self.block - start + 1 > LOG_SCAN_MAX_GAP:
                start = None
        named = None
        if start is not None:
            try:
                named = {to for to, _value, _block in
                         rpc.erc20_transfers(contract, start, self.block, block_range=LOG_BLOCK_RANGE)}
            except RpcTransportError:
                raise
            except RpcError as e:
                ctx.log("chain %d token %s: logs refused (%s); reading every balance" % (self.chain_id, contract, e))
        if named is None:
            read = addrs
            if addrs:
                ctx.count("poll", "balance_scans")
        else:
            read = [r["escrow_address"] for r in rows
                    if r["escrow_address"].lower() in named or int(r["received_amount"] or 0) > 0
                    or r["transaction_uuid"] in with_intents]
        if read:
            self.balances.update(rpc.erc20_balances(contract, read, self.block))
        self.unchanged.update(set(addrs) - set(read))
        if rows:
            ctx.count("poll", "token_balances_read", len(read))
        if named is not None:
            self.seen[token] = named
        self._scanned[token] = (self.block, hashes[self.block])

    def save(self, skip=()):
        """Record the scans of the tokens whose balances were all applied (not those in skip)."""
        for token, (block, block_hash) in self._scanned.items():
            if token in skip:
                self.seen.pop(token, None)
                continue
            self.ctx.db.upsert("token_log_scans", {"chain_id": self.chain_id, "token_contract": token},
                               {"scanned_block": block, "scanned_hash": block_hash, "updated_at": utc_now()})


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
        lock_order(db, uuid)
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
        webhooks.order_event(db, "order.paid" if paid else "order.partially_paid" if received > 0 else None, uuid)



# A payment counted and then taken away by a reorganisation of the chain (
# point 4): open COMPLETED orders that nothing has been paid from yet, and whose
# COMPLETED row is younger than REORG_RECHECK_SECONDS (no reorg on these chains reaches
# deeper than that; the window keeps the cost to the orders paid in the last day), have
# their confirmed balance read again on every run, batched like the PENDING poll.
REORG_RECHECK_SECONDS = 24 * 3600

RECHECK_SQL = ("SELECT e.transaction_uuid, e.chain_id, e.token_contract, e.decimals, e.required_amount, "
               "e.received_amount, e.escrow_address, s.id AS status_id "
               + OPEN_ORDERS_FROM + " AND COALESCE(s.status, 'PENDING') = 'COMPLETED' AND s.time >= ? "
               "AND e.escrow_address IS NOT NULL "
               "AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.transaction_uuid = e.transaction_uuid)")


def _recheck_completed(ctx, tolerance):
    """Return recently COMPLETED orders whose payment is no longer confirmed to PENDING.

    Orders polled as PENDING in this run were just read at the same block and are
    skipped, and so are orders whose intent cron is executing (processing) or staff
    hold (needs_attention): their funds are already being moved or decided on.
    """
    db = ctx.db
    since = (datetime.datetime.now(datetime.timezone.utc)
             - datetime.timedelta(seconds=REORG_RECHECK_SECONDS)).strftime("%Y-%m-%d %H:%M:%S")
    held = {r["transaction_uuid"] for r in db.query(
        "SELECT transaction_uuid FROM transaction_intents WHERE open_key IS NOT NULL AND status <> 'pending'")}
    rows = [r for r in ctx.served(db.query(RECHECK_SQL, (since,)))
            if r["transaction_uuid"] not in ctx.polled and r["transaction_uuid"] not in held]
    if not rows:
        return
    for _chain_id, _rpc, _block, chain_rows, balances in balances_by_chain(ctx, rows, "escrow_address", "poll"):
        ctx.count("poll", "rechecked", len(chain_rows))
        for r in chain_rows:
            if r["escrow_address"] not in balances:
                continue
            received = balances[r["escrow_address"]]
            if is_paid(received, int(r["required_amount"]), tolerance):
                continue
            try:
                _payment_reorged(ctx, r, received)
            except Exception as e:
                ctx.error("poll", "order %s: %s: %s" % (r["transaction_uuid"], type(e).__name__, e))


def _payment_reorged(ctx, r, received):
    """One transaction: a PENDING row saying why, the balance, and a pending intent failed."""
    from lib import intents
    db = ctx.db
    uuid = r["transaction_uuid"]
    before = int(r["received_amount"] or 0)
    with db.transaction():
        lock_order(db, uuid)
        cur = sm.current_status(db, uuid)
        if cur is None or cur["status"] != sm.COMPLETED or int(cur["id"]) != int(r["status_id"]):
            return
        if db.value("SELECT 1 FROM payouts WHERE transaction_uuid = ?", (uuid,)) is not None:
            return
        intent = db.one("SELECT * FROM transaction_intents WHERE open_key = ? FOR UPDATE", (uuid,))
        if intent is not None and intent["status"] != intents.PENDING:
            return          # cron is moving the funds, or staff hold them: not ours to undo
        why = ("payment no longer on chain (chain reorganisation): %s of %s confirmed, %s was counted"
               % (fmt_units(received, r["decimals"]), fmt_units(r["required_amount"], r["decimals"]),
                  fmt_units(before, r["decimals"])))
        sm.append_status(db, uuid, sm.PENDING, str(received), comment=why)
        db.execute("UPDATE evm_transactions SET received_amount = ? WHERE transaction_uuid = ?",
                   (str(received), uuid))
        db.execute("UPDATE transactions SET updated_at = ? WHERE uuid = ?", (utc_now(), uuid))
        if intent is not None:
            intents.finish(db, intents.ORDERS, intent, intents.FAILED,
                           "the order is PENDING again: " + why)
    ctx.count("poll", "reorged")
    ctx.log("order %s: %s" % (uuid, why))

# -- duty 3: expire old PENDING orders -----------------------------------------------------

def _auto_intent_failed(db, uuid, action):
    """A cron-opened intent of this kind was closed as failed (by staff, or superseded by
    a freeze): staff decide now, cron does not open it again."""
    return db.value("SELECT 1 FROM transaction_intents WHERE transaction_uuid = ? AND action = ? "
                    "AND requested_by IS NULL AND status = 'failed'", (uuid, action)) is not None


def _open_auto_intent(ctx, task, uuid, action, why):
    if _auto_intent_failed(ctx.db, uuid, action):
        ctx.count(task, "waiting_for_staff")
        return
    try:
        intents.open_intent(ctx.db, uuid, action, None)
        ctx.count(task, action.lower())
        ctx.log("order %s: %s (%s)" % (uuid, action, why))
    except intents.IntentConflict:
        pass


def expire_pending(ctx):
    db = ctx.db
    limit = config.duration(db, "pending_duration")
    # Stamps are UTC 'YYYY-MM-DD HH:MM:SS', so they compare as text.
    cutoff = (datetime.datetime.now(datetime.timezone.utc)
              - datetime.timedelta(seconds=limit)).strftime("%Y-%m-%d %H:%M:%S")
    rows = ctx.served(db.query(EXPIRE_SQL, (cutoff,)))
    busy = open_intent_orders(db)
    for r in rows:
        if r["transaction_uuid"] in busy:
            continue
        if r["transaction_uuid"] not in ctx.polled:
            ctx.count("expire", "skipped_unpolled")   # never fail an order on a stale balance
            continue
        uuid = r["transaction_uuid"]
        try:
            if int(r["received_amount"] or 0) == 0:
                # Decided on what the transaction sees under the order's lock: another
                # host's poll may have counted a payment, or a buyer opened an intent,
                # since the rows above were read.
                with db.transaction():
                    fresh = lock_order(db, uuid)
                    cur = sm.current_status(db, uuid)
                    if (cur and cur["status"] == sm.PENDING and int(fresh["received_amount"] or 0) == 0
                            and db.value("SELECT 1 FROM transaction_intents WHERE open_key = ?", (uuid,)) is None):
                        sm.append_status(db, uuid, sm.FAILED, "0", comment="no payment within pending_duration")
                        webhooks.order_event(db, "order.failed", uuid)
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
        try:
            completed_age = age_seconds(r["updated_at"])
            if uuid in busy:
                if completed_age > stuck_limit:
                    _freeze_over_failing_release(ctx, uuid)
                continue
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


def _freeze_over_failing_release(ctx, uuid):
    """An auto-release that keeps failing (needs attention, or still retrying, and nothing
    signed) does not keep a paid order from the stuck_duration freeze: the freeze
    supersedes it, in one transaction, and staff decide the frozen order."""
    db = ctx.db
    with db.transaction():
        lock_order(db, uuid)
        intent = db.one("SELECT * FROM transaction_intents WHERE open_key = ? FOR UPDATE", (uuid,))
        if (intent is None or intent["requested_by"] is not None or intent["action"] != sm.RELEASE
                or intent["status"] not in (intents.PENDING, intents.NEEDS_ATTENTION)
                or db.value("SELECT 1 FROM payouts WHERE intent_uuid = ?", (intent["uuid"],)) is not None):
            return
        cur = sm.current_status(db, uuid)
        if not cur or cur["status"] != sm.COMPLETED:
            return
        intents.finish(db, intents.ORDERS, intent, intents.FAILED,
                       "superseded: the order was frozen after stuck_duration (%s)" % (intent["error"] or "failing"))
        sm.append_status(db, uuid, sm.FROZEN, cur["amount"],
                         comment="stuck: paid longer than stuck_duration ago; the automatic release kept failing")
        db.execute("UPDATE transactions SET updated_at = ? WHERE uuid = ?", (utc_now(), uuid))
        ctx.count("timeouts", "frozen")


def _freeze(ctx, uuid, why):
    db = ctx.db
    with db.transaction():
        lock_order(db, uuid)
        cur = sm.current_status(db, uuid)
        if cur and cur["status"] == sm.COMPLETED:
            sm.append_status(db, uuid, sm.FROZEN, cur["amount"], comment=why)
            db.execute("UPDATE transactions SET updated_at = ? WHERE uuid = ?", (utc_now(), uuid))
            ctx.count("timeouts", "frozen")


# -- duty 7: reconcile late payments and money in the wrong place -------------------------

RECONCILE_RECENT_SECONDS = 7 * 86400
RECONCILE_SLOTS = 60

# Late ERC-20 amounts are refunded automatically only when worth at least this many
# times the refund's gas (see reconcile()); below that, or with no price, they are flagged.
LATE_REFUND_MIN_GAS_MULTIPLE = 3
LATE_REFUND_TOPUP_GAS = 21000          # the gas station's top-up of the escrow
LATE_REFUND_TOKEN_GAS = 100000         # the escrow's token transfer to the buyer
NATIVE_DUST_GAS = 21000                # native: below 2 x this x gas price is dust

# Flags about funds sitting in an escrow (lib/intents.rescue accepts these kinds).
FUNDS_FLAG_KINDS = ("wrong_asset", "late_funds", "dust")

_RECONCILE_COLUMNS = ("e.id, e.transaction_uuid, e.chain_id, e.currency, e.token_contract, e.decimals, "
                      "e.escrow_address, e.refund_address, e.retained_amount, e.retained_native")

# Closed orders: reached FAILED / RELEASED / CANCELLED recently, or in this run's slot.
RECONCILE_CLOSED_SQL = ("SELECT s.status, t.buyer_uuid, " + _RECONCILE_COLUMNS + " "
                        "FROM transaction_statuses s "
                        "JOIN evm_transactions e ON e.transaction_uuid = s.transaction_uuid "
                        "JOIN transactions t ON t.uuid = s.transaction_uuid "
                        "WHERE s.status IN ('FAILED', 'RELEASED', 'CANCELLED') AND e.escrow_address IS NOT NULL "
                        "AND (s.time >= ? OR (e.id % ?) = ?)")

# Open orders (PENDING / COMPLETED / FROZEN): current status row recent, or in the slot.
RECONCILE_OPEN_SQL = ("SELECT COALESCE(s.status, 'PENDING') AS status, NULL AS buyer_uuid, " + _RECONCILE_COLUMNS
                      + " " + OPEN_ORDERS_FROM + " AND e.escrow_address IS NOT NULL "
                      "AND (s.time IS NULL OR s.time >= ? OR (e.id % ?) = ?)")


def reconcile(ctx):
    """Duty 7: funds in an escrow that no order expects.

    Which escrows: those of closed orders that reached FAILED / RELEASED / CANCELLED within
    the last 7 days, and of open orders (PENDING / COMPLETED / FROZEN) whose current status
    is that recent, on every run; all older ones in a rotation, 1/60 of them per run (each
    about once an hour with a one-minute crontab). Orders with an open intent are left to
    it. Balances are read at the confirmed block, batched per asset and chain; another
    accepted token in an open escrow outside the rotation is read only when this run's
    Transfer log scan named the escrow (see _escrow_holdings).

    What is expected is not late: `evm_transactions.retained_amount` (the order's asset)
    and `retained_native` (native coin of a token order) are what the payout engine left
    in a closed escrow on purpose; only the balance above them counts.

    - Late funds (the order's own asset in a closed escrow) go back to the buyer with a
      LATE_REFUND intent, or are flagged 'late_funds' when no refund address is known.
      Native coin below 2 x 21000 x gas price is ignored (it would not pay its own refund).
    - Dust threshold: a late ERC-20 amount is refunded automatically
      only when its USD value is at least LATE_REFUND_MIN_GAS_MULTIPLE (3) times the USD
      cost of the refund's gas: (21000 for the gas station's top-up + 100000 for the token
      transfer) x the node's gas price (eth_gasPrice), valued at the native coin's price.
      Prices are the token's `manual_usd_price` or its `prices` row (no older than
      price_max_age). Below the threshold, or with either price unknown, the amount is
      flagged 'dust' and never refunded automatically, so dust sent to public escrow
      addresses cannot drain the gas station; staff may still `rescue` it.
    - Wrong asset: native coin in an ERC-20 escrow (above retained_native and the native
      dust rule), and any other active accepted token held by an escrow, open or closed,
      are flagged 'wrong_asset' with the exact amount, never refunded automatically:
      staff use the `rescue` action (lib/intents.rescue).

    Each flag is raised once per (order, asset, amount) while unresolved; a new amount of
    the same asset raises a new flag and resolves the older one as superseded.
    """
    db = ctx.db
    slot = int(time.time() // 60) % RECONCILE_SLOTS
    recent = (datetime.datetime.now(datetime.timezone.utc)
              - datetime.timedelta(seconds=RECONCILE_RECENT_SECONDS)).strftime("%Y-%m-%d %H:%M:%S")
    args = (recent, RECONCILE_SLOTS, slot)
    busy = open_intent_orders(db)
    rows, seen = [], set()
    for closed, sql in ((True, RECONCILE_CLOSED_SQL), (False, RECONCILE_OPEN_SQL)):
        for r in ctx.served(db.query(sql, args)):
            if r["transaction_uuid"] in busy or r["transaction_uuid"] in seen:
                continue
            seen.add(r["transaction_uuid"])
            r["closed"] = closed
            rows.append(r)
    by_chain = {}
    for r in rows:
        by_chain.setdefault(int(r["chain_id"]), []).append(r)
    for chain_id, chain_rows in sorted(by_chain.items()):
        try:
            tokens = _chain_tokens(db, chain_id)
            rpc = ctx.rpc(chain_id)
            block = ctx.confirmed_block(chain_id, rpc)
            holdings = _escrow_holdings(ctx, rpc, block, chain_rows, tokens, slot)
            min_native = 2 * NATIVE_DUST_GAS * _native_dust_gas_price(ctx, rpc)
        except Exception as e:
            ctx.error("reconcile", "chain %d: %s" % (chain_id, e))
            continue
        ctx.count("reconcile", "checked", len(chain_rows))
        worth = _RefundWorth(ctx, rpc, chain_id, tokens)
        for r in chain_rows:
            try:
                _check_escrow(ctx, r, holdings.get(r["escrow_address"], {}), block, min_native, worth)
            except Exception as e:
                ctx.error("reconcile", "order %s: %s: %s" % (r["transaction_uuid"], type(e).__name__, e))


def _native_dust_gas_price(ctx, rpc):
    """The gas price of the native dust rule: the payout engine's (node's price + margin)."""
    from cron import payouts
    return payouts.gas_price_for(ctx, rpc)


def _chain_tokens(db, chain_id):
    """The accepted_tokens rows of a chain, any status (the dust rule needs their prices)."""
    return db.query("SELECT id, chain_id, symbol, contract_address, decimals, status, manual_usd_price "
                    "FROM accepted_tokens WHERE chain_id = ? ORDER BY id", (int(chain_id),))


def _escrow_holdings(ctx, rpc, block, rows, tokens, slot):
    """{escrow: {asset key: (contract, balance)}} of what reconcile looks at, batched per asset.

    Asset key: '' for the native coin, else the lower-cased contract. Read: the order's own
    asset (closed orders), the native coin (token orders), every other active accepted
    token of the chain (all orders). A token whose Transfer logs the poll scanned in this
    run (ctx.transfers_to) is read for an open order outside the rotation slot only when
    its logs named the escrow: nothing else can have changed there; the rotation still
    reads every open escrow in full about once an hour. A token that cannot be read is
    recorded as an error and left out; transport failures raise (nothing of the chain can
    be read then).
    """
    active = [t["contract_address"] for t in tokens if t["status"] == "active" and t["contract_address"]]
    seen = ctx.transfers_to.get(int(rows[0]["chain_id"]), {}) if rows else {}
    wanted = {}         # key -> (contract, [escrow addresses])
    for r in rows:
        own = r["token_contract"] or ""
        assets = {own.lower(): own} if r["closed"] else {}
        if own:
            assets[""] = ""
        in_slot = r["closed"] or int(r["id"]) % RECONCILE_SLOTS == slot
        for contract in active:
            key = contract.lower()
            if key == own.lower() or (not in_slot and key in seen and r["escrow_address"].lower() not in seen[key]):
                continue
            assets.setdefault(key, contract)
        for key, contract in assets.items():
            wanted.setdefault(key, (contract, []))[1].append(r["escrow_address"])
    out = {}
    for key, (contract, addrs) in sorted(wanted.items()):
        if not key:
            balances = rpc.get_balances(addrs, block)
        else:
            try:
                balances = rpc.erc20_balances(contract, addrs, block)
            except RpcTransportError:
                raise
            except RpcError as e:
                ctx.error("reconcile", "token %s: %s" % (contract, e))
                continue
        for addr, balance in balances.items():
            out.setdefault(addr, {})[key] = (contract, int(balance))
    return out


def _check_escrow(ctx, r, held, block, min_native, worth):
    """Late funds, dust and wrong assets of one escrow (held: _escrow_holdings' entry)."""
    db = ctx.db
    if not any(balance > 0 for _contract, balance in held.values()):
        return
    uuid = r["transaction_uuid"]
    # A payout still in flight, or confirmed after the block we read, explains the balance.
    if db.value("SELECT 1 FROM payouts WHERE transaction_uuid = ? AND (status IN ('signed', 'broadcast') "
                "OR block_number >= ?)", (uuid, block)) is not None:
        return
    own = (r["token_contract"] or "").lower()
    for key, (contract, balance) in sorted(held.items()):
        if key == own:
            if not r["closed"]:
                continue                    # the poll and the payout engine own this balance
            amount = balance - int(r["retained_amount"] or 0)
            if amount <= 0 or (not own and amount < min_native):
                continue                    # retained on purpose, or native dust
            if own:
                ok, why = worth.refundable(r, amount)
                if not ok:
                    _flag_funds(ctx, r, "dust", contract, amount,
                                "dust: %s %s late in the escrow of a %s order, %s; not refunded automatically"
                                % (fmt_units(amount, r["decimals"]), r["currency"], r["status"], why))
                    continue
            _late_funds(ctx, r, amount, block)
        elif not key:
            amount = balance - int(r["retained_native"] or 0)
            if amount <= 0 or amount < min_native:
                continue
            _flag_funds(ctx, r, "wrong_asset", "", amount,
                        "wrong asset: %s %s (%d wei) in the %s escrow of a %s order; not refunded "
                        "automatically (staff may rescue it to the buyer)"
                        % (fmt_units(amount, worth.native_decimals), worth.native_symbol, amount,
                           r["currency"], r["status"]))
        elif balance > 0:
            token = worth.token(contract)
            _flag_funds(ctx, r, "wrong_asset", contract, balance,
                        "wrong asset: %s %s (%d base units of %s) in the %s escrow of a %s order; not "
                        "refunded automatically (staff may rescue it to the buyer)"
                        % (fmt_units(balance, token["decimals"] or 0), token["symbol"], balance, contract,
                           r["currency"], r["status"]))


def _late_funds(ctx, r, amount, block):
    """The order's own asset arrived after it closed: refund it (LATE_REFUND) or flag it."""
    from lib import intents
    db = ctx.db
    uuid = r["transaction_uuid"]
    asset = r["token_contract"] or ""
    has_refund = bool(r["refund_address"]) or bool(
        db.value("SELECT refund_address FROM users WHERE uuid = ?", (r["buyer_uuid"],)))
    if has_refund and not _auto_intent_failed(db, uuid, intents.LATE_REFUND):
        try:
            with db.transaction():
                intent = intents.open_intent(db, uuid, intents.LATE_REFUND, None, asset=asset)
                # Earlier flags of this asset (dust at a stale price, no refund address then)
                # are covered by the refund of the whole balance.
                for f in _open_funds_flags(db, uuid, asset):
                    intents.resolve_flags(db, None, "refunded automatically: LATE_REFUND intent %s"
                                          % intent["uuid"], flag_id=f["id"])
        except intents.IntentConflict:
            return
        ctx.count("reconcile", "late_refunds")
        ctx.log("order %s (%s): %s late funds found; refund queued"
                % (uuid, r["status"], fmt_units(amount, r["decimals"])))
        return
    reason = ("late payment of %s base units to the escrow of a %s order and no refund address"
              % (amount, r["status"])) if not has_refund else (
              "late payment of %s base units to the escrow of a %s order; the refund failed" % (amount, r["status"]))
    _flag_funds(ctx, r, "late_funds", asset, amount, reason)


def _open_funds_flags(db, uuid, asset):
    return db.query("SELECT id, amount, kind FROM staff_flags WHERE transaction_uuid = ? AND resolved_at IS NULL "
                    "AND COALESCE(token_contract, '') = ? ORDER BY id", (uuid, asset))


def _flag_funds(ctx, r, kind, asset, amount, reason):
    """A staff flag for `amount` of `asset` in the order's escrow, once while unresolved.

    An unresolved flag of the same order, asset and amount (any kind) means staff already
    know. Older unresolved funds flags of that asset describe a balance that has changed
    since: they are resolved as superseded by the new one (a rescue moves the whole
    balance anyway).
    """
    from lib import intents
    db = ctx.db
    uuid = r["transaction_uuid"]
    with db.transaction():
        existing = _open_funds_flags(db, uuid, asset)
        if any(f["amount"] == str(amount) for f in existing):
            return
        flag_id = intents.flag(db, reason, kind, transaction_uuid=uuid, amount=amount, chain_id=int(r["chain_id"]),
                               address=r["escrow_address"], token_contract=asset)
        for f in existing:
            if f["kind"] in FUNDS_FLAG_KINDS:
                intents.resolve_flags(db, None, "superseded by flag %d (the balance is now %s)" % (flag_id, amount),
                                      flag_id=f["id"])
    ctx.count("reconcile", "flagged")
    ctx.count("reconcile", kind)
    ctx.log("order %s: flagged %s: %s" % (uuid, kind, reason))


class _RefundWorth:
    """Whether a late ERC-20 amount is worth its refund's gas (the dust threshold), per chain.

    The gas price is asked of the node once per run and chain, and only when needed.
    """

    def __init__(self, ctx, rpc, chain_id, tokens):
        from lib import chains
        self.ctx, self.rpc, self.chain_id = ctx, rpc, int(chain_id)
        self.tokens = {(t["contract_address"] or "").lower(): t for t in tokens}
        try:
            chain = chains.get_chain(self.chain_id)
            self.native_symbol, self.native_decimals = chain.native_symbol, int(chain.native_decimals)
        except Exception:
            self.native_symbol, self.native_decimals = "native coin", 18
        self._gas_price = None

    def token(self, contract, symbol=None, decimals=None):
        """The accepted_tokens row of `contract` ('' native), or a stand-in with what is known."""
        row = self.tokens.get((contract or "").lower())
        if row is not None:
            return row
        if not contract:
            return {"chain_id": self.chain_id, "symbol": self.native_symbol, "contract_address": "",
                    "decimals": self.native_decimals, "manual_usd_price": None}
        return {"chain_id": self.chain_id, "symbol": symbol or contract, "contract_address": contract,
                "decimals": decimals, "manual_usd_price": None}

    def usd_rate(self, token):
        """Fraction USD per whole token, or None when no usable price is known."""
        from lib import pricing
        try:
            rate = Fraction(Decimal(pricing.usd_rate(self.ctx.db, token)[0]))
        except Exception:       # HttpError 409: missing, stale or unusable
            return None
        return rate if rate and rate > 0 else None

    def gas_price(self):
        if self._gas_price is None:
            self._gas_price = int(self.rpc.gas_price())
        return self._gas_price

    def refundable(self, r, amount):
        """(True, '') when worth refunding automatically, else (False, why not)."""
        token = self.token(r["token_contract"], r["currency"], r["decimals"])
        rate = self.usd_rate(token)
        if rate is None:
            return False, "no USD price of %s known" % token["symbol"]
        native_rate = self.usd_rate(self.token(""))
        if native_rate is None:
            return False, "no USD price of %s known to value the refund's gas" % self.native_symbol
        value = Fraction(int(amount), 10 ** int(r["decimals"])) * rate
        gas = (LATE_REFUND_TOPUP_GAS + LATE_REFUND_TOKEN_GAS) * self.gas_price()
        cost = Fraction(gas, 10 ** self.native_decimals) * native_rate
        if value >= LATE_REFUND_MIN_GAS_MULTIPLE * cost:
            return True, ""
        return False, ("worth $%s, under %d x the refund's gas ($%s)"
                       % (_usd(value), LATE_REFUND_MIN_GAS_MULTIPLE, _usd(cost)))


def _usd(value):
    """A Fraction of dollars as text, rounded down to a millionth (display only)."""
    return fmt_units(int(value * 10 ** 6), 6)

