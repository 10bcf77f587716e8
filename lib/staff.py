"""Staff tools: marketplace statistics, moderation of users (ban by staff), and the
payout engine's operator view: intents needing attention with their legs,
open staff flags, and per-chain figures for /staff/, /staff/payouts.php,
GET /api/payout-actions.php and /health.php.

Stores are suspended through lib.catalog.set_store_suspended and disputes resolved
through lib.disputes.resolve; payouts are recovered through lib.intents.staff_action
and lib.intents.rescue; this module adds what none of them covers.
"""
from lib import chains, intents, roles, status_machine, users
from lib.http import BadRequest, Forbidden
from lib.pricing import format_amount
from lib.roles import STAFF_ROLES  # noqa: F401 (staff.STAFF_ROLES: pages use the name)


def ban_refusal(actor, target):
    """None if `actor` may ban or unban `target`, else (status, message). The one rule for
    the POST and for which rows of /staff/users.php get a Ban button. Staff may ban
    customers and vendors; only an admin may ban staff; nobody bans an admin here (admins
    use /admin/users.php) or themselves."""
    if not roles.is_staff(actor):
        return 403, "staff only"
    if target["uuid"] == actor["uuid"]:
        return 409, "you cannot ban yourself"
    if target["role"] == "admin" or (target["role"] == "staff" and actor["role"] != "admin"):
        return 403, f"staff cannot ban {target['role']} accounts"
    return None


def may_ban(actor, target):
    return ban_refusal(actor, target) is None


def set_banned(db, actor, target_uuid, banned, ip=None):
    """Staff ban or unban a user (rules: ban_refusal). 403/404/409 as appropriate.
    Returns the user dict."""
    if not roles.is_staff(actor):
        raise Forbidden("staff only")
    target = users.acted_on(db, actor, target_uuid, ban_refusal)
    return users.set_banned(db, target["uuid"], bool(banned), actor["uuid"], ip)


def search_text(q):
    """The user search text of a staff page: at most 16 characters (400 otherwise)."""
    if q is not None and len(q) > 16:
        raise BadRequest("the search text is longer than 16 characters", fields={"q": "at most 16 characters"})
    return q


def list_users(db, q=None, limit=50, offset=0):
    return users.list_users(db, limit, offset, search_text(q) or None)


RESCUABLE_FLAGS = ("wrong_asset", "late_funds", "dust")   # the kinds lib.intents.rescue accepts


def list_open_flags(db, limit=50):
    """Open staff flags, newest first: what cron found where staff must decide (a failed
    payout leg, a refused intent, funds in the wrong asset, late or dust funds ...).

    Each row: id, kind, reason, transaction_uuid, intent_uuid, chain_id, address,
    token_contract ('' = the native coin), amount (token units, or None when the asset's
    decimals are unknown), amount_base_units, decimals, asset (symbol or contract),
    created_at, rescuable (a Rescue button applies), rescue_intent_uuid (an open RESCUE
    intent opened from this flag, if any).
    """
    rows = db.query("SELECT id, kind, reason, transaction_uuid, intent_uuid, chain_id, address, token_contract, "
                    "amount, created_at FROM staff_flags WHERE resolved_at IS NULL ORDER BY id DESC LIMIT ?",
                    (int(limit),))
    if not rows:
        return rows
    rescues = {}
    for r in db.query("SELECT uuid, flag_id FROM transaction_intents WHERE status IN (?, ?, ?) "
                      "AND flag_id IS NOT NULL", intents.OPEN):
        rescues[int(r["flag_id"])] = r["uuid"]
    assets = _Assets(db)
    for row in rows:
        order = assets.order(row["transaction_uuid"]) if row["transaction_uuid"] else None
        chain_id = row["chain_id"] if row["chain_id"] is not None else (order or {}).get("chain_id")
        row["chain_id"] = int(chain_id) if chain_id is not None else None
        contract = row["token_contract"]
        if contract is None and order is not None and row["kind"] in (None, "late_funds", "dust"):
            contract = order["token_contract"]      # older flags name no asset
        symbol, decimals = assets.describe(row["chain_id"], contract, order)
        row["asset"] = symbol
        row["decimals"] = decimals
        row["amount_base_units"] = row["amount"]
        row["amount"] = _units(row["amount"], decimals)
        row["rescuable"] = bool(row["kind"] in RESCUABLE_FLAGS and row["transaction_uuid"])
        row["rescue_intent_uuid"] = rescues.get(int(row["id"]))
    return rows


def stats(db):
    """Counts for the staff dashboard."""
    def count(sql, params=()):
        return int(db.value(sql, params, default=0) or 0)

    by_status = status_machine.count_by_status(db)
    by_role = {r["role"]: int(r["n"]) for r in db.query("SELECT role, COUNT(*) AS n FROM users GROUP BY role")}
    last_run = db.one("SELECT started_at, finished_at, ok, errors FROM cron_runs ORDER BY id DESC LIMIT 1")
    return {
        "orders": sum(by_status.values()), "orders_by_status": by_status,
        "users": sum(by_role.values()), "users_by_role": by_role,
        "banned_users": count("SELECT COUNT(*) FROM users WHERE banned = 1"),
        "stores": count("SELECT COUNT(*) FROM stores"),
        "suspended_stores": count("SELECT COUNT(*) FROM stores WHERE suspended = 1"),
        "items": count("SELECT COUNT(*) FROM items WHERE active = 1"),
        "open_disputes": count("SELECT COUNT(*) FROM disputes WHERE status = 'open'"),
        "open_intents": count("SELECT COUNT(*) FROM transaction_intents WHERE status IN ('pending', 'processing')"),
        "failed_intents": count("SELECT COUNT(*) FROM transaction_intents WHERE status = 'failed'"),
        "open_flags": count("SELECT COUNT(*) FROM staff_flags WHERE resolved_at IS NULL"),
        "last_cron_run": last_run,
    }


# -- payouts: the operator's view ------------------------------------------

def _int(value):
    """A cron-written whole number (int or decimal string) as an int, None if absent or junk."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text.startswith("-"):
        return None if not text[1:].isdigit() else -int(text[1:])
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 80 else None


def _units(base_units, decimals):
    """Base units as a decimal string of token units; None when either is unknown."""
    value = _int(base_units)
    if value is None or decimals is None:
        return None
    return format_amount(value, decimals)


def _native(chain_id):
    """(symbol, decimals) of a chain's gas coin; ('native', 18) for a chain we do not know."""
    try:
        chain = chains.get_chain(chain_id)
        return chain.native_symbol, chain.native_decimals
    except Exception:
        return "native", 18


class _Assets:
    """Looks up (and caches, for one page) what an order or deposit holds and what a
    token is: symbol and decimals, so base units can be shown as token units."""

    def __init__(self, db):
        self.db = db
        self._orders, self._deposits, self._tokens = {}, {}, {}

    def order(self, transaction_uuid):
        if transaction_uuid not in self._orders:
            self._orders[transaction_uuid] = self.db.one(
                "SELECT chain_id, currency, token_contract, decimals FROM evm_transactions "
                "WHERE transaction_uuid = ?", (transaction_uuid,))
        return self._orders[transaction_uuid]

    def deposit(self, deposit_uuid):
        if deposit_uuid not in self._deposits:
            self._deposits[deposit_uuid] = self.db.one(
                "SELECT chain_id, currency, token_contract, decimals FROM deposits WHERE uuid = ?", (deposit_uuid,))
        return self._deposits[deposit_uuid]

    def token(self, chain_id, contract):
        key = (chain_id, (contract or "").lower())
        if key not in self._tokens:
            row = None
            if chain_id is not None and contract:
                row = self.db.one("SELECT symbol, decimals FROM accepted_tokens WHERE chain_id = ? "
                                  "AND LOWER(contract_address) = ?", (int(chain_id), key[1]))
            self._tokens[key] = row
        return self._tokens[key]

    def describe(self, chain_id, contract, holding=None):
        """(symbol, decimals) of asset `contract` ('' = native) on chain_id. `holding` is
        the order's or deposit's row: its own token is known even if no longer accepted.
        A token nobody accepted (funds sent in the wrong asset): (contract, None)."""
        if contract is None:
            return None, None
        if contract == "":
            return _native(chain_id)
        if holding and (holding.get("token_contract") or "").lower() == contract.lower():
            return holding["currency"], int(holding["decimals"])
        token = self.token(chain_id, contract)
        if token and token["decimals"] is not None:
            return token["symbol"], int(token["decimals"])
        return contract, None


LEG_FIELDS = ("id", "kind", "recipient_role", "chain_id", "currency", "token_contract", "from_address",
              "to_address", "redirect_to", "nonce", "tx_hash", "status", "block_number", "block_hash",
              "replacements", "retry_of", "error", "created_at", "updated_at")


def _leg(row, assets, holding):
    out = {k: row.get(k) for k in LEG_FIELDS}
    out["replacements"] = int(row.get("replacements") or 0)
    symbol, decimals = assets.describe(row["chain_id"], row["token_contract"] or "", holding)
    out["decimals"] = decimals
    out["amount_base_units"] = str(row["amount"])
    out["amount"] = _units(row["amount"], decimals)
    native_symbol, native_decimals = _native(row["chain_id"])
    out["fee"] = _units(row.get("fee"), native_decimals)   # the network fee, in the gas coin
    out["fee_currency"] = native_symbol
    try:
        out["explorer_url"] = chains.explorer_tx_url(row["chain_id"], row["tx_hash"])
    except Exception:
        out["explorer_url"] = None
    return out


def payouts_needing_attention(db, limit=100):
    """lib.intents.needing_attention as shown to staff: each intent with its order (or
    deposit), chain, currency, the reason (`error`) and its live legs, amounts in token units.

    Intent: uuid, kind ('order' | 'withdrawal'), action, status, transaction_uuid,
    deposit_uuid, chain_id, currency, error, attempts, failures, requested_by, created_at,
    updated_at, legs (LEG_FIELDS plus amount, amount_base_units, decimals, fee,
    fee_currency, explorer_url).
    """
    assets = _Assets(db)
    out = []
    for row in intents.needing_attention(db, limit=limit):
        if row.get("transaction_uuid"):
            holding = assets.order(row["transaction_uuid"])
        else:
            holding = assets.deposit(row.get("deposit_uuid"))
        out.append({
            "uuid": row["uuid"], "kind": row["kind"], "action": row["action"], "status": row["status"],
            "transaction_uuid": row.get("transaction_uuid"), "deposit_uuid": row.get("deposit_uuid"),
            "chain_id": int(holding["chain_id"]) if holding else None,
            "currency": holding["currency"] if holding else None,
            "error": row.get("error"), "attempts": int(row.get("attempts") or 0),
            "failures": int(row.get("failures") or 0), "requested_by": row.get("requested_by"),
            "created_at": row["created_at"], "updated_at": row["updated_at"],
            "legs": [_leg(leg, assets, holding) for leg in row["legs"]],
        })
    return out


def party_intents(db, user, intent_rows):
    """The uuids of the intents whose order (or deposit's store) `user` is a party to:
    the staff page shows them without buttons (another staff member decides)."""
    mine = set()
    if not user:
        return mine
    stores = {r["store_uuid"] for r in db.query("SELECT store_uuid FROM store_users WHERE user_uuid = ?",
                                                (user["uuid"],))}
    for row in intent_rows:
        if row.get("transaction_uuid"):
            t = db.one("SELECT buyer_uuid, store_uuid FROM transactions WHERE uuid = ?", (row["transaction_uuid"],))
            if t and (t["buyer_uuid"] == user["uuid"] or t["store_uuid"] in stores):
                mine.add(row["uuid"])
        elif row.get("deposit_uuid") and stores:
            if db.value("SELECT store_uuid FROM deposits WHERE uuid = ?", (row["deposit_uuid"],)) in stores:
                mine.add(row["uuid"])
    return mine


def _refuse_party_to_withdrawal(db, user, intent_uuid):
    """lib.intents refuses a staff member who is a party to the order; a withdrawal has no
    order, so a staff member who is a member of the deposit's store is refused here."""
    if not isinstance(intent_uuid, str) or len(intent_uuid) != 36:
        return
    store = db.value("SELECT d.store_uuid FROM deposit_withdraw_intents w JOIN deposits d ON d.uuid = w.deposit_uuid "
                     "WHERE w.uuid = ?", (intent_uuid,))
    if store and db.value("SELECT 1 FROM store_users WHERE store_uuid = ? AND user_uuid = ?",
                          (store, user["uuid"])) is not None:
        raise Forbidden("you are a member of this deposit's store: another staff member or an admin decides")


def payout_action(db, user, data, ip=None):
    """One staff action on the payout engine from a request body (the API and the staff page):
    `action` = retry | redirect (`payout_id`, `to_address`) | abandon (`comment`) with
    `intent_uuid` -> lib.intents.staff_action; `action` = rescue with `flag_id` ->
    lib.intents.rescue. Returns their dict; raises their HttpError (400/403/404/409)."""
    if not roles.is_staff(user):
        raise Forbidden("only staff may act on payouts")
    action = data.get("action")
    if isinstance(action, str) and action.strip().lower() == "rescue":
        return intents.rescue(db, user, data.get("flag_id"), ip=ip)
    if isinstance(action, str) and action.strip().lower() in ("retry", "redirect", "abandon"):
        _refuse_party_to_withdrawal(db, user, data.get("intent_uuid"))
    return intents.staff_action(db, user, data.get("intent_uuid"), action, payout_id=data.get("payout_id"),
                                to_address=data.get("to_address"), comment=data.get("comment"), ip=ip)


# Per-chain figures. Every query below is one indexed range (payouts by status,
# intents by status, open flags), grouped by chain: cheap enough for /health.php.

COUNTS = ("waiting", "mined_waiting", "replaced", "failed_legs", "intents_needing_attention",
          "intents_pending_with_note", "open_flags")


def _chain_counts(db):
    """({chain_id: {count name: n}} of everything that is not in chain_heads, the number of
    open flags that name no chain (older flags, of no order))."""
    per = {}
    chainless = [0]

    def add(chain_id, name, n):
        if chain_id is None and name == "open_flags":
            chainless[0] += int(n or 0)
        if chain_id is None or not n:
            return
        entry = per.setdefault(int(chain_id), dict.fromkeys(COUNTS, 0))
        entry[name] += int(n)

    for r in db.query("SELECT chain_id, COUNT(*) AS n, "
                      "SUM(CASE WHEN block_hash IS NOT NULL THEN 1 ELSE 0 END) AS mined, "
                      "SUM(CASE WHEN replacements > 0 THEN 1 ELSE 0 END) AS replaced "
                      "FROM payouts WHERE status IN ('signed', 'broadcast') GROUP BY chain_id"):
        add(r["chain_id"], "waiting", r["n"])
        add(r["chain_id"], "mined_waiting", r["mined"])
        add(r["chain_id"], "replaced", r["replaced"])
    # failed legs that staff must decide: of an intent needing attention, not yet retried
    for table in (intents.ORDERS, intents.WITHDRAWALS):
        for r in db.query("SELECT p.chain_id, COUNT(*) AS n FROM %s i JOIN payouts p ON p.intent_uuid = i.uuid "
                          "WHERE i.status = 'needs_attention' AND p.status = 'failed' AND NOT EXISTS "
                          "(SELECT 1 FROM payouts r WHERE r.intent_uuid = p.intent_uuid AND r.retry_of = p.id) "
                          "GROUP BY p.chain_id" % table.name):
            add(r["chain_id"], "failed_legs", r["n"])
    for table, join in ((intents.ORDERS, "evm_transactions h ON h.transaction_uuid = i.transaction_uuid"),
                        (intents.WITHDRAWALS, "deposits h ON h.uuid = i.deposit_uuid")):
        for r in db.query("SELECT h.chain_id, i.status, COUNT(*) AS n FROM %s i JOIN %s "
                          "WHERE i.status IN ('needs_attention', 'pending') "
                          "AND (i.status = 'needs_attention' OR i.error IS NOT NULL) "
                          "GROUP BY h.chain_id, i.status" % (table.name, join)):
            add(r["chain_id"], "intents_needing_attention" if r["status"] == "needs_attention"
                else "intents_pending_with_note", r["n"])
    for r in db.query("SELECT COALESCE(f.chain_id, e.chain_id) AS chain_id, COUNT(*) AS n FROM staff_flags f "
                      "LEFT JOIN evm_transactions e ON e.transaction_uuid = f.transaction_uuid "
                      "WHERE f.resolved_at IS NULL GROUP BY COALESCE(f.chain_id, e.chain_id)"):
        add(r["chain_id"], "open_flags", r["n"])
    return per, chainless[0]


def payout_figures(db, heads=None):
    """The payout engine's per-chain operator figures, with totals and warnings.

    {"totals": {COUNTS: n}, "chains": [chain], "warnings": [text]}, chain =
    {chain_id, chain_name, native_symbol, head_block, seen_at, confirmations,
     gas_station_address, gas_station_balance, gas_station_min_balance (native coin units),
     gas_station_low, base_fee_gwei, max_fee_ceiling_gwei, fee_above_ceiling, COUNTS...}.
    Chains: every row of chain_heads (written by cron) and any chain with a count.
    `heads`: the chain_heads rows when the caller already read them.
    """
    if heads is None:
        heads = db.query("SELECT * FROM chain_heads ORDER BY chain_id")
    counts, chainless_flags = _chain_counts(db)
    by_chain = {int(h["chain_id"]): h for h in heads}
    out = []
    for chain_id in sorted(set(by_chain) | set(counts)):
        head = by_chain.get(chain_id, {})
        symbol, decimals = _native(chain_id)
        balance, minimum = _int(head.get("gas_station_balance")), _int(head.get("gas_station_min_balance"))
        base_fee, ceiling = _int(head.get("base_fee_per_gas")), _int(head.get("max_fee_ceiling"))
        entry = {
            "chain_id": chain_id, "chain_name": _chain_name(chain_id), "native_symbol": symbol,
            "head_block": head.get("block_number"), "seen_at": head.get("seen_at"),
            "confirmations": None if head.get("confirmations") is None else str(head["confirmations"]),
            "gas_station_address": head.get("gas_station_address") or None,
            "gas_station_balance": None if balance is None else format_amount(balance, decimals),
            "gas_station_min_balance": None if minimum is None else format_amount(minimum, decimals),
            "gas_station_low": balance is not None and minimum is not None and balance < minimum,
            "base_fee_gwei": None if base_fee is None else format_amount(base_fee, 9),
            "max_fee_ceiling_gwei": None if ceiling is None else format_amount(ceiling, 9),
            "fee_above_ceiling": base_fee is not None and ceiling is not None and base_fee > ceiling,
        }
        entry.update(counts.get(chain_id, dict.fromkeys(COUNTS, 0)))
        out.append(entry)
    totals = {name: sum(c[name] for c in out) for name in COUNTS}
    totals["open_flags"] += chainless_flags        # flags without a chain still count
    return {"totals": totals, "chains": out, "warnings": payout_warnings(out, totals)}


def _chain_name(chain_id):
    try:
        return chains.get_chain(chain_id).name
    except Exception:
        return "chain %s" % chain_id


def _plural(n, one, many):
    return "%d %s" % (n, one if n == 1 else many)


def payout_warnings(chain_rows, totals):
    """What an operator should act on, as short sentences without order ids or amounts of
    orders (they are shown by the public /health.php)."""
    out = []
    for c in chain_rows:
        where = "chain %d" % c["chain_id"]
        if c["gas_station_low"]:
            out.append("%s: gas station balance below %s %s" % (where, c["gas_station_min_balance"],
                                                                c["native_symbol"]))
        if c["fee_above_ceiling"]:
            out.append("%s: base fee above the max fee ceiling; payouts wait" % where)
        if c["intents_needing_attention"]:
            out.append("%s: %s" % (where, _plural(c["intents_needing_attention"], "intent needs staff attention",
                                                  "intents need staff attention")))
        if c["intents_pending_with_note"]:
            out.append("%s: %s" % (where, _plural(c["intents_pending_with_note"], "pending intent is held back",
                                                  "pending intents are held back")))
    if totals["open_flags"]:
        out.append(_plural(totals["open_flags"], "open staff flag", "open staff flags"))
    return out


def public_payout_figures(figures):
    """What /health.php shows of payout_figures(): counts and the gas station only."""
    keep = ("chain_id", "gas_station_address", "gas_station_balance", "gas_station_min_balance",
            "gas_station_low", "native_symbol") + COUNTS
    return {"totals": dict(figures["totals"]),
            "chains": [{k: c[k] for k in keep} for c in figures["chains"]]}
