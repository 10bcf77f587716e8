"""The OpenAPI 3.1 description of every JSON endpoint (served at /api/openapi.json).

tests/test_openapi.py calls every operation (success and error answers) and checks
each real response against this document, and that every JSON script under
public/api/ and public/admin/ is described here, so the two cannot drift apart.
"""
import copy
from lib import chains, config, scopes, tokens

PUBLIC_DOCS = ("/health.php", "/api/openapi.json", "/api/skill.php")   # no auth: no 401/429
ERROR_TEXT = {400: "Bad input", 401: "Not authenticated (or an invalid/revoked API key)",
              403: "Not allowed (role, membership, CSRF)", 404: "Not found (or not yours)",
              409: "Conflict: wrong state, duplicate, stale price", 413: "Request body larger than 1 MiB",
              429: "Rate limited"}

S = "string"
N = "integer"
B = "boolean"


def _t(kind, nullable=False, **extra):
    schema = {"type": [kind, "null"] if nullable else kind}
    schema.update(extra)
    return schema


def _obj(props, required=None, strict=True):
    schema = {"type": "object", "properties": props,
              "required": sorted(props) if required is None else required}
    if strict:
        schema["additionalProperties"] = False
    return schema


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _arr(items):
    return {"type": "array", "items": items}


AMOUNT = _t(S, pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="decimal string in token units")
AMOUNT_N = {"type": ["string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
UUID = _t(S, format="uuid")
UUID_N = _t(S, nullable=True, format="uuid")
TIME = _t(S, pattern=r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", description="UTC YYYY-MM-DD HH:MM:SS")
TIME_N = _t(S, nullable=True, pattern=r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
ADDRESS_N = _t(S, nullable=True, pattern=r"^0x[0-9a-fA-F]{40}$")
STR_N = _t(S, nullable=True)
USD = _t(S, pattern=r"^[0-9]+(\.[0-9]+)?$", description="USD as a decimal string")

INTENT_NAME = {"enum": ["RELEASE", "CANCEL", "PARTIAL_REFUND", None],
               "description": "the action name of the intent the action opened (the original's shape), or null"}
ORDER_INTENT_ACTIONS = ["RELEASE", "CANCEL", "PARTIAL_REFUND", "LATE_REFUND", "RESCUE"]
INTENT_STATUSES = ["pending", "processing", "needs_attention", "completed", "failed"]
INT_N = _t(N, nullable=True)
# the payout engine's counts (lib.staff.COUNTS), totals and per chain
PAYOUT_COUNTS = {
    "waiting": _t(N, description="payouts signed or broadcast, not yet confirmed"),
    "mined_waiting": _t(N, description="of those, mined (block hash seen), waiting for confirmations"),
    "replaced": _t(N, description="of those, re-sent with raised fees at least once"),
    "failed_legs": _t(N, description="failed legs of intents needing attention"),
    "intents_needing_attention": _t(N, description="intents (orders and withdrawals) waiting for staff"),
    "intents_pending_with_note": _t(N, description="pending intents cron holds back, with a note "
                                                   "(e.g. network fee above the ceiling)"),
    "open_flags": _t(N, description="unresolved staff flags"),
}
NATIVE_N = {"type": ["string", "null"], "pattern": r"^[0-9]+(\.[0-9]+)?$",
            "description": "decimal string in units of the chain's gas coin"}
GAS_STATION = {"gas_station_address": ADDRESS_N, "gas_station_balance": NATIVE_N,
               "gas_station_min_balance": NATIVE_N,
               "gas_station_low": _t(B, description="balance below the minimum"), "native_symbol": _t(S)}

SCHEMAS = {
    "Error": _obj({"error": _t(S)}),
    "PayoutCounts": _obj(dict(PAYOUT_COUNTS)),
    "ChainFigures": _obj(dict({"chain_id": _t(N), "chain_name": _t(S), "head_block": INT_N, "seen_at": TIME_N,
                               "confirmations": STR_N,
                               "base_fee_gwei": {"type": ["string", "null"], "pattern": r"^[0-9]+(\.[0-9]+)?$"},
                               "max_fee_ceiling_gwei": {"type": ["string", "null"],
                                                        "pattern": r"^[0-9]+(\.[0-9]+)?$"},
                               "fee_above_ceiling": _t(B)}, **GAS_STATION, **PAYOUT_COUNTS)),
    "PublicChainFigures": _obj(dict({"chain_id": _t(N)}, **GAS_STATION, **PAYOUT_COUNTS)),
    "PayoutLeg": _obj({
        "id": _t(N), "kind": _t(S), "recipient_role": _t(S), "chain_id": _t(N), "currency": _t(S),
        "token_contract": _t(S, description="'' for the native coin"), "from_address": _t(S), "to_address": _t(S),
        "redirect_to": ADDRESS_N, "nonce": _t(N), "tx_hash": _t(S),
        "status": {"enum": ["signed", "broadcast", "confirmed", "failed", "abandoned"]},
        "block_number": INT_N, "block_hash": STR_N, "replacements": _t(N), "retry_of": INT_N, "error": STR_N,
        "created_at": TIME, "updated_at": TIME, "amount": AMOUNT_N,
        "amount_base_units": _t(S, pattern="^[0-9]+$"), "decimals": INT_N, "fee": AMOUNT_N,
        "fee_currency": _t(S), "explorer_url": STR_N}),
    "PayoutIntent": _obj({
        "uuid": UUID, "kind": {"enum": ["order", "withdrawal"]},
        "action": {"enum": ORDER_INTENT_ACTIONS + ["WITHDRAW"]}, "status": {"enum": INTENT_STATUSES},
        "transaction_uuid": UUID_N, "deposit_uuid": UUID_N, "chain_id": INT_N, "currency": STR_N,
        "error": STR_N, "attempts": _t(N), "failures": _t(N), "requested_by": UUID_N,
        "created_at": TIME, "updated_at": TIME, "legs": _arr(_ref("PayoutLeg"))}),
    "StaffFlag": _obj({
        "id": _t(N), "kind": STR_N, "reason": _t(S), "transaction_uuid": UUID_N, "intent_uuid": UUID_N,
        "chain_id": INT_N, "address": STR_N, "token_contract": STR_N, "amount": AMOUNT_N,
        "amount_base_units": {"type": ["string", "null"], "pattern": "^[0-9]+$"}, "decimals": INT_N,
        "asset": STR_N, "created_at": TIME, "rescuable": _t(B), "rescue_intent_uuid": UUID_N}),
    "Ok": _obj({"ok": _t(B)}),
    "Store": _obj({"uuid": UUID, "storename": _t(S), "description": STR_N,
                   "tier": {"enum": ["gold", "silver", "bronze", "free"]},
                   "vendorship_agreed_at": TIME, "created_at": TIME, "updated_at": TIME,
                   "payout_address": ADDRESS_N, "suspended": _t(B), "member_role": _t(S),
                   "members": _arr(_obj({"user_uuid": UUID, "username": _t(S), "role": _t(S)})),
                   # the accepted tokens the store takes, CHAIN_ID:SYMBOL; null: all of them
                   "tokens": {"type": ["array", "null"], "items": _t(S, pattern=r"^[0-9]+:[^:]+$")}},
                  required=["uuid", "storename", "description", "tier", "vendorship_agreed_at", "created_at"]),
    "Category": _obj({"id": _t(N), "name": _t(S), "parent_id": _t(N, nullable=True)}),
    "Item": _obj({"uuid": UUID, "store_uuid": UUID, "storename": _t(S), "name": _t(S), "description": STR_N,
                  "category_id": _t(N, nullable=True), "category": STR_N, "active": _t(B),
                  "created_at": TIME, "updated_at": TIME}),
    "Quote": _obj({"chain_id": _t(N), "currency": _t(S), "contract_address": _t(S),
                   "decimals": _t(N, nullable=True), "required_amount": AMOUNT_N,
                   "usd_rate": STR_N, "error": STR_N}),
    "Package": _obj({"uuid": UUID, "item_uuid": UUID, "name": _t(S), "description": STR_N, "price_usd": USD,
                     "active": _t(B), "created_at": TIME, "updated_at": TIME,
                     "quotes": _arr(_ref("Quote"))},
                    required=["uuid", "item_uuid", "name", "description", "price_usd", "active", "created_at",
                              "updated_at"]),
    "Order": _obj({
        "uuid": UUID, "type": {"enum": ["evm"]}, "description": STR_N, "package_uuid": UUID,
        "store_uuid": UUID, "storename": _t(S), "buyer_uuid": UUID, "buyer_username": _t(S),
        "dispute_uuid": UUID_N,
        "current_status": {"enum": ["PENDING", "COMPLETED", "RELEASED", "FAILED", "CANCELLED", "FROZEN"]},
        "current_amount": AMOUNT, "required_amount": AMOUNT, "received_amount": AMOUNT,
        "escrow_address": ADDRESS_N, "chain_id": _t(N), "currency": _t(S), "token_contract": _t(S),
        "price_usd": USD, "current_shipping_status": {"enum": ["DISPATCH PENDING", "DISPATCHED", None]},
        "buyer_confirmed_at": TIME_N, "created_at": TIME, "updated_at": TIME}),
    "StatusRow": _obj({"time": TIME, "status": _t(S), "amount": AMOUNT, "comment": STR_N,
                       "payment_receipt_uuid": STR_N}),
    "ShippingRow": _obj({"time": TIME, "status": _t(S), "comment": STR_N}),
    "Intent": _obj({"uuid": UUID, "action": {"enum": ORDER_INTENT_ACTIONS},
                    "status": {"enum": INTENT_STATUSES},
                    "refund_percent": _t(N, nullable=True), "error": STR_N, "attempts": _t(N),
                    "failures": _t(N), "next_attempt_at": TIME_N, "created_at": TIME, "updated_at": TIME},
                   required=["uuid", "action", "status", "refund_percent", "error", "attempts", "created_at",
                             "updated_at"]),
    "IntentRef": _obj({"uuid": UUID, "action": {"enum": ["RELEASE", "CANCEL", "PARTIAL_REFUND"]},
                       "status": _t(S), "refund_percent": _t(N, nullable=True)}),
    "Payout": _obj({"id": _t(N), "kind": _t(S), "recipient_role": _t(S), "to_address": _t(S), "amount": AMOUNT,
                    "currency": _t(S), "tx_hash": _t(S), "status": _t(S), "block_number": _t(N, nullable=True),
                    "replacements": _t(N), "retry_of": _t(N, nullable=True), "error": STR_N,
                    "created_at": TIME, "updated_at": TIME, "explorer_url": STR_N}),
    "DisputeRef": _obj({"uuid": UUID, "status": {"enum": ["open", "resolved"]}, "resolution": STR_N,
                        "refund_percent": _t(N, nullable=True), "created_at": TIME, "resolved_at": TIME_N}),
    "Dispute": _obj({"uuid": UUID, "transaction_uuid": UUID, "opened_by": UUID, "opened_by_username": STR_N,
                     "status": {"enum": ["open", "resolved"]},
                     "resolution": {"enum": ["release", "refund", "partial_refund", None]},
                     "refund_percent": _t(N, nullable=True), "resolved_by": UUID_N,
                     "resolver_user_uuid": dict(UUID_N, description="the original's name of resolved_by"),
                     "created_at": TIME,
                     "resolved_at": TIME_N, "store_uuid": UUID, "storename": _t(S), "buyer_uuid": UUID,
                     "buyer_username": _t(S), "claims": _arr(_ref("Claim"))},
                    required=["uuid", "transaction_uuid", "status", "resolution", "created_at"]),
    "Claim": _obj({"id": _t(N), "dispute_uuid": UUID, "user_uuid": UUID, "username": STR_N, "claim": _t(S),
                   "created_at": TIME}, required=["id", "user_uuid", "username", "claim", "created_at"]),
    "Deposit": _obj({"uuid": UUID, "store_uuid": UUID, "storename": _t(S), "chain_id": _t(N), "currency": _t(S),
                     "token_contract": _t(S), "decimals": _t(N), "address": ADDRESS_N, "address_pending": _t(B),
                     "balance": AMOUNT, "open_withdrawal": UUID_N, "created_at": TIME, "updated_at": TIME,
                     "open_withdrawal_status": {"type": ["string", "null"],
                                                "description": "?all=1 (staff): the open withdrawal's status"},
                     "crypto": _t(S, description="the currency symbol (the original's name)"),
                     "crypto_value": dict(AMOUNT, description="the balance in token units (the original's name)"),
                     "fiat_value": {"type": ["string", "null"], "pattern": r"^[0-9]+\.[0-9]{2}$",
                                    "description": "the balance in USD, rounded down to the cent; null "
                                                   "without a usable USD rate"},
                     "currency_rate": {"type": ["string", "null"], "pattern": r"^[0-9]+(\.[0-9]+)?$",
                                       "description": "USD per token (manual_usd_price or cron's fresh "
                                                      "price), null when none is usable"},
                     "history": _arr(_obj({"time": TIME, "event": _t(S), "balance": AMOUNT, "comment": STR_N})),
                     "withdrawals": _arr(_obj({"uuid": UUID, "to_address": _t(S), "status": _t(S),
                                               "error": STR_N, "created_at": TIME, "updated_at": TIME}))},
                    required=["uuid", "store_uuid", "chain_id", "currency", "address", "balance", "crypto",
                              "crypto_value", "fiat_value", "currency_rate"]),
    "Withdrawal": _obj({"uuid": UUID, "deposit_uuid": UUID, "to_address": _t(S), "status": _t(S),
                        "created_at": TIME}),
    "Token": _obj({"id": _t(N), "chain_id": _t(N), "symbol": _t(S), "contract_address": _t(S),
                   "decimals": _t(N, nullable=True), "status": {"enum": ["unverified", "active", "rejected"]},
                   "status_reason": STR_N, "manual_usd_price": STR_N, "created_at": TIME, "updated_at": TIME}),
    "ConfigKey": _obj({"name": _t(S), "value": _t(S), "default": _t(S),
                       "kind": {"enum": ["duration", "fraction", "count", "depth", "usd", "bool"]}, "description": _t(S)}),
    "ApiKey": _obj({"id": _t(N), "name": _t(S), "key_prefix": _t(S), "created_at": TIME,
                    "last_used_at": TIME_N}, strict=False),
    "User": _obj({"id": _t(N), "uuid": UUID, "username": _t(S),
                  "role": {"enum": ["admin", "staff", "vendor", "customer"]}, "banned": _t(B),
                  "can_sell": _t(B, description="may open stores (an admin's grant; default true)"),
                  "inviter_uuid": UUID_N, "refund_address": ADDRESS_N, "payout_address": ADDRESS_N,
                  "created_at": TIME}, required=["uuid", "username", "role", "banned"], strict=False),
}

SCHEMAS["OrderDetail"] = copy.deepcopy(SCHEMAS["Order"])
SCHEMAS["OrderDetail"]["properties"].update({
    "statuses": _arr(_ref("StatusRow")), "shipping": _arr(_ref("ShippingRow")), "intents": _arr(_ref("Intent")),
    "payouts": _arr(_ref("Payout")), "dispute": {"anyOf": [_ref("DisputeRef"), {"type": "null"}]},
    "usd_rate": _t(S), "decimals": _t(N), "refund_address": ADDRESS_N,
    "my_roles": _arr({"enum": ["buyer", "vendor", "staff"]}),
    "allowed_actions": _arr({"enum": ["release", "cancel", "partial_refund", "dispatch", "confirm", "dispute"]})})
SCHEMAS["OrderDetail"]["required"] = sorted(SCHEMAS["OrderDetail"]["properties"])


def _page(key, item):
    return _obj({key: _arr(item), "limit": _t(N), "offset": _t(N)})


def _q(name, description, schema=None, required=False):
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


# -- request constraints: what lib/ enforces, so a generated client is never surprised ----------
# Every documented request parameter and body field states the validation the server applies
# (tests/test_openapi_constraints.py sends a value just inside and just outside each one).
# `examples` hold a valid value; the agent guide (/api/skill.php) builds its curl examples from them.

def _in(description, kind="string", examples=None, **constraints):
    schema = {"type": kind, "description": description}
    schema.update(constraints)
    if examples is not None:
        schema["examples"] = examples
    return schema


UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
EXAMPLE_UUID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
EXAMPLE_ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"
LINE = r"^(?=.*\S)[^\x00-\x1f\x7f]*$"           # one line, not blank, no control characters
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"   # text: tabs and newlines allowed, other controls not


def _uuid(description):
    return _in(description, format="uuid", pattern=UUID_PATTERN, examples=[EXAMPLE_UUID])


def _address(description, empty_clears=False):
    if empty_clears:
        return _in(description + "; EIP-55 checksummed (mixed case), empty clears",
                   pattern=r"^(0x[0-9a-fA-F]{40})?$", maxLength=42, examples=[EXAMPLE_ADDRESS])
    return _in(description + "; EIP-55 checksummed (mixed case)", pattern=ADDRESS_PATTERN,
               minLength=42, maxLength=42, examples=[EXAMPLE_ADDRESS])


def _line(description, max_length, example):
    return _in(description, minLength=1, maxLength=max_length, pattern=LINE, examples=[example])


def _text(description, max_length, example, required=False):
    extra = {"minLength": 1} if required else {}
    return _in(description, maxLength=max_length, pattern=TEXT, examples=[example], **extra)


def _int_id(description, digits=18):
    return _in(description, pattern="^[0-9]{1,%d}$" % digits, examples=["1"])


def chain_ids():
    """The chain ids the API accepts now (test networks only with ALLOW_TESTNETS=1, 31337
    only with ALLOW_DEV_CHAIN=1)."""
    return [c for c in chains.CHAINS if tokens.chain_allowed(c)]


def _chain_id(description):
    return _in(description, kind="integer", enum=chain_ids(), examples=[1])


def _percent(description):
    return _in(description, kind="integer", minimum=1, maximum=100, examples=[50])


# storename: lib.catalog.STORENAME_RE; username: lib.users.USERNAME_RE; symbol: lib.tokens.SYMBOL_RE
STORENAME = _in("1-16 characters: letters, digits, spaces (not first or last), '_', '-', '.'; unique "
                "(case-insensitive)", minLength=1, maxLength=16,
                pattern=r"^[A-Za-z0-9_.\-](?:[A-Za-z0-9 _.\-]{0,14}[A-Za-z0-9_.\-])?$", examples=["my-shop"])
USERNAME = _in("1-16 characters: letters, digits, '_', '-', '.'", minLength=1, maxLength=16,
               pattern=r"^[A-Za-z0-9_.\-]{1,16}$", examples=["alice"])
SYMBOL = _in("token symbol, 1-16 letters, digits, '.', '-', '_' (first a letter or digit)", minLength=1,
             maxLength=16, pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,15}$", examples=["ETH"])
CURRENCY = _in("token symbol of an active accepted token on the chain (default ETH)", minLength=1,
               maxLength=16, examples=["ETH"])
DESCRIPTION = _text("text, at most 10000 characters", 10000, "Hand-made, ships in a week")
NAME64 = _line("1-64 characters, one line", 64, "Blue widget")
# USD: digits with at most 2 decimals, more than 0 and at most 1000000 (lib.catalog.parse_price_usd)
PRICE_USD = _in("USD price: more than 0 and at most 1000000, at most 2 decimals", maxLength=10,
                pattern=r"^(?=[0-9.]*[1-9])([0-9]{1,6}(\.[0-9]{1,2})?|1000000(\.0{1,2})?)$",
                examples=["19.99"])
MANUAL_USD = _in("USD rate of one token, test networks only: more than 0, at most 1000000000, "
                 "at most 18 decimals", maxLength=31,
                 pattern=r"^(?=[0-9.]*[1-9])([0-9]{1,9}(\.[0-9]{1,18})?|1000000000(\.0{1,18})?)$",
                 examples=["2500"])
COMMENT = _text("optional note, at most 5000 characters", 5000, "looks fine")
CONFIG_PATTERNS = {"duration": r"^(?=[0-9]*[1-9])[0-9]{1,6}[mhd]$", "fraction": r"^0*(1(\.0+)?|\.[0-9]+|0)$",
                   "count": r"^[0-9]{1,4}$", "depth": r"^([0-9]{1,4}|finalized|safe)$",
                   "usd": r"^[0-9]{1,9}(\.[0-9]{1,2})?$", "bool": r"^[01]$"}
CONFIG_EXAMPLES = {"duration": "15m", "fraction": "0.05", "count": "3", "depth": "12", "usd": "250", "bool": "1"}


def _config_props():
    props = {}
    for name, (kind, default, description) in config.KEYS.items():
        props[name] = _in(f"{description} ({kind}; default {default})", pattern=CONFIG_PATTERNS[kind],
                          examples=[default])
    return props


ROLES = ("admin", "staff", "vendor", "customer")     # lib.users.ROLES
ACTION = _in("the action (SPEC section 6; GET /api/transactions.php?uuid= lists allowed_actions)",
             enum=["release", "cancel", "partial_refund", "dispatch", "confirm", "dispute"], examples=["release"])


def _config_values():
    return {name: _t(S, description=spec[2]) for name, spec in config.KEYS.items()}


PAGE_PARAMS = [_q("limit", "page size, 1-200 (default 50)",
                  {"type": "integer", "minimum": 1, "maximum": 200, "examples": [50]}),
               _q("offset", "rows to skip (default 0)",
                  {"type": "integer", "minimum": 0, "maximum": 10 ** 9, "examples": [0]})]


def _body(props, required=()):
    schema = {"type": "object", "properties": props, "required": list(required)}
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema},
                                          "application/json": {"schema": schema}}}


def _op(summary, ok, errors, params=None, body=None, auth=True, description=None):
    op = {"summary": summary, "responses": {"200": {"description": "OK",
                                                    "content": {"application/json": {"schema": ok}}}}}
    if description:
        op["description"] = description
    for code in errors:
        op["responses"][str(code)] = {"description": ERROR_TEXT[code],
                                      "content": {"application/json": {"schema": _ref("Error")}}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if not auth:
        op["security"] = []
    return op


STR = {"type": "string"}
CSRF = {"csrf_token": {"type": "string", "description": "needed with a session cookie when the request carries a "
                                                       "browser signal (Origin, Referer, Sec-Fetch-*, Accept "
                                                       "text/html); never with an API key"}}


def _fields(**props):
    """Body fields: name -> schema (a plain string is a field without constraints)."""
    out = dict(CSRF)
    for name, spec in props.items():
        out[name] = {"type": "string", "description": spec} if isinstance(spec, str) else spec
    return out


PATHS = {
    "/health.php": {"get": _op("Health: database, last cron run, chain heads, payout engine figures", _obj({
        "ok": _t(B), "database": _t(S), "last_cron_run": {"type": ["object", "null"]},
        "chains": _arr({"type": "object"}),
        "payouts": _obj({"totals": _ref("PayoutCounts"), "chains": _arr(_ref("PublicChainFigures"))}),
        "warnings": _arr(_t(S)), "error": _t(S)}, required=["ok", "database"]), [], auth=False,
        description="Public: counts and each chain's gas station address and balance, never order ids or "
                    "amounts of orders. `warnings` name what an operator should act on (gas station below "
                    "its minimum, intents needing staff attention, open staff flags).")},
    "/api/openapi.json": {"get": _op("This document", {"type": "object", "required": ["openapi", "paths"]}, [],
                                     auth=False)},
    "/api/skill.php": {"get": {
        "summary": "A guide for AI agents (Markdown), generated from this document",
        "description": "Base URL, how to get and send an API key, the order lifecycle, and every endpoint "
                       "with its parameters, constraints and an example request.",
        "security": [],
        "responses": {"200": {"description": "OK", "content": {
            "text/markdown": {"schema": {"type": "string", "contentEncoding": "utf-8"}}}}}}},
    "/api/stores.php": {
        "get": _op("List stores (suspended hidden), one store, or mine",
                   {"anyOf": [_page("stores", _ref("Store")), _obj({"stores": _arr(_ref("Store"))}),
                              _obj({"store": _ref("Store")})]},
                   [400, 401, 404], PAGE_PARAMS + [_q("uuid", "one store", _uuid("a store's uuid")),
                                                   _q("mine", "1: the stores I belong to (needs auth)")],
                   auth=False),
        "post": _op("Create a store: the creator becomes owner and vendor",
                    _obj({"ok": _t(B), "uuid": UUID, "store": _ref("Store")}), [400, 401, 403, 409],
                    body=_body(_fields(storename=STORENAME, description=DESCRIPTION,
                                       vendorship_agree=_in("agree to the vendorship terms (required)",
                                                            enum=["1", "true", "yes", "on"], examples=["1"])),
                               ["storename", "vendorship_agree"])),
    },
    "/api/items.php": {
        "get": _op("List items (search, category, store) or one item",
                   {"anyOf": [_obj({"items": _arr(_ref("Item")), "categories": _arr(_ref("Category")),
                                    "limit": _t(N), "offset": _t(N)}), _obj({"item": _ref("Item")})]},
                   [400, 404], PAGE_PARAMS + [_q("uuid", "one item", _uuid("an item's uuid")),
                                              _q("store_uuid", "items of one store", _uuid("a store's uuid")),
                                              _q("q", "search in name and description",
                                                 _in("at most 100 characters", maxLength=100, examples=["widget"])),
                                              _q("category_id", "category id",
                                                 _int_id("an id from `categories`", 9))], auth=False),
        "post": _op("Add an item to a store (members)", _obj({"ok": _t(B), "uuid": UUID, "item": _ref("Item")}),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(name=NAME64, store_uuid=_uuid("the store"), description=DESCRIPTION,
                                       category_id=_int_id("a category id (GET /api/items.php lists them)", 9)),
                               ["name", "store_uuid"])),
    },
    "/api/packages.php": {
        "get": _op("Packages of an item with a live quote per active token",
                   _obj({"packages": _arr(_ref("Package"))}), [400, 404],
                   [_q("item_uuid", "the item", _uuid("an item's uuid"), required=True)], auth=False),
        "post": _op("Add a package priced in USD (members)",
                    _obj({"ok": _t(B), "uuid": UUID, "package": _ref("Package")}), [400, 401, 403, 404, 409],
                    body=_body(_fields(item_uuid=_uuid("the item"), name=NAME64, description=DESCRIPTION,
                                       price_usd=PRICE_USD),
                               ["item_uuid", "name", "price_usd"])),
    },
    "/api/transactions.php": {
        "get": _op("My orders (as buyer or store member; staff: all), newest first; or one order",
                   {"anyOf": [_page("transactions", _ref("Order")), _obj({"transaction": _ref("OrderDetail")})]},
                   [400, 401, 403, 404],
                   PAGE_PARAMS + [_q("uuid", "one order with its histories (404 unless party or staff)",
                                     _uuid("an order's uuid")),
                                  _q("scope", "mine (default), buyer, vendor, all (staff; default for staff)",
                                     {"type": "string", "enum": ["mine", "buyer", "vendor", "all"],
                                      "examples": ["mine"]})]),
        "post": _op("Create an order; the server prices it (a client's required_amount is ignored)",
                    _obj({"ok": _t(B), "uuid": UUID, "escrow_address_pending": _t(B), "required_amount": AMOUNT,
                          "currency": _t(S), "chain_id": _t(N), "price_usd": USD, "usd_rate": _t(S)}),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(package_uuid=_uuid("the package"), currency=CURRENCY,
                                       chain_id=_chain_id("chain id (default 1)"),
                                       refund_address=_address("where a refund goes (default: my profile's)"),
                                       required_amount="ignored (the server prices every order)"),
                               ["package_uuid"]),
                    description="409 when the token's USD rate is older than price_max_age or missing."),
    },
    "/api/transaction-actions.php": {
        "post": _op("Act on an order: release, cancel, partial_refund, dispatch, confirm, dispute",
                    _obj({"ok": _t(B), "action": _t(S), "transaction_uuid": UUID, "intent": INTENT_NAME,
                          "intent_detail": {"anyOf": [_ref("IntentRef"), {"type": "null"}]}}),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(transaction_uuid=_uuid("the order"), action=ACTION,
                                       refund_percent=_percent("partial_refund only: percent of what is left after "
                                                               "the resolver's share that goes to the buyer (100 = "
                                                               "all of it)"),
                                       comment=COMMENT),
                               ["transaction_uuid", "action"]),
                    description="`intent` is the action name of the payout it starts (as the original API "
                                "answers), null when the action moves no funds; `intent_detail` the intent. "
                                "403: not this person; 409: not in this state or a payout already in progress."),
    },
    "/api/payout-actions.php": {
        "get": _op("Payouts needing staff (staff): intents needing attention with their live legs, open staff "
                   "flags, per-chain figures",
                   _obj({"needs_attention": _arr(_ref("PayoutIntent")), "flags": _arr(_ref("StaffFlag")),
                         "chains": _arr(_ref("ChainFigures")), "totals": _ref("PayoutCounts"),
                         "warnings": _arr(_t(S))}), [401, 403]),
        "post": _op("Recover a payout (staff): retry, redirect or abandon an intent that needs attention; "
                    "rescue the funds of a flag",
                    _obj({"ok": _t(B), "action": {"enum": ["retry", "redirect", "abandon", "rescue"]},
                          "intent_uuid": UUID, "status": {"enum": INTENT_STATUSES}, "flag_id": _t(N)},
                         required=["ok", "action", "intent_uuid", "status"]),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(intent_uuid=_uuid("the intent (retry, redirect, abandon)"),
                                       action=_in("what to do", enum=["retry", "redirect", "abandon", "rescue"],
                                                  examples=["retry"]),
                                       payout_id=_int_id("redirect: the failed leg's id"),
                                       to_address=_in("redirect: the new address, EIP-55 checksummed, not the zero "
                                                      "address", pattern=r"^0x(?!0{40}$)[0-9a-fA-F]{40}$",
                                                      minLength=42, maxLength=42, examples=[EXAMPLE_ADDRESS]),
                                       comment=_in("abandon: how the failed legs were settled off-platform, one "
                                                   "line of 1-255 characters", minLength=1, maxLength=255,
                                                   pattern=LINE, examples=["paid by bank transfer"]),
                                       flag_id=_int_id("rescue: the staff flag (wrong_asset, late_funds, dust)")),
                               ["action"]),
                    description="retry: cron re-plans and re-signs the unpaid legs at current fees; redirect: "
                                "the failed leg is paid to to_address; abandon: the failed legs were settled "
                                "off-platform; rescue: a RESCUE intent refunds the flagged asset to the buyer. "
                                "403: not staff, or a party to the order; 409: the intent does not need "
                                "attention, the flag is resolved or not about escrow funds, or the order "
                                "already has an open intent."),
    },
    "/api/disputes.php": {
        "get": _op("Disputes I am party to (all for staff), or one with its claims",
                   {"anyOf": [_page("disputes", _ref("Dispute")), _obj({"dispute": _ref("Dispute")})]},
                   [400, 401, 404], PAGE_PARAMS + [_q("uuid", "one dispute", _uuid("a dispute's uuid")),
                                                   _q("status", "open or resolved",
                                                      {"type": "string", "enum": ["open", "resolved"],
                                                       "examples": ["open"]})]),
        "post": _op("Add a claim (parties, staff) or resolve (staff)",
                    {"anyOf": [_obj({"ok": _t(B), "claim": _ref("Claim")}),
                               _obj({"ok": _t(B), "action": _t(S), "transaction_uuid": UUID,
                                     "intent": INTENT_NAME,
                                     "intent_detail": {"anyOf": [_ref("IntentRef"), {"type": "null"}]},
                                     "dispute_uuid": UUID, "resolution": _t(S)})]},
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(dispute_uuid=_uuid("the dispute"),
                                       claim=_text("a claim, 1-5000 characters (without resolution)", 5000,
                                                   "The box arrived empty", required=True),
                                       resolution=_in("staff: release (to the vendor), refund (all to the buyer; "
                                                      "cancel is the same), partial_refund",
                                                      enum=["release", "refund", "cancel", "partial_refund"],
                                                      examples=["refund"]),
                                       refund_percent=_percent("with partial_refund: percent of what is left after "
                                                               "the resolver's share that goes to the buyer"),
                                       comment=COMMENT),
                               ["dispute_uuid"])),
    },
    "/api/deposits.php": {
        "get": _op("Deposits of my stores, or one with history and withdrawals; all=1: every store's (staff)",
                   {"anyOf": [_page("deposits", _ref("Deposit")), _obj({"deposit": _ref("Deposit")})]},
                   [400, 401, 403, 404], PAGE_PARAMS + [_q("uuid", "one deposit", _uuid("a deposit's uuid")),
                                                   _q("all", "1: every deposit of every store (staff only)",
                                                      {"type": "string", "enum": ["1"], "examples": ["1"]}),
                                                   _q("store_uuid", "one store", _uuid("a store's uuid"))]),
        "post": _op("Open a deposit (store members); cron derives the address",
                    _obj({"ok": _t(B), "uuid": UUID, "deposit": _ref("Deposit")}), [400, 401, 403, 404, 409],
                    body=_body(_fields(store_uuid=_uuid("the store"), currency=CURRENCY,
                                       chain_id=_chain_id("chain id (default 1)")), ["store_uuid"])),
    },
    "/api/deposit-withdraw.php": {
        "post": _op("Withdraw a deposit to the store's payout address (owner)",
                    _obj({"ok": _t(B), "intent": _ref("Withdrawal")}), [400, 401, 403, 404, 409],
                    body=_body(_fields(deposit_uuid=_uuid("the deposit")), ["deposit_uuid"])),
    },
    "/api/store-settings.php": {
        "post": _op("Edit a store's description, payout address and tokens taken (owner)",
                    _obj({"ok": _t(B), "store": _ref("Store")}), [400, 401, 403, 404],
                    body=_body(_fields(store_uuid=_uuid("the store"), description=DESCRIPTION,
                                       payout_address=_address("where releases and withdrawals are paid",
                                                               empty_clears=True),
                                       tokens="CHAIN_ID:SYMBOL list (or comma-separated) of accepted tokens "
                                              "the store takes; empty or 'all' for every one"),
                               ["store_uuid"])),
    },
    "/api/user-settings.php": {
        "get": _op("My addresses", _obj({"username": _t(S), "user_uuid": UUID, "refund_address": ADDRESS_N,
                                         "payout_address": ADDRESS_N}), [401]),
        "post": _op("Set my refund and/or payout address",
                    _obj({"ok": _t(B), "username": _t(S), "user_uuid": UUID, "refund_address": ADDRESS_N,
                          "payout_address": ADDRESS_N}), [400, 401, 403],
                    body=_body(_fields(refund_address=_address("where my refunds go", empty_clears=True),
                                       payout_address=_address("where my referral and resolver shares go",
                                                               empty_clears=True)))),
    },
    "/api/keys.php": {
        "get": _op("My API keys", _obj({"keys": _arr(_ref("ApiKey"))}), [401]),
        "post": _op("Create an API key (shown once)",
                    _obj({"ok": _t(B), "id": _t(N), "name": _t(S), "key_prefix": _t(S), "created_at": TIME,
                          "api_key": _t(S, pattern="^[0-9a-f]{64}$")}, strict=False),
                    [400, 401, 403, 409], body=_body(_fields(name=_line("a label, 1-64 characters", 64, "my agent")),
                                                     ["name"])),
    },
    "/api/keys-revoke.php": {
        "post": _op("Revoke one of my keys", _obj({"ok": _t(B), "id": _t(N)}, required=["ok", "id"], strict=False),
                    [400, 401, 403, 404, 409], body=_body(_fields(id=_int_id("key id (GET /api/keys.php)")), ["id"])),
    },
    "/api/sessions.php": {
        "get": _op("My active sessions (device, IP, created, last seen; `current` marks this one)",
                   _obj({"sessions": _arr(_obj({"id": _t(N), "device": _t(S), "user_agent": _t(S, True),
                                                "ip": _t(S, True), "created_at": _t(S), "last_seen_at": _t(S),
                                                "expires_at": _t(S), "current": _t(B)},
                                               required=["id", "device", "created_at", "last_seen_at",
                                                         "current"]))}), [401]),
    },
    "/api/sessions-end.php": {
        "post": _op("End one of my sessions (someone else's or unknown: 404)",
                    _obj({"ok": _t(B), "id": _t(N), "ended": _t(B)}, required=["ok", "id"], strict=False),
                    [400, 401, 403, 404], body=_body(_fields(id=_int_id("session id (GET /api/sessions.php)")), ["id"])),
    },
    "/api/auth-user.php": {
        "get": _op("Who am I", _obj({"username": _t(S), "role": _t(S), "user_uuid": UUID, "csrf_token": _t(S)},
                                    required=["username", "role", "user_uuid"]), [401]),
    },
    "/admin/tokens.php": {
        "get": _op("Accepted tokens (admin)", _obj({"tokens": _arr(_ref("Token"))}), [401, 403]),
        "post": _op("Add an accepted token (admin); unverified until cron verifies it",
                    dict(copy.deepcopy(SCHEMAS["Token"]), properties=dict(
                        SCHEMAS["Token"]["properties"], ok=_t(B), token=_ref("Token")),
                        required=sorted(SCHEMAS["Token"]["required"] + ["ok", "token"])),
                    [400, 401, 403, 409],
                    body=_body(_fields(chain_id=_chain_id("1, 11155111, 8453, 137 (31337 with ALLOW_DEV_CHAIN=1)"),
                                       symbol=SYMBOL,
                                       contract_address=_address("the ERC-20 contract; empty for the chain's native "
                                                                 "coin", empty_clears=True),
                                       decimals=_in("0-36 (ERC-20 only, optional; cron reads decimals())",
                                                    kind="integer", minimum=0, maximum=36, examples=[6]),
                                       manual_usd_price=MANUAL_USD),
                               ["chain_id", "symbol"]),
                    description="The token's fields are at the top level (the original's shape, with `id`) "
                                "and again under `token`."),
    },
    "/admin/tokens-remove.php": {
        "post": _op("Remove an accepted token (admin)", _obj({"ok": _t(B), "id": _t(N)}), [400, 401, 403, 404],
                    body=_body(_fields(id=_int_id("token id (GET /admin/tokens.php)")), ["id"])),
    },
    "/admin/config.php": {
        "get": _op("All config keys with values (admin): the original's flat object, plus `config` and `keys`",
                   _obj(dict(_config_values(), config={"type": "object", "additionalProperties": _t(S)},
                             keys=_arr(_ref("ConfigKey")))), [401, 403]),
        "post": _op("Set config keys (admin): known keys only, each validated, all or nothing",
                    _obj(dict(_config_values(), ok=_t(B),
                              changed={"type": "object", "additionalProperties": _t(S)},
                              config={"type": "object", "additionalProperties": _t(S)},
                              keys=_arr(_ref("ConfigKey")))), [400, 401, 403],
                    body={"required": True, "content": {
                        ctype: {"schema": {"type": "object", "properties": dict(CSRF, **_config_props()),
                                           "additionalProperties": False, "minProperties": 1,
                                           "description": "config key -> value, e.g. price_max_age=15m; "
                                                          "unknown keys are refused"}}
                        for ctype in ("application/x-www-form-urlencoded", "application/json")}}),
    },
    "/admin/users.php": {
        "get": _op("List users (admin)", _page("users", _ref("User")), [400, 401, 403],
                   PAGE_PARAMS + [_q("q", "name contains", _in("at most 16 characters", maxLength=16, examples=["ali"])),
                                  _q("role", "one role", _in("a role", enum=list(ROLES), examples=["vendor"]))]),
        "post": _op("Set a user's role, ban and/or right to open stores (admin)", _obj({"ok": _t(B), "user": _ref("User")}),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(user_uuid=_uuid("the user"), username=dict(USERNAME, description="or the "
                                                                                 "user's name: " + USERNAME["description"]),
                                       role=_in("the new role", enum=list(ROLES), examples=["staff"]),
                                       banned=_in("1 bans, 0 unbans",
                                                  enum=["1", "0", "true", "false", "yes", "no", "on", "off"],
                                                  examples=["1"]),
                                       can_sell=_in("1 lets the user open stores, 0 refuses it (existing "
                                                    "stores stay)",
                                                    enum=["1", "0", "true", "false", "yes", "no", "on", "off"],
                                                    examples=["0"])))),
    },
}


# -- signed webhooks (lib/webhooks.py, cron/webhooks.py) --
_EVENT = {"enum": ["order.created", "order.partially_paid", "order.paid", "order.dispatched", "order.confirmed",
                   "order.released", "order.cancelled", "order.failed", "dispute.opened", "dispute.claim_added",
                   "dispute.resolved", "payout.needs_attention", "message.created", "ticket.answered"]}
SCHEMAS["Webhook"] = _obj({"id": _t(N), "url": _t(S), "events": _arr(_EVENT), "store_uuid": UUID_N,
                           "owner_user_uuid": UUID, "description": STR_N, "status": {"enum": ["active", "failing"]},
                           "consecutive_failures": _t(N), "secret_prefix": _t(S), "last_success_at": TIME_N,
                           "last_failure_at": TIME_N, "created_at": TIME})
SCHEMAS["WebhookDelivery"] = _obj({
    "id": _t(N), "webhook_id": _t(N), "event_id": UUID, "event_type": _EVENT, "transaction_uuid": UUID_N,
    "status": {"enum": ["pending", "delivered", "failing"]}, "attempts": _t(N), "next_attempt_at": TIME_N,
    "last_status_code": INT_N, "last_error": STR_N, "delivered_at": TIME_N, "created_at": TIME, "updated_at": TIME,
    "attempt_log": _arr(_obj({"attempt": _t(N), "started_at": TIME, "duration_ms": INT_N, "status_code": INT_N,
                              "error": STR_N, "outcome": {"enum": ["delivered", "retry", "failed"]}}))})
PATHS.update({
    "/api/webhooks.php": {
        "get": _op("My webhook endpoints and my stores'", _obj({"webhooks": _arr(_ref("Webhook"))}), [401]),
        "post": _op("Register a webhook endpoint (the signing secret is shown once)",
                    _obj({"ok": _t(B), "webhook": _ref("Webhook"), "secret": _t(S, pattern="^whsec_[0-9a-f]{64}$")}),
                    [400, 401, 403, 404, 409], description=(
                        "Events are POSTed by cron as {id, type, created_at, data} with X-Marketplace-Signature: "
                        "t=UNIX_TIME,v1=HEX(HMAC-SHA256(secret, UNIX_TIME + '.' + body)); retried on network errors, "
                        "408, 429 and 5xx (10 s, 1 min, then every 10 min, 8 tries). URLs resolving to loopback, "
                        "private or link-local addresses are refused unless WEBHOOK_ALLOW_PRIVATE=1."),
                    body=_body(dict(_fields(url=_in("http(s) URL of a public address", maxLength=2048,
                                                    examples=["https://hooks.example.com/marketplace"]),
                                            store_uuid=_uuid("optional: an endpoint of this store"),
                                            description=_line("a label", 255, "orders bot")),
                                    events={"anyOf": [_arr(_EVENT), _t(S)],
                                            "description": "list or comma-separated; empty or * = all"}), ["url"])),
    },
    "/api/webhooks-delete.php": {
        "post": _op("Delete a webhook endpoint", _obj({"ok": _t(B), "id": _t(N), "deleted": _t(B)}),
                    [400, 401, 403, 404], body=_body(_fields(id=_int_id("webhook id")), ["id"])),
    },
    "/api/webhook-deliveries.php": {
        "get": _op("An endpoint's deliveries with their attempt logs, newest first",
                   _obj({"webhook": _ref("Webhook"), "deliveries": _arr(_ref("WebhookDelivery")), "limit": _t(N),
                         "offset": _t(N)}), [400, 401, 404],
                   PAGE_PARAMS + [_q("webhook_id", "the endpoint", {"type": "integer", "minimum": 1}, True)]),
    },
    "/api/webhook-redeliver.php": {
        "post": _op("Send an event again (same event id and body)",
                    _obj({"ok": _t(B), "deliveries": _arr(_ref("WebhookDelivery"))}), [400, 401, 403, 404, 409],
                    body=_body(_fields(delivery_id=_int_id("a delivery id"), event_id=_uuid("or an event uuid"),
                                       webhook_id=_int_id("optional, with event_id: only this endpoint")))),
    },
})


# -- exports: streamed CSV or JSON of a date range --------------------------------
_DATE = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
PATHS.update({
    "/api/exports.php": {
        "get": {**_op(
            "Export a date range as CSV or JSON, streamed: my stores' sales, or (staff) every order, "
            "payout, commission, referral payment or dispute outcome",
            _obj({"kind": {"enum": ["sales", "orders", "payouts", "commissions", "referrals", "disputes"]},
                  "from": _DATE, "to": _DATE,
                  "rows": _arr({"type": "object", "description": "one object per row, the CSV's columns "
                                                                  "(sales and orders: `payouts` lists each leg "
                                                                  "with its tx_hash)"})}),
            [400, 401, 403, 404],
            [_q("kind", "sales (default), or for staff orders, payouts, commissions, referrals, disputes",
                {"type": "string", "enum": ["sales", "orders", "payouts", "commissions", "referrals", "disputes"]}),
             _q("from", "first day, UTC, on the rows' created_at", dict(_DATE, examples=["2026-03-01"]), True),
             _q("to", "last day (included), not before from", dict(_DATE, examples=["2026-03-31"]), True),
             _q("format", "csv (default) or json", {"type": "string", "enum": ["csv", "json"]}),
             _q("store_uuid", "sales: only this store of mine (default: all my stores)",
                _uuid("a store of mine"))],
            description="Rows are read in chunks and sent as they come (no Content-Length); the CSV has a "
                        "header row, amounts are decimal strings in token units, cells starting with = + - @ "
                        "get a leading apostrophe."),
        },
    },
})
_export_ok = PATHS["/api/exports.php"]["get"]["responses"]["200"]
_export_ok["content"]["text/csv"] = {"schema": {"type": "string", "description": "the CSV file (format=csv)"}}
# -- messages and notifications (lib/messages.py, lib/notifications.py) --
_PEER = {"anyOf": [_obj({"uuid": UUID, "username": _t(S)}), {"type": "null"}]}
SCHEMAS["Message"] = _obj({"id": _t(N), "thread_uuid": UUID, "sender_uuid": UUID, "sender_username": STR_N,
                           "body": _t(S), "created_at": TIME})
SCHEMAS["Thread"] = _obj({"uuid": UUID_N, "kind": {"enum": ["private", "order"]}, "transaction_uuid": UUID_N,
                          "peer": _PEER})
SCHEMAS["Conversation"] = _obj({
    "uuid": UUID, "kind": {"enum": ["private", "order"]}, "transaction_uuid": UUID_N, "peer": _PEER,
    "order": {"anyOf": [_obj({"uuid": UUID, "storename": STR_N, "buyer_username": STR_N}), {"type": "null"}]},
    "unread": _t(N, minimum=0), "updated_at": TIME, "link": _t(S),
    "last_message": _obj({"sender_uuid": UUID, "sender_username": STR_N, "created_at": TIME,
                          "preview": _t(S, description="the first 200 characters")})})
SCHEMAS["BlockedUser"] = _obj({"uuid": UUID, "username": _t(S), "created_at": TIME})
SCHEMAS["Notification"] = _obj({"id": _t(N), "kind": _t(S), "text": _t(S), "link": STR_N, "created_at": TIME,
                                "read": _t(B), "read_at": TIME_N})
MESSAGE_BODY = _text("the message, 1-10000 characters (newlines kept)", 10000, "Hello, is this still available?",
                     required=True)
PATHS.update({
    "/api/messages.php": {
        "get": _op("My conversations, a conversation with a user, or an order's thread",
                   {"anyOf": [_obj({"conversations": _arr(_ref("Conversation")), "blocked": _arr(_ref("BlockedUser")),
                                    "limit": _t(N), "offset": _t(N)}),
                              _obj({"thread": _ref("Thread"), "peer": _obj({"uuid": UUID, "username": _t(S)}),
                                    "messages": _arr(_ref("Message")), "blocked_by_me": _t(B)}),
                              _obj({"thread": _ref("Thread"), "can_post": _t(B), "messages": _arr(_ref("Message")),
                                    "order": _obj({"uuid": UUID, "storename": _t(S), "store_uuid": UUID,
                                                   "buyer_uuid": UUID, "buyer_username": _t(S)})})]},
                   [400, 401, 404],
                   PAGE_PARAMS + [_q("with", "a conversation with this user (marks it read)", USERNAME),
                                  _q("transaction_uuid", "the order's thread (marks it read)",
                                     _uuid("an order's uuid")),
                                  _q("thread", "a thread by its uuid (either kind)", _uuid("a thread's uuid"))],
                   description="Messages come oldest first; limit/offset count from the newest. An order's thread "
                               "is seen by its buyer and its store's members, and by staff once the order was "
                               "disputed; to anyone else it does not exist (404)."),
        "post": _op("Send a private message or write in an order's thread; block or unblock a user",
                    {"anyOf": [_obj({"ok": _t(B), "message": _ref("Message"), "thread": _ref("Thread")}),
                               _obj({"ok": _t(B), "blocked": _arr(_ref("BlockedUser"))})]},
                    [400, 401, 403, 404, 429],
                    body=_body(_fields(to=dict(USERNAME, description="the recipient (a private message)"),
                                       transaction_uuid=_uuid("or the order whose thread to write in"),
                                       body=MESSAGE_BODY,
                                       action=_in("send (default), block or unblock",
                                                  enum=["send", "block", "unblock"], examples=["send"]),
                                       username=dict(USERNAME, description="block/unblock: the user"))),
                    description="403: either of you blocked the other (nothing is sent), or staff write in an "
                                "order's thread whose dispute is not open. 429: more than 30 messages in 10 "
                                "minutes (Retry-After). A new message notifies its recipients in the app, by email "
                                "where they turned it on, and by the message.created webhook event."),
    },
    "/api/notifications.php": {
        "get": _op("My notifications, newest first, and the unread count",
                   _obj({"notifications": _arr(_ref("Notification")), "unread": _t(N, minimum=0), "limit": _t(N),
                         "offset": _t(N)}), [400, 401],
                   PAGE_PARAMS + [_q("unread", "1: only unread ones",
                                     {"type": "string", "enum": ["0", "1"], "examples": ["1"]})]),
        "post": _op("Mark one notification read, or all of them",
                    {"anyOf": [_obj({"ok": _t(B), "notification": _ref("Notification")}),
                               _obj({"ok": _t(B), "marked": _t(N, minimum=0)})]}, [400, 401, 404],
                    body=_body(_fields(id=_int_id("the notification"),
                                       all=_in("1: mark every unread one read", enum=["1"], examples=["1"])))),
    },
})
# -- reviews, ratings and item images ---------------------------------------------
SCHEMAS["Rating"] = _obj({"average": _t(S, nullable=True, pattern=r"^[1-5]\.[0-9]{2}$",
                                        description="exact mean of the visible scores, 2 places; null: none"),
                          "count": _t(N, description="visible reviews")})
SCHEMAS["Review"] = _obj({
    "uuid": UUID, "store_uuid": UUID, "storename": _t(S), "item_uuid": UUID, "item_name": _t(S),
    "score": _t(N, minimum=1, maximum=5), "body": STR_N, "reply": STR_N, "replied_at": TIME_N, "created_at": TIME,
    # the writer and staff only
    "transaction_uuid": UUID, "hidden": _t(B), "hidden_reason": STR_N, "hidden_at": TIME_N},
    required=["uuid", "store_uuid", "storename", "item_uuid", "item_name", "score", "body", "reply",
              "replied_at", "created_at"])
SCHEMAS["ItemImage"] = _obj({
    "uuid": UUID, "item_uuid": UUID, "position": _t(N, description="1 = the card's image"),
    "format": {"enum": ["image/jpeg", "image/png", "image/webp"]}, "width": _t(N), "height": _t(N),
    "bytes": _t(N), "url": _t(S, description="the re-encoded image"),
    "thumb_url": _t(S, description="a thumbnail of at most 400x400"), "created_at": TIME})
SCHEMAS["Store"]["properties"]["rating"] = _ref("Rating")
SCHEMAS["Item"]["properties"].update({
    "image": {"anyOf": [_ref("ItemImage"), {"type": "null"}], "description": "the first image (the card's)"},
    "images": _arr(_ref("ItemImage")), "rating": _ref("Rating"),
    "price_from_usd": {"type": ["string", "null"], "pattern": r"^[0-9]+\.[0-9]{2}$",
                       "description": "the cheapest active package's price; null: no package"}})
PATHS["/api/items.php"]["get"]["parameters"].append(
    _q("sort", "order of the list (default newest)",
       _in("newest, price_asc, price_desc (cheapest package) or rating (mean score)",
           enum=["newest", "price_asc", "price_desc", "rating"], examples=["price_asc"])))
SCORE = _in("a whole number from 1 to 5 (JSON: a string or an integer)", pattern="^[1-5]$", examples=["5"])
PATHS.update({
    "/api/reviews.php": {
        "get": _op("Reviews of a store or an item with its rating; one review; my reviews; an order's review",
                   {"anyOf": [_obj({"reviews": _arr(_ref("Review")), "rating": _ref("Rating"), "limit": _t(N),
                                    "offset": _t(N)}),
                              _page("reviews", _ref("Review")), _obj({"review": _ref("Review")}),
                              _obj({"order": _obj({"uuid": UUID, "status": _t(S), "may_review": _t(B)}),
                                    "review": {"anyOf": [_ref("Review"), {"type": "null"}]}})]},
                   [400, 401, 404],
                   PAGE_PARAMS + [_q("store_uuid", "reviews of a store", _uuid("a store's uuid")),
                                  _q("item_uuid", "reviews of an item", _uuid("an item's uuid")),
                                  _q("uuid", "one review", _uuid("a review's uuid")),
                                  _q("transaction_uuid", "my order's review and whether I may write one "
                                                         "(the buyer only)", _uuid("an order's uuid")),
                                  _q("mine", "1: the reviews I wrote (needs auth)")], auth=False,
                   description="Hidden reviews leave the lists and ratings; staff see them with the reason. "
                               "Public lists never name the reviewer."),
        "post": _op("Review a released order (its buyer, once), answer a review (the store, once) or hide "
                    "one (staff, audited)", _obj({"ok": _t(B), "review": _ref("Review")}),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(
                        action=_in("add, reply or hide", enum=["add", "reply", "hide"], examples=["add"]),
                        transaction_uuid=_uuid("add: the RELEASED order"), score=SCORE,
                        body=_text("add: the review, at most 2000 characters", 2000, "Fast and as described"),
                        review_uuid=_uuid("reply, hide: the review"),
                        reply=_text("reply: the store's answer, at most 2000 characters", 2000, "Thank you!"),
                        reason=_line("hide: why (kept in the audit log), at most 255 characters", 255,
                                     "personal data")), ["action"])),
    },
    "/api/item-images.php": {
        "get": _op("An item's images, the card's first", _obj({"images": _arr(_ref("ItemImage"))}), [400, 404],
                   [_q("item_uuid", "the item", _uuid("an item's uuid"), required=True)], auth=False),
        "post": {**_op("Upload an item image (multipart), remove one or reorder them (store members)",
                       {"anyOf": [_obj({"ok": _t(B), "image": _ref("ItemImage")}),
                                  _obj({"ok": _t(B), "images": _arr(_ref("ItemImage"))})]},
                       [400, 401, 403, 404, 409],
                       body=_body(_fields(
                           action=_in("remove or reorder (an upload is multipart/form-data without action)",
                                      enum=["add", "remove", "reorder"], examples=["reorder"]),
                           item_uuid=_uuid("the item"), image_uuid=_uuid("remove: the image"),
                           order="reorder: every image uuid of the item once, comma-separated (JSON: a "
                                 "list), first shown first"))),
                 "description": "An upload is multipart/form-data with `item_uuid` and the file in `image`: "
                                "JPEG, PNG or WebP, at most 5 MB (the whole body at most 6 MiB, else 413), at "
                                "most 25 megapixels; at most 5 images per item (409). The image is decoded "
                                "and re-encoded without its metadata, with a thumbnail. Anything else is a "
                                "400 naming `image`, and nothing is stored."},
    },
})
PATHS["/api/item-images.php"]["post"]["requestBody"]["content"]["multipart/form-data"] = {"schema": {
    "type": "object", "required": ["item_uuid", "image"],
    "properties": {"item_uuid": {"type": "string", "format": "uuid"},
                   "image": {"type": "string", "contentMediaType": "image/*", "description": "the file"},
                   "csrf_token": CSRF["csrf_token"]}}}


def _with_common_errors(paths):
    """Any request may carry an API key: an invalid one is 401, too many requests 429;
    any POST body over 1 MiB is refused with 413."""
    paths = copy.deepcopy(paths)
    for path, ops in paths.items():
        if path in PUBLIC_DOCS:
            continue
        for method, op in ops.items():
            for code in (401, 429) + ((413,) if method == "post" else ()):
                op["responses"].setdefault(str(code), {
                    "description": ERROR_TEXT[code], "content": {"application/json": {"schema": _ref("Error")}}})
            op["responses"] = dict(sorted(op["responses"].items()))
    return paths


def _current_chain_ids(paths):
    """Every chain_id input lists the chains accepted now (ALLOW_DEV_CHAIN is read per request)."""
    ids = chain_ids()
    for ops in paths.values():
        for op in ops.values():
            schemas = [p.get("schema", {}) for p in op.get("parameters", []) if p["name"] == "chain_id"]
            for content in op.get("requestBody", {}).get("content", {}).values():
                prop = content.get("schema", {}).get("properties", {}).get("chain_id")
                if prop:
                    schemas.append(prop)
            for schema in schemas:
                if "enum" in schema:
                    schema["enum"] = list(ids)
    return paths


def document():
    """The OpenAPI document as a dict (a fresh copy)."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {"title": "Marketplace API", "version": "1.0",
                 "description": "Escrow marketplace JSON API. Every path also works without the .php suffix. "
                                "Amounts are decimal strings in token units; times are UTC "
                                "YYYY-MM-DD HH:MM:SS. Errors are {\"error\": message}. POST bodies are "
                                "form-encoded or JSON. List endpoints take limit (<= 200) and offset."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKeyHeader": []}, {"apiKeyQuery": []}, {"session": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "browser session; a state-changing request with a browser "
                                           "signal (Origin, Referer, Sec-Fetch-*) needs csrf_token"},
            },
            "schemas": SCHEMAS,
        },
        "paths": _current_chain_ids(_with_common_errors(PATHS)),
    })


# -- scoped API keys: x-scope per operation, and the key fields -----------------
_document_without_scopes = document


def document():
    """The OpenAPI document with each operation's `x-scope` (lib/scopes.py) and the scope
    fields of API keys."""
    doc = _document_without_scopes()
    key_fields = {"scopes": _arr({"type": "string", "enum": list(scopes.SCOPES)}),
                  "store_uuid": UUID_N}
    doc["components"]["schemas"]["ApiKey"]["properties"].update(key_fields)
    doc["components"]["schemas"]["ApiKey"]["required"] = sorted(doc["components"]["schemas"]["ApiKey"]["properties"])
    keys_post = doc["paths"]["/api/keys.php"]["post"]
    keys_post["responses"]["200"]["content"]["application/json"]["schema"]["properties"].update(key_fields)
    for media in keys_post["requestBody"]["content"].values():
        media["schema"]["properties"].update({
            "scopes": {"description": "read, orders, store, full (default full): a list, or comma-separated",
                       "oneOf": [{"type": "string", "maxLength": 64},
                                 _arr({"type": "string", "enum": list(scopes.SCOPES)})]},
            "store_uuid": {"type": "string", "format": "uuid",
                           "description": "limit the store scope to one of my stores"}})
    return scopes.annotate_openapi(doc)


# -- support tickets and store warnings; email settings, categories and the
# vendorship agreement as JSON --
_TICKET_STATUS = {"enum": ["open", "answered", "closed"]}
SCHEMAS["Ticket"] = _obj({"uuid": UUID, "user_uuid": UUID, "username": _t(S), "subject": _t(S),
                          "transaction_uuid": UUID_N, "assigned_to": UUID_N, "assigned_username": STR_N,
                          "status": _TICKET_STATUS, "created_at": TIME, "updated_at": TIME})
SCHEMAS["TicketDetail"] = _obj(dict(SCHEMAS["Ticket"]["properties"], messages=_arr(_obj({
    "id": _t(N), "author_uuid": UUID, "author_username": _t(S), "staff_reply": _t(B), "body": _t(S),
    "created_at": TIME})), statuses=_arr(_obj({"status": _TICKET_STATUS, "comment": STR_N, "created_at": TIME,
                                               "changed_by_username": STR_N}))))
SCHEMAS["StoreWarning"] = _obj({"id": _t(N), "reason": _t(S), "created_at": TIME})
SCHEMAS["StoreWarningDetail"] = _obj({"id": _t(N), "store_uuid": UUID, "storename": _t(S), "reason": _t(S),
                                      "created_at": TIME, "created_by_username": STR_N, "retired_at": TIME_N,
                                      "retired_by_username": STR_N})
SCHEMAS["CategoryNode"] = _obj({"id": _t(N), "name": _t(S), "parent_id": INT_N, "depth": _t(N), "path": _t(S),
                                "items": _t(N), "children": _t(N)})
_AGREEMENT_STATE = {
    "agreement": {"anyOf": [_obj({"version": _t(N), "body": _t(S), "created_at": TIME}), {"type": "null"}]},
    "history": _arr(_obj({"version": _t(N), "created_at": TIME})),
    "stores": _arr(_obj({"uuid": UUID, "storename": _t(S), "agreement_version": INT_N,
                         "agreement_accepted_at": TIME_N, "accepted": _t(B)}))}
_MAIL_KINDS = ("order.paid", "order.dispatched", "order.released", "dispute", "message")     # lib.mail.KINDS
_EMAIL_STATE = {"enabled": _t(B), "email": STR_N, "email_verified_at": TIME_N, "pending_email": STR_N,
                "notifications": _obj({k: _t(B) for k in _MAIL_KINDS}, required=[])}
_SWITCH = _in("1 on, 0 off (not sent: unchanged)", enum=["1", "0", "true", "false", "on", "off", "yes", "no"],
              examples=["0"])
PATHS.update({
    "/api/tickets.php": {
        "get": _op("My support tickets, the staff queue (queue=1), or one ticket with its thread (uuid=)",
                   {"anyOf": [_page("tickets", _ref("Ticket")), _obj({"ticket": _ref("TicketDetail")})]},
                   [400, 401, 403, 404],
                   PAGE_PARAMS + [_q("uuid", "one ticket (the opener or staff; else 404)", _uuid("a ticket's uuid")),
                                  _q("queue", "1: every ticket (staff)", _in("0 or 1", enum=["0", "1"],
                                                                            examples=["1"])),
                                  _q("status", "with queue=1: one status", _in(
                                      "open, answered, closed or all", enum=["open", "answered", "closed", "all"],
                                      examples=["open"]))]),
        "post": _op("Open a ticket, reply, or (staff) assign or close one",
                    _obj({"ok": _t(B), "ticket": _ref("TicketDetail")}), [400, 401, 403, 404, 409],
                    description="A staff member's reply makes the ticket answered; the opener's reply to an "
                                "answered ticket opens it again; a closed ticket takes no replies (409). Only the "
                                "opener and staff see a ticket (404 for anyone else). Staff actions are audited.",
                    body=_body(_fields(action=_in("what to do", enum=["create", "reply", "assign", "close"],
                                                  examples=["create"]),
                                       subject=_line("create: one line, 1-200 characters", 200, "Where is my parcel?"),
                                       body=_text("create, reply: 1-10000 characters", 10000, "It has been a week.",
                                                  required=True),
                                       transaction_uuid=_uuid("create, optional: an order I am the buyer of or a "
                                                              "store member of"),
                                       uuid=_uuid("reply, assign, close: the ticket"),
                                       assignee=_in("assign: a staff member's username (404 if there is no "
                                                    "such staff member), empty for nobody", maxLength=64,
                                                    examples=["staff1"]),
                                       comment=_in("close, optional: a note, one line", maxLength=255,
                                                   pattern=r"^[^\x00-\x1f\x7f]*$", examples=["solved"])),
                               ["action"])),
    },
    "/api/store-warnings.php": {
        "get": _op("A store's active warnings (store_uuid=, anyone), or every warning (staff)",
                   {"anyOf": [_obj({"warnings": _arr(_ref("StoreWarning"))}),
                              _page("warnings", _ref("StoreWarningDetail"))]}, [400, 401, 403, 404],
                   PAGE_PARAMS + [_q("store_uuid", "one store's active warnings", _uuid("a store's uuid")),
                                  _q("retired", "staff list: 1 includes retired warnings",
                                     _in("0 or 1", enum=["0", "1"], examples=["1"]))], auth=False),
        "post": _op("Add a warning to a store, or retire one (staff; audited)",
                    _obj({"ok": _t(B), "warning": _ref("StoreWarningDetail")}), [400, 401, 403, 404, 409],
                    body=_body(_fields(action=_in("add or retire", enum=["add", "retire"], examples=["add"]),
                                       store=_in("add: the store's name or uuid", maxLength=64, examples=["my-shop"]),
                                       reason=_text("add: shown on the store page, 1-2000 characters", 2000,
                                                    "Ships late", required=True),
                                       id=_int_id("retire: the warning's id")), ["action"])),
    },
    "/api/email-settings.php": {
        "get": _op("My email address and notification mails (enabled: false when email is not configured)",
                   _obj(_EMAIL_STATE), [401]),
        "post": _op("Add (a verification link is mailed), verify, remove my address; turn notification kinds on "
                    "or off (404 when email is not configured)",
                    _obj(dict(_EMAIL_STATE, ok=_t(B))), [400, 401, 403, 404],
                    body=_body(dict(_fields(action=_in("what to do", enum=["add", "verify", "remove",
                                                                            "notifications"], examples=["add"]),
                                            email={"type": "string", "examples": ["me@example.com"],
                                                   "description": "add: the address (at most 254 characters)"},
                                            code=_in("verify: the code of the mailed link", minLength=20,
                                                     maxLength=100, pattern=r"^[A-Za-z0-9_\-]+$",
                                                     examples=["x" * 43])),
                                    **{k: dict(_SWITCH, description=f"notifications: mails for {k} "
                                                                    "(1 on, 0 off; not sent: unchanged)")
                                       for k in _MAIL_KINDS}), ["action"])),
    },
    "/api/categories.php": {
        "get": _op("The item categories as a tree (depth-first: a parent before its subcategories)",
                   _obj({"categories": _arr(_ref("CategoryNode"))}), [], auth=False),
        "post": _op("Staff: add, rename, move or remove a category (remove only when unused: 409)",
                    _obj({"ok": _t(B), "action": _t(S), "category": _ref("Category"),
                          "categories": _arr(_ref("CategoryNode"))}), [400, 401, 403, 409],
                    body=_body(_fields(action=_in("what to do", enum=["add", "rename", "move", "remove"],
                                                  examples=["add"]),
                                       name=_in("add, rename: 1-64 characters, one line, no '/'", minLength=1,
                                                maxLength=64, pattern=r"^[^/\x00-\x1f\x7f]*$", examples=["Books"]),
                                       parent_id=_in("add, move: the parent's id, empty for the top level",
                                                     pattern="^([0-9]{1,9})?$", examples=["1"]),
                                       category_id=_in("rename, move, remove: the category's id",
                                                       pattern="^[0-9]{1,9}$", examples=["1"])), ["action"])),
    },
    "/api/agreement.php": {
        "get": _op("The vendorship agreement: the current text and version, the versions, and my stores' "
                   "acceptance", _obj(_AGREEMENT_STATE), [], auth=False),
        "post": _op("Accept the current version (store owner) or publish a new one (admin)",
                    _obj(dict(_AGREEMENT_STATE, ok=_t(B), version=_t(N))), [400, 401, 403, 409],
                    body=_body(_fields(action=_in("accept or publish", enum=["accept", "publish"],
                                                  examples=["accept"]),
                                       version=_in("accept, optional: the version read (409 if it changed)",
                                                   pattern="^[0-9]{1,9}$", examples=["1"]),
                                       body=_text("publish: the new text, 1-20000 characters", 20000,
                                                  "Ship within three days.", required=True)), ["action"])),
    },
    "/api/recovery-codes.php": {
        "get": _op("How many unused recovery codes I have", _obj({"codes_left": _t(N)}), [401]),
        "post": _op("A new set of 10 recovery codes, shown only in this answer (the old set stops working)",
                    _obj({"ok": _t(B), "codes_left": _t(N),
                          "recovery_codes": _arr(_t(S, pattern=r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$"))}),
                    [400, 401, 403], description="Each code resets the password once at POST /recover.php, or "
                                                 "stands in for a two-factor code at login once.",
                    body=_body(_fields(password={"type": "string", "description": "my current password"}),
                               ["password"])),
    },
    "/api/two-factor.php": {
        "get": _op("My two-factor login: on, a key waiting for its first code, required of me",
                   _obj({"enabled": _t(B), "pending": _t(B), "required": _t(B)}), [401]),
        "post": _op("Two-factor login: begin (a new key, shown once), confirm it with a first code, or disable",
                    _obj({"ok": _t(B), "enabled": _t(B), "pending": _t(B), "required": _t(B), "secret": _t(S),
                          "otpauth_uri": _t(S)}, required=["ok", "enabled", "pending", "required"]),
                    [400, 401, 403, 409],
                    description="After confirm, logging in needs `otp` too (a current code, once, or a recovery "
                                "code). API keys are not affected.",
                    body=_body(_fields(action=_in("what to do", enum=["begin", "confirm", "disable"],
                                                  examples=["begin"]),
                                       otp=_in("confirm: the app's current 6-digit code; disable: a code or a "
                                               "recovery code", maxLength=64, examples=["123456"])), ["action"])),
    },
    "/api/plan.php": {
        "get": _op("The store tiers and their commission (and the referrer's part of it) from the config",
                   _obj({"tiers": _arr(_obj({"tier": {"enum": ["gold", "silver", "bronze", "free"]},
                                             "commission": _t(S), "referral_percent": _t(S),
                                             "commission_percent": _t(S), "referral_share_percent": _t(S),
                                             "meaning": _t(S)}))}), [], auth=False),
    },
})
# a store's detail also carries its active warnings (GET /api/stores.php?uuid=)
PATHS["/api/stores.php"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"][2] = \
    _obj({"store": _ref("Store"), "warnings": _arr(_ref("StoreWarning"))})
