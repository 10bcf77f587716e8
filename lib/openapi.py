"""The OpenAPI 3.1 description of every JSON endpoint (served at /api/openapi.json).

tests/test_openapi.py calls every operation (success and error answers) and checks
each real response against this document, and that every JSON script under
public/api/ and public/admin/ is described here, so the two cannot drift apart.
"""
import copy

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

SCHEMAS = {
    "Error": _obj({"error": _t(S)}),
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
    "Intent": _obj({"uuid": UUID, "action": {"enum": ["RELEASE", "CANCEL", "PARTIAL_REFUND"]},
                    "status": {"enum": ["pending", "processing", "completed", "failed"]},
                    "refund_percent": _t(N, nullable=True), "error": STR_N, "attempts": _t(N),
                    "created_at": TIME, "updated_at": TIME}),
    "IntentRef": _obj({"uuid": UUID, "action": {"enum": ["RELEASE", "CANCEL", "PARTIAL_REFUND"]},
                       "status": _t(S), "refund_percent": _t(N, nullable=True)}),
    "Payout": _obj({"kind": _t(S), "recipient_role": _t(S), "to_address": _t(S), "amount": AMOUNT,
                    "currency": _t(S), "tx_hash": _t(S), "status": _t(S), "block_number": _t(N, nullable=True),
                    "created_at": TIME, "updated_at": TIME, "explorer_url": STR_N}),
    "DisputeRef": _obj({"uuid": UUID, "status": {"enum": ["open", "resolved"]}, "resolution": STR_N,
                        "refund_percent": _t(N, nullable=True), "created_at": TIME, "resolved_at": TIME_N}),
    "Dispute": _obj({"uuid": UUID, "transaction_uuid": UUID, "opened_by": UUID, "opened_by_username": STR_N,
                     "status": {"enum": ["open", "resolved"]},
                     "resolution": {"enum": ["release", "refund", "partial_refund", None]},
                     "refund_percent": _t(N, nullable=True), "resolved_by": UUID_N, "created_at": TIME,
                     "resolved_at": TIME_N, "store_uuid": UUID, "storename": _t(S), "buyer_uuid": UUID,
                     "buyer_username": _t(S), "claims": _arr(_ref("Claim"))},
                    required=["uuid", "transaction_uuid", "status", "resolution", "created_at"]),
    "Claim": _obj({"id": _t(N), "dispute_uuid": UUID, "user_uuid": UUID, "username": STR_N, "claim": _t(S),
                   "created_at": TIME}, required=["id", "user_uuid", "username", "claim", "created_at"]),
    "Deposit": _obj({"uuid": UUID, "store_uuid": UUID, "storename": _t(S), "chain_id": _t(N), "currency": _t(S),
                     "token_contract": _t(S), "decimals": _t(N), "address": ADDRESS_N, "address_pending": _t(B),
                     "balance": AMOUNT, "open_withdrawal": UUID_N, "created_at": TIME, "updated_at": TIME,
                     "history": _arr(_obj({"time": TIME, "event": _t(S), "balance": AMOUNT, "comment": STR_N})),
                     "withdrawals": _arr(_obj({"uuid": UUID, "to_address": _t(S), "status": _t(S),
                                               "error": STR_N, "created_at": TIME, "updated_at": TIME}))},
                    required=["uuid", "store_uuid", "chain_id", "currency", "address", "balance"]),
    "Withdrawal": _obj({"uuid": UUID, "deposit_uuid": UUID, "to_address": _t(S), "status": _t(S),
                        "created_at": TIME}),
    "Token": _obj({"id": _t(N), "chain_id": _t(N), "symbol": _t(S), "contract_address": _t(S),
                   "decimals": _t(N, nullable=True), "status": {"enum": ["unverified", "active", "rejected"]},
                   "status_reason": STR_N, "manual_usd_price": STR_N, "created_at": TIME, "updated_at": TIME}),
    "ConfigKey": _obj({"name": _t(S), "value": _t(S), "default": _t(S),
                       "kind": {"enum": ["duration", "fraction", "count"]}, "description": _t(S)}),
    "ApiKey": _obj({"id": _t(N), "name": _t(S), "key_prefix": _t(S), "created_at": TIME,
                    "last_used_at": TIME_N}, strict=False),
    "User": _obj({"id": _t(N), "uuid": UUID, "username": _t(S),
                  "role": {"enum": ["admin", "staff", "vendor", "customer"]}, "banned": _t(B),
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


PAGE_PARAMS = [_q("limit", "page size, 1-200 (default 50)", {"type": "integer", "minimum": 1, "maximum": 200}),
               _q("offset", "rows to skip", {"type": "integer", "minimum": 0})]


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
CSRF = {"csrf_token": {"type": "string", "description": "needed with a session cookie, not with an API key"}}


def _fields(**props):
    out = dict(CSRF)
    for name, desc in props.items():
        out[name] = {"type": "string", "description": desc}
    return out


PATHS = {
    "/health.php": {"get": _op("Health: database, last cron run, chain heads", _obj({
        "ok": _t(B), "database": _t(S), "last_cron_run": {"type": ["object", "null"]},
        "chains": _arr({"type": "object"}), "error": _t(S)}, required=["ok", "database"]), [], auth=False)},
    "/api/openapi.json": {"get": _op("This document", {"type": "object", "required": ["openapi", "paths"]}, [],
                                     auth=False)},
    "/api/stores.php": {
        "get": _op("List stores (suspended hidden), one store, or mine",
                   {"anyOf": [_page("stores", _ref("Store")), _obj({"stores": _arr(_ref("Store"))}),
                              _obj({"store": _ref("Store")})]},
                   [400, 401, 404], PAGE_PARAMS + [_q("uuid", "one store"), _q("mine", "1: the stores I belong to")],
                   auth=False),
        "post": _op("Create a store: the creator becomes owner and vendor",
                    _obj({"ok": _t(B), "uuid": UUID, "store": _ref("Store")}), [400, 401, 403, 409],
                    body=_body(_fields(storename="1-16 characters, unique", description="text",
                                       vendorship_agree="1 (required)"), ["storename", "vendorship_agree"])),
    },
    "/api/items.php": {
        "get": _op("List items (search, category, store) or one item",
                   {"anyOf": [_obj({"items": _arr(_ref("Item")), "categories": _arr(_ref("Category")),
                                    "limit": _t(N), "offset": _t(N)}), _obj({"item": _ref("Item")})]},
                   [400, 404], PAGE_PARAMS + [_q("uuid", "one item"), _q("store_uuid", "items of one store"),
                                              _q("q", "search in name and description (max 100)"),
                                              _q("category_id", "category id")], auth=False),
        "post": _op("Add an item to a store (members)", _obj({"ok": _t(B), "uuid": UUID, "item": _ref("Item")}),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(name="1-64 characters", store_uuid="the store", description="text",
                                       category_id="a category id"), ["name", "store_uuid"])),
    },
    "/api/packages.php": {
        "get": _op("Packages of an item with a live quote per active token",
                   _obj({"packages": _arr(_ref("Package"))}), [400, 404],
                   [_q("item_uuid", "the item", required=True)], auth=False),
        "post": _op("Add a package priced in USD (members)",
                    _obj({"ok": _t(B), "uuid": UUID, "package": _ref("Package")}), [400, 401, 403, 404, 409],
                    body=_body(_fields(item_uuid="the item", name="1-64 characters", description="text",
                                       price_usd="0.01 to 1000000, at most 2 decimals"),
                               ["item_uuid", "name", "price_usd"])),
    },
    "/api/transactions.php": {
        "get": _op("My orders (as buyer or store member; staff: all), newest first; or one order",
                   {"anyOf": [_page("transactions", _ref("Order")), _obj({"transaction": _ref("OrderDetail")})]},
                   [400, 401, 403, 404],
                   PAGE_PARAMS + [_q("uuid", "one order with its histories (404 unless party or staff)"),
                                  _q("scope", "mine (default), buyer, vendor, all (staff; default for staff)",
                                     {"enum": ["mine", "buyer", "vendor", "all"]})]),
        "post": _op("Create an order; the server prices it (a client's required_amount is ignored)",
                    _obj({"ok": _t(B), "uuid": UUID, "escrow_address_pending": _t(B), "required_amount": AMOUNT,
                          "currency": _t(S), "chain_id": _t(N), "price_usd": USD, "usd_rate": _t(S)}),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(package_uuid="the package", currency="token symbol (default ETH)",
                                       chain_id="chain id (default 1)",
                                       refund_address="EIP-55 address (default: my profile's)",
                                       required_amount="ignored"), ["package_uuid"]),
                    description="409 when the token's USD rate is older than price_max_age or missing."),
    },
    "/api/transaction-actions.php": {
        "post": _op("Act on an order: release, cancel, partial_refund, dispatch, confirm, dispute",
                    _obj({"ok": _t(B), "action": _t(S), "transaction_uuid": UUID,
                          "intent": {"anyOf": [_ref("IntentRef"), {"type": "null"}]}}),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(transaction_uuid="the order",
                                       action="release | cancel | partial_refund | dispatch | confirm | dispute",
                                       refund_percent="1-99, partial_refund only", comment="optional text"),
                               ["transaction_uuid", "action"]),
                    description="403: not this person; 409: not in this state or a payout already in progress."),
    },
    "/api/disputes.php": {
        "get": _op("Disputes I am party to (all for staff), or one with its claims",
                   {"anyOf": [_page("disputes", _ref("Dispute")), _obj({"dispute": _ref("Dispute")})]},
                   [400, 401, 404], PAGE_PARAMS + [_q("uuid", "one dispute"),
                                                   _q("status", "open or resolved", {"enum": ["open", "resolved"]})]),
        "post": _op("Add a claim (parties, staff) or resolve (staff)",
                    {"anyOf": [_obj({"ok": _t(B), "claim": _ref("Claim")}),
                               _obj({"ok": _t(B), "action": _t(S), "transaction_uuid": UUID,
                                     "intent": {"anyOf": [_ref("IntentRef"), {"type": "null"}]},
                                     "dispute_uuid": UUID, "resolution": _t(S)})]},
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(dispute_uuid="the dispute", claim="text (1-5000)",
                                       resolution="release | refund | partial_refund (staff)",
                                       refund_percent="1-99 with partial_refund", comment="optional note"),
                               ["dispute_uuid"])),
    },
    "/api/deposits.php": {
        "get": _op("Deposits of my stores, or one with history and withdrawals",
                   {"anyOf": [_page("deposits", _ref("Deposit")), _obj({"deposit": _ref("Deposit")})]},
                   [400, 401, 404], PAGE_PARAMS + [_q("uuid", "one deposit"), _q("store_uuid", "one store")]),
        "post": _op("Open a deposit (store members); cron derives the address",
                    _obj({"ok": _t(B), "uuid": UUID, "deposit": _ref("Deposit")}), [400, 401, 403, 404, 409],
                    body=_body(_fields(store_uuid="the store", currency="token symbol (default ETH)",
                                       chain_id="chain id (default 1)"), ["store_uuid"])),
    },
    "/api/deposit-withdraw.php": {
        "post": _op("Withdraw a deposit to the store's payout address (owner)",
                    _obj({"ok": _t(B), "intent": _ref("Withdrawal")}), [400, 401, 403, 404, 409],
                    body=_body(_fields(deposit_uuid="the deposit"), ["deposit_uuid"])),
    },
    "/api/store-settings.php": {
        "post": _op("Edit a store's description, payout address and tokens taken (owner)",
                    _obj({"ok": _t(B), "store": _ref("Store")}), [400, 401, 403, 404],
                    body=_body(_fields(store_uuid="the store", description="text",
                                       payout_address="EIP-55 address; empty clears",
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
                    body=_body(_fields(refund_address="EIP-55 address; empty clears",
                                       payout_address="EIP-55 address; empty clears"))),
    },
    "/api/keys.php": {
        "get": _op("My API keys", _obj({"keys": _arr(_ref("ApiKey"))}), [401]),
        "post": _op("Create an API key (shown once)",
                    _obj({"ok": _t(B), "id": _t(N), "name": _t(S), "key_prefix": _t(S), "created_at": TIME,
                          "api_key": _t(S, pattern="^[0-9a-f]{64}$")}, strict=False),
                    [400, 401, 403, 409], body=_body(_fields(name="a label"), ["name"])),
    },
    "/api/keys-revoke.php": {
        "post": _op("Revoke one of my keys", _obj({"ok": _t(B), "id": _t(N)}, required=["ok", "id"], strict=False),
                    [400, 401, 403, 404, 409], body=_body(_fields(id="key id"), ["id"])),
    },
    "/api/auth-user.php": {
        "get": _op("Who am I", _obj({"username": _t(S), "role": _t(S), "user_uuid": UUID, "csrf_token": _t(S)},
                                    required=["username", "role", "user_uuid"]), [401]),
    },
    "/admin/tokens.php": {
        "get": _op("Accepted tokens (admin)", _obj({"tokens": _arr(_ref("Token"))}), [401, 403]),
        "post": _op("Add an accepted token (admin); unverified until cron verifies it",
                    _obj({"ok": _t(B), "token": _ref("Token")}), [400, 401, 403, 409],
                    body=_body(_fields(chain_id="1, 11155111, 8453, 137 (31337 with ALLOW_DEV_CHAIN=1)",
                                       symbol="token symbol", contract_address="EIP-55; empty for the native coin",
                                       decimals="0-36 (optional; cron reads decimals())",
                                       manual_usd_price="USD rate, test networks only"),
                               ["chain_id", "symbol"])),
    },
    "/admin/tokens-remove.php": {
        "post": _op("Remove an accepted token (admin)", _obj({"ok": _t(B), "id": _t(N)}), [400, 401, 403, 404],
                    body=_body(_fields(id="token id"), ["id"])),
    },
    "/admin/config.php": {
        "get": _op("All config keys with values (admin)",
                   _obj({"config": {"type": "object", "additionalProperties": _t(S)},
                         "keys": _arr(_ref("ConfigKey"))}), [401, 403]),
        "post": _op("Set config keys (admin): known keys only, each validated, all or nothing",
                    _obj({"ok": _t(B), "changed": {"type": "object", "additionalProperties": _t(S)},
                          "config": {"type": "object", "additionalProperties": _t(S)},
                          "keys": _arr(_ref("ConfigKey"))}), [400, 401, 403],
                    body={"required": True, "content": {
                        ctype: {"schema": {"type": "object", "additionalProperties": STR,
                                           "description": "config key -> value, e.g. price_max_age=15m"}}
                        for ctype in ("application/x-www-form-urlencoded", "application/json")}}),
    },
    "/admin/users.php": {
        "get": _op("List users (admin)", _page("users", _ref("User")), [400, 401, 403],
                   PAGE_PARAMS + [_q("q", "name contains"), _q("role", "one role")]),
        "post": _op("Set a user's role and/or ban (admin)", _obj({"ok": _t(B), "user": _ref("User")}),
                    [400, 401, 403, 404, 409],
                    body=_body(_fields(user_uuid="the user", username="or the user's name",
                                       role="admin | staff | vendor | customer", banned="1 or 0"))),
    },
}


def _with_common_errors(paths):
    """Any request may carry an API key: an invalid one is 401, too many requests 429;
    any POST body over 1 MiB is refused with 413."""
    paths = copy.deepcopy(paths)
    for path, ops in paths.items():
        if path in ("/health.php", "/api/openapi.json"):
            continue
        for method, op in ops.items():
            for code in (401, 429) + ((413,) if method == "post" else ()):
                op["responses"].setdefault(str(code), {
                    "description": ERROR_TEXT[code], "content": {"application/json": {"schema": _ref("Error")}}})
            op["responses"] = dict(sorted(op["responses"].items()))
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
                            "description": "browser session; state-changing requests need csrf_token"},
            },
            "schemas": SCHEMAS,
        },
        "paths": _with_common_errors(PATHS),
    })
