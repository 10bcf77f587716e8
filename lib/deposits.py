"""Store deposits: an address per (store, chain, token) on the deposit branch
m/44'/60'/0'/1/i, derived by cron (address NULL until then); cron keeps `balance`
(base units) and the append-only `deposit_history`. The store owner withdraws the
balance to the store's payout address through a `deposit_withdraw_intents` row,
which cron executes; at most one withdrawal is open per deposit (UNIQUE open_key).
"""
import uuid as uuidlib

from lib import audit, catalog, intents, pricing, roles, tokens, validate
from lib.db import utc_now
from lib.http import BadRequest, Conflict, NotFound
from lib.pricing import deposit_fields as original_fields

COLUMNS = ("d.uuid, d.store_uuid, s.storename, d.chain_id, d.currency, d.token_contract, d.decimals, "
           "d.address, d.balance, d.created_by, d.created_at, d.updated_at")


def _json(db, row):
    out = {k: row[k] for k in ("uuid", "store_uuid", "storename", "chain_id", "currency", "token_contract",
                               "decimals", "address", "created_at", "updated_at")}
    out["balance"] = pricing.format_amount(int(row["balance"] or 0), row["decimals"])
    out["address_pending"] = row["address"] is None
    w = db.one("SELECT uuid, status FROM deposit_withdraw_intents WHERE open_key = ?", (row["uuid"],))
    out["open_withdrawal"] = w["uuid"] if w else None
    out.update(original_fields(db, row, out["balance"]))
    return out


def open_deposit(db, user, store_uuid, currency, chain_id):
    """A store member opens a deposit for an active token. 400 bad chain/token, 403 not a
    member, 404 no store, 409 token not active / store suspended / same deposit exists."""
    if not store_uuid:
        raise BadRequest("store_uuid is required", fields={"store_uuid": "required"})
    chain_id = tokens.parse_chain_id(1 if chain_id in (None, "") else chain_id)
    token = tokens.payable_token(db, chain_id, "ETH" if currency in (None, "") else currency)
    now = utc_now()
    row = {"uuid": str(uuidlib.uuid4()), "store_uuid": store_uuid, "chain_id": chain_id,
           "currency": token["symbol"], "token_contract": token["contract_address"],
           "decimals": token["decimals"], "address": None, "derivation_index": None, "balance": "0",
           "created_by": user["uuid"], "created_at": now, "updated_at": now}
    with db.transaction():
        # Lock the store row so two concurrent requests cannot both create the deposit.
        db.one("SELECT id FROM stores WHERE uuid = ? FOR UPDATE", (store_uuid if validate.is_uuid(store_uuid) else "",))
        catalog.require_member(db, user, store_uuid)
        if db.value("SELECT id FROM deposits WHERE store_uuid = ? AND chain_id = ? AND token_contract = ?",
                    (store_uuid, chain_id, token["contract_address"])) is not None:
            raise Conflict(f"this store already has a {token['symbol']} deposit on chain {chain_id}")
        db.insert("deposits", row)
        db.insert("deposit_history", {"deposit_uuid": row["uuid"], "time": now, "event": "opened",
                                      "balance": "0", "comment": f"opened by {user['username']}"})
        audit.log(db, "deposit_opened", user["uuid"], row["uuid"], f"{token['symbol']} chain {chain_id}")
    return get_deposit(db, user, row["uuid"])


def list_deposits(db, user, limit=50, offset=0, store_uuid=None):
    """Deposits of the stores `user` is a member of (optionally one store), newest first."""
    stores = catalog.user_store_uuids(db, user["uuid"])
    if store_uuid is not None:
        if store_uuid not in stores:
            raise NotFound("no such store")
        stores = [store_uuid]
    if not stores:
        return []
    marks = ", ".join("?" * len(stores))
    rows = db.query(f"SELECT {COLUMNS} FROM deposits d JOIN stores s ON s.uuid = d.store_uuid "
                    f"WHERE d.store_uuid IN ({marks}) ORDER BY d.id DESC LIMIT ? OFFSET ?",
                    stores + [int(limit), int(offset)])
    return [_json(db, r) for r in rows]


def list_all(db, user, limit=50, offset=0):
    """Staff: every deposit of every store (store, chain, currency, address, balance, the
    open withdrawal and its status), newest first."""
    catalog.require_staff(user)
    rows = db.query(f"SELECT {COLUMNS} FROM deposits d JOIN stores s ON s.uuid = d.store_uuid "
                    "ORDER BY d.id DESC LIMIT ? OFFSET ?", (int(limit), int(offset)))
    out = []
    for r in rows:
        item = _json(db, r)
        w = db.one("SELECT status FROM deposit_withdraw_intents WHERE uuid = ?", (item["open_withdrawal"],)) \
            if item["open_withdrawal"] else None
        item["open_withdrawal_status"] = w["status"] if w else None
        out.append(item)
    return out


def _row(db, deposit_uuid):
    if not validate.is_uuid(deposit_uuid):
        return None
    return db.one(f"SELECT {COLUMNS} FROM deposits d JOIN stores s ON s.uuid = d.store_uuid "
                  "WHERE d.uuid = ?", (deposit_uuid,))


def get_deposit(db, user, deposit_uuid):
    """A deposit with its history and withdrawals; 404 unless a member of its store (or staff)."""
    row = _row(db, deposit_uuid)
    if row is None or not (roles.is_staff(user) or catalog.member_role(db, user, row["store_uuid"])):
        raise NotFound("no such deposit")
    out = _json(db, row)
    out["history"] = [{"time": h["time"], "event": h["event"],
                       "balance": pricing.format_amount(int(h["balance"] or 0), row["decimals"]),
                       "comment": h["comment"]}
                      for h in db.query("SELECT time, event, balance, comment FROM deposit_history "
                                        "WHERE deposit_uuid = ? ORDER BY id", (row["uuid"],))]
    out["withdrawals"] = db.query("SELECT uuid, to_address, status, error, created_at, updated_at "
                                  "FROM deposit_withdraw_intents WHERE deposit_uuid = ? ORDER BY id",
                                  (row["uuid"],))
    return out


def withdraw(db, user, deposit_uuid, ip=None):
    """The store owner asks cron to send the deposit's balance to the store's payout address.

    404 unknown / not a member, 403 not the owner, 409 no payout address, address not yet
    derived, nothing to withdraw, or a withdrawal already open. Returns the intent dict.
    """
    if not deposit_uuid:
        raise BadRequest("deposit_uuid is required", fields={"deposit_uuid": "required"})
    with db.transaction():
        locked = db.one("SELECT id FROM deposits WHERE uuid = ? FOR UPDATE",
                        (deposit_uuid if validate.is_uuid(deposit_uuid) else "",))
        row = _row(db, deposit_uuid) if locked else None
        if row is None or not catalog.member_role(db, user, row["store_uuid"]):
            raise NotFound("no such deposit")
        store = catalog.require_member(db, user, row["store_uuid"], owner=True, for_selling=False)
        if not store["payout_address"]:
            raise Conflict("the store has no payout address; set one in the store settings first")
        if row["address"] is None:
            raise Conflict("the deposit address is not derived yet; try again in a minute")
        if int(row["balance"] or 0) <= 0:
            raise Conflict("the deposit has no balance to withdraw")
        if db.value("SELECT id FROM deposit_withdraw_intents WHERE open_key = ?", (row["uuid"],)):
            raise Conflict("a withdrawal of this deposit is already in progress")
        try:
            intent = intents.open_withdrawal(db, row["uuid"], store["payout_address"], user["uuid"])
        except intents.IntentConflict as e:
            raise Conflict(str(e))
        now = intent["created_at"]
        audit.log(db, "deposit_withdraw", user["uuid"], row["uuid"], store["payout_address"], ip)
    return {"uuid": intent["uuid"], "deposit_uuid": row["uuid"], "to_address": intent["to_address"],
            "status": "pending", "created_at": now}
