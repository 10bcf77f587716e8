"""Accepted tokens (what buyers may pay with) and the input checks shared by the
order, deposit and settings code: chain ids and EIP-55 addresses.

A token is (chain_id, symbol, contract_address); contract_address '' is the chain's
native coin. An admin adds a token as `unverified`; cron checks it on chain
(`decimals()`, `symbol()`, a price) and makes it `active` or `rejected`. Only active
tokens can be used for orders and deposits.
"""
import re
from decimal import Decimal, InvalidOperation

from lib import audit, catalog_cache, chains, env
from lib.db import IntegrityError, utc_now
from lib.http import BadRequest, Conflict, NotFound, parse_id

STATUSES = ("unverified", "active", "rejected")
SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,15}$")
MAX_MANUAL_PRICE = Decimal("1000000000")

COLUMNS = ("id, chain_id, symbol, contract_address, decimals, status, status_reason, "
           "manual_usd_price, created_at, updated_at")


# -- shared input checks ---------------------------------------------------------

def allow_dev():
    return env.flag("ALLOW_DEV_CHAIN")


def allow_testnets():
    """ALLOW_TESTNETS=1: test networks (Sepolia) may pay for goods here; off by default,
    since their coins are free."""
    return env.flag("ALLOW_TESTNETS")


def chain_allowed(chain_id):
    """Whether this site takes payments on the chain: a test network only with
    ALLOW_TESTNETS=1, the local dev chain only with ALLOW_DEV_CHAIN=1."""
    chain = chains.CHAINS.get(chain_id) if isinstance(chain_id, int) else None
    if chain is None:
        return False
    if chain.dev:
        return allow_dev()
    return allow_testnets() or not chain.testnet


def parse_chain_id(value, field="chain_id"):
    """A supported chain id (int) from user input; 400 otherwise."""
    text = str(value).strip() if value is not None else ""
    if not (text.isascii() and text.isdigit() and len(text) < 20):
        raise BadRequest(f"{field} must be a chain id number", fields={field: "not a number"})
    chain_id = int(text)
    if not chain_allowed(chain_id):
        supported = ", ".join(str(c) for c in chains.CHAINS if chain_allowed(c))
        chain = chains.CHAINS.get(chain_id)
        why = (f"{chain.name} is a test network, accepted only with ALLOW_TESTNETS=1"
               if chain is not None and chain.testnet and not chain.dev else f"unsupported chain {chain_id}")
        raise BadRequest(f"{field}: {why}; supported chains: {supported}",
                        fields={field: "unsupported chain"})
    return chain_id


ZERO_ADDRESS = "0x" + "0" * 40


def checksum_address(value, field):
    """An EIP-55 checksummed address from user input; 400 with a clear message otherwise.
    Control characters are refused before anything is stripped (Python's strip() eats
    e.g. \x1f), and so is the zero address: funds sent there are burned."""
    if isinstance(value, str) and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        problem = "Not an address: it contains a control character."
        raise BadRequest(f"{field}: {problem}", fields={field: problem})
    problem = chains.address_error(value if isinstance(value, str) else None)
    if problem is None and value.strip() == ZERO_ADDRESS:
        problem = "The zero address cannot receive funds (anything sent there is burned)."
    if problem:
        raise BadRequest(f"{field}: {problem}", fields={field: problem})
    return value.strip()


def optional_address(value, field):
    """An address field where '' (or spaces only) clears it: None, else checksum_address()."""
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string", fields={field: "must be a string"})
    if value.strip(" ") == "":
        return None
    return checksum_address(value, field)


def parse_usd(value, field, minimum=Decimal("0"), maximum=Decimal("1000000"), places=8,
              allow_zero=False):
    """A positive USD amount as a normalized decimal string (no floats, no exponents)."""
    text = str(value).strip() if value is not None else ""
    if not re.match(r"^[0-9]{1,12}(\.[0-9]{1,%d})?$" % places, text):
        raise BadRequest(f"{field} must be a decimal number like 12.50 "
                             f"(at most {places} decimal places)", fields={field: "not a price"})
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise BadRequest(f"{field} must be a decimal number", fields={field: "not a price"})
    if number < minimum or (number == 0 and not allow_zero):
        raise BadRequest(f"{field} must be greater than zero", fields={field: "must be > 0"})
    if number > maximum:
        raise BadRequest(f"{field} must be at most {maximum}", fields={field: "too large"})
    return format_decimal(number)


def format_decimal(number):
    """Decimal -> plain string without exponent or trailing zeros ('12.5', '3')."""
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# -- tokens ----------------------------------------------------------------------

def list_tokens(db, chain_id=None, status=None):
    sql = f"SELECT {COLUMNS} FROM accepted_tokens"
    where, params = [], []
    if chain_id is not None:
        where.append("chain_id = ?")
        params.append(int(chain_id))
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return db.query(sql + " ORDER BY chain_id, id", params)


def active_tokens(db):
    """Active tokens on the chains this site takes payments on (chain_allowed)."""
    return [t for t in list_tokens(db, status="active") if chain_allowed(t["chain_id"])]


# -- a store's choice among the accepted tokens (table store_tokens) ---------------

def store_choice(db, store_uuid):
    """{(chain_id, SYMBOL)} the store chose, or None: it takes every accepted token."""
    rows = db.query("SELECT chain_id, symbol FROM store_tokens WHERE store_uuid = ?", (store_uuid,))
    return {(int(r["chain_id"]), r["symbol"].upper()) for r in rows} or None


def tokens_for_store(db, store_uuid):
    """The active tokens a buyer may pay this store with."""
    choice = store_choice(db, store_uuid)
    return [t for t in active_tokens(db)
            if choice is None or (int(t["chain_id"]), t["symbol"].upper()) in choice]


def require_store_accepts(db, store_uuid, token):
    """400 (naming `currency`) when the store does not take this token."""
    choice = store_choice(db, store_uuid)
    if choice is not None and (int(token["chain_id"]), token["symbol"].upper()) not in choice:
        offered = ", ".join(f"{t['symbol']} on chain {t['chain_id']}" for t in tokens_for_store(db, store_uuid))
        raise BadRequest(f"currency: this store does not take {token['symbol']} on chain "
                             f"{token['chain_id']}; it takes {offered or 'no token at the moment'}",
                        fields={"currency": "not taken by this store"})


def parse_token_choice(db, value, field="tokens"):
    """A store's token choice from input: a list (or comma-separated string) of
    "CHAIN_ID:SYMBOL" naming active tokens, or "" / "all" for every accepted token
    (returns None). 400 naming the field for anything else."""
    if isinstance(value, str):
        items = [] if value.strip().lower() in ("", "all") else value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise BadRequest(f"{field} must be a list of CHAIN_ID:SYMBOL such as 1:ETH",
                        fields={field: "not a list"})
    if len(items) > 100:
        raise BadRequest(f"{field}: at most 100 tokens", fields={field: "too many"})
    active = {(int(t["chain_id"]), t["symbol"].upper()): t for t in active_tokens(db)}
    chosen = {}
    for item in items:
        chain_text, _, symbol = item.strip().partition(":")
        key = None
        if chain_text.isascii() and chain_text.isdigit() and len(chain_text) < 20 and symbol:
            key = (int(chain_text), symbol.strip().upper())
        if key not in active:
            shown = item.strip()[:40] if item.strip().isprintable() else "a value"
            raise BadRequest(f"{field}: {shown} is not an accepted token (CHAIN_ID:SYMBOL, e.g. 1:ETH)",
                            fields={field: "not an accepted token"})
        chosen[key] = active[key]
    return list(chosen.values()) or None


def set_store_tokens(db, store_uuid, chosen):
    """Replace the store's choice: `chosen` tokens from parse_token_choice, None for all."""
    with db.transaction():
        db.execute("DELETE FROM store_tokens WHERE store_uuid = ?", (store_uuid,))
        for t in chosen or []:
            db.insert("store_tokens", {"store_uuid": store_uuid, "chain_id": int(t["chain_id"]),
                                       "symbol": t["symbol"].upper(), "created_at": utc_now()})
        catalog_cache.changed(db)


def get_token(db, token_id):
    return db.one(f"SELECT {COLUMNS} FROM accepted_tokens WHERE id = ?", (token_id,))


def find_token(db, chain_id, symbol):
    """The token with `symbol` (case-insensitive) on `chain_id`, any status, or None."""
    return db.one(f"SELECT {COLUMNS} FROM accepted_tokens WHERE chain_id = ? AND UPPER(symbol) = ?",
                  (int(chain_id), str(symbol).upper()))


def payable_token(db, chain_id, currency):
    """The active token a buyer or vendor names; 400 unknown, 409 not (yet) active."""
    currency = currency.strip() if isinstance(currency, str) else ""
    if not currency or len(currency) > 16:
        raise BadRequest("currency must be a token symbol such as ETH", fields={"currency": "bad"})
    token = find_token(db, chain_id, currency)
    if token is None:
        offered = [t["symbol"] for t in list_tokens(db, chain_id=chain_id, status="active")]
        raise BadRequest(f"{currency} is not accepted on chain {chain_id}; accepted: "
                             f"{', '.join(offered) if offered else 'none'}",
                        fields={"currency": "not accepted"})
    if token["status"] != "active":
        raise Conflict(f"{token['symbol']} on chain {chain_id} is {token['status']} and "
                             "cannot be used until it is verified")
    if token["decimals"] is None:
        raise Conflict(f"{token['symbol']} on chain {chain_id} has no known decimals yet")
    return token


def add_token(db, chain_id, symbol, contract_address="", decimals=None, manual_usd_price=None,
              by=None, ip=None):
    """Add an accepted token as `unverified`; return its row. `by` (the admin's uuid) audits it.

    400: chain not supported, bad symbol, contract address not checksummed, decimals or
    manual price invalid (a manual price is only for test networks). 409: duplicate.
    """
    chain_id = parse_chain_id(chain_id)
    chain = chains.get_chain(chain_id)
    symbol = symbol.strip() if isinstance(symbol, str) else ""
    if not SYMBOL_RE.match(symbol):
        raise BadRequest("symbol must be 1-16 letters, digits, '.', '-' or '_'",
                        fields={"symbol": "bad symbol"})
    if contract_address is not None and not isinstance(contract_address, str):
        raise BadRequest("contract_address must be a string", fields={"contract_address": "bad"})
    contract_address = (contract_address or "").strip()
    if contract_address:
        contract_address = checksum_address(contract_address, "contract_address")
        if decimals in (None, ""):
            decimals = None
        else:
            text = str(decimals).strip()
            if not (text.isascii() and text.isdigit() and len(text) <= 2 and int(text) <= 36):
                raise BadRequest("decimals must be a whole number from 0 to 36",
                                fields={"decimals": "bad"})
            decimals = int(text)
    else:
        # The native coin: its decimals are a property of the chain.
        if symbol.upper() != chain.native_symbol.upper():
            raise BadRequest(f"the native coin of chain {chain_id} is {chain.native_symbol}; "
                                 "give contract_address for an ERC-20 token",
                            fields={"symbol": "not the native coin"})
        symbol = chain.native_symbol
        decimals = chain.native_decimals
    if manual_usd_price not in (None, ""):
        if not chain.testnet:
            raise BadRequest("manual_usd_price is only allowed on test networks; "
                                 f"chain {chain_id} uses prices fetched by cron",
                            fields={"manual_usd_price": "not a test network"})
        manual_usd_price = parse_usd(manual_usd_price, "manual_usd_price", maximum=MAX_MANUAL_PRICE,
                                     places=18)
    else:
        manual_usd_price = None
    now = utc_now()
    row = {"chain_id": chain_id, "symbol": symbol, "contract_address": contract_address,
           "decimals": decimals, "status": "unverified", "status_reason": None,
           "manual_usd_price": manual_usd_price, "created_at": now, "updated_at": now}
    with db.transaction():
        dup = db.one("SELECT id FROM accepted_tokens WHERE chain_id = ? AND "
                     "(UPPER(symbol) = ? OR contract_address = ?)",
                     (chain_id, symbol.upper(), contract_address))
        if dup:
            raise Conflict(f"a token {symbol} or with that contract already exists on chain {chain_id}")
        try:
            row["id"] = db.insert("accepted_tokens", row)
        except IntegrityError:
            raise Conflict(f"a token {symbol} or with that contract already exists on chain {chain_id}")
        catalog_cache.changed(db)
        if by is not None:
            audit.log(db, "token_added", by, str(row["id"]), f"{symbol} chain {chain_id} {contract_address}", ip)
    return get_token(db, row["id"])


def remove_token(db, token_id, by=None, ip=None):
    """Delete an accepted token (orders keep their own copy of the token's facts); `by`
    (the admin's uuid) audits it."""
    token_id = parse_id(token_id)
    with db.transaction():
        token = get_token(db, token_id)
        if token is None:
            raise NotFound(f"no accepted token with id {token_id}")
        db.execute("DELETE FROM accepted_tokens WHERE id = ?", (token["id"],))
        catalog_cache.changed(db)
        if by is not None:
            audit.log(db, "token_removed", by, str(token["id"]), f"{token['symbol']} chain {token['chain_id']}", ip)
    return token


def set_status(db, token_id, status, reason=None, decimals=None):
    """For cron's verification: active or rejected (with the reason)."""
    if status not in STATUSES:
        raise ValueError(status)
    sets, params = ["status = ?", "status_reason = ?", "updated_at = ?"], [status, reason, utc_now()]
    if decimals is not None:
        sets.append("decimals = ?")
        params.append(int(decimals))
    with db.transaction():
        db.execute(f"UPDATE accepted_tokens SET {', '.join(sets)} WHERE id = ?", params + [token_id])
        catalog_cache.changed(db)
