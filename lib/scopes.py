"""Scopes of API keys: what a key (or an agent identity) may do.

A key carries one or more scopes and optionally one `store_uuid`:

    read    GET and HEAD only (every scope includes reads)
    orders  create orders and take the buyer's actions on them (release, cancel, confirm,
            dispute, dispute claims), plus reads
    store   manage stores, items, packages, store settings, deposits, dispatch and the
            vendor's order actions and claims, plus reads; with `store_uuid` only that
            store (creating another store is refused)
    full    everything the key's user may do (the default; keys made before scopes exist)

Scopes only narrow: the endpoint still checks the user's own rights afterwards. Session
requests are not scoped. Key management (creating or revoking keys), account settings,
staff and admin writes need `full`.

TABLE maps every JSON endpoint (public/api, public/admin) and method, and the HTML pages
that change state, to a Rule. A Rule is static (the scopes any of which is enough) or
resolved per request (transaction actions: the buyer's need `orders`, the vendor's
`store`, staff's `full`). A script or method missing from the table needs `full` for a
scoped key (tests/test_scopes.py asserts every public/api and public/admin script is in it).

lib.auth calls `attach()` when a key or agent identity becomes the request's user and
`check()` once per request; lib.openapi puts each operation's scopes in `x-scope`.
"""
from lib.http import BadRequest, Forbidden, HttpError

READ, ORDERS, STORE, FULL = "read", "orders", "store", "full"
SCOPES = (READ, ORDERS, STORE, FULL)
BUYER_ACTIONS = ("release", "cancel", "confirm", "dispute")
NEW_STORE = object()   # the call creates a store: refused for a key limited to one store


class Rule:
    """`scopes`: any one of them allows the call. `resolve(request, db, user)`, when
    given, returns (scopes, store_uuid) for this very request; store_uuid is the store a
    `store`-scoped call touches (None when unknown: the endpoint answers 400/404 itself)."""

    def __init__(self, *scopes, resolve=None, note=None):
        self.scopes = scopes
        self.resolve = resolve
        self.note = note


def _data(request, name):
    value = request.data.get(name) if request.method != "GET" else None
    if value is None:
        value = request.arg(name)
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def _store_field(name):
    def resolve(request, db, user):
        return (STORE,), _data(request, name)
    return resolve


def _new_store(request, db, user):
    return (STORE,), NEW_STORE


def _item_store(request, db, user):
    uuid = _data(request, "item_uuid")
    return (STORE,), db.value("SELECT store_uuid FROM items WHERE uuid = ?", (uuid,)) if uuid else None


def _deposit_store(request, db, user):
    uuid = _data(request, "deposit_uuid") or _data(request, "uuid")
    return (STORE,), db.value("SELECT store_uuid FROM deposits WHERE uuid = ?", (uuid,)) if uuid else None


def _is_member(db, user, store_uuid):
    return db.value("SELECT 1 FROM store_users WHERE store_uuid = ? AND user_uuid = ?",
                    (store_uuid, user["uuid"])) is not None


def _party_rule(db, user, order, buyer_ok):
    """The buyer -> orders; a member of the order's store -> store; anyone else (staff) -> full."""
    if order is None:
        return (ORDERS, STORE), None   # unknown order: the endpoint answers 400/404
    if order["buyer_uuid"] == user["uuid"] and buyer_ok:
        return (ORDERS,), None
    if _is_member(db, user, order["store_uuid"]):
        return (STORE,), order["store_uuid"]
    return (FULL,), None


def _order_action(request, db, user):
    uuid = _data(request, "transaction_uuid") or _data(request, "uuid")
    order = db.one("SELECT buyer_uuid, store_uuid FROM transactions WHERE uuid = ?", (uuid,)) if uuid else None
    action = request.data.get("action")
    action = action.strip().lower() if isinstance(action, str) else ""
    return _party_rule(db, user, order, action != "partial_refund")


def _dispute_post(request, db, user):
    if request.data.get("resolution") not in (None, ""):
        return (FULL,), None           # staff resolve a dispute
    uuid = _data(request, "dispute_uuid")
    order = db.one("SELECT t.buyer_uuid, t.store_uuid FROM disputes d JOIN transactions t "
                   "ON t.uuid = d.transaction_uuid WHERE d.uuid = ?", (uuid,)) if uuid else None
    return _party_rule(db, user, order, True)


def _item_edit(request, db, user):
    """/item/edit.php: the store of the item or package its form creates or updates."""
    form = request.data.get("form")
    if form == "item_create":
        return (STORE,), _data(request, "store_uuid")
    if form == "item_update":
        uuid = _data(request, "uuid")
        return (STORE,), db.value("SELECT store_uuid FROM items WHERE uuid = ?", (uuid,)) if uuid else None
    if form == "package_update":
        uuid = _data(request, "package_uuid")
        return (STORE,), db.value("SELECT i.store_uuid FROM packages p JOIN items i ON i.uuid = p.item_uuid "
                                  "WHERE p.uuid = ?", (uuid,)) if uuid else None
    return _item_store(request, db, user)


def _dispute_page(request, db, user):
    """/dispute.php?uuid= (a dispute's or an order's uuid): claims by party, resolve by staff."""
    if request.data.get("action") == "resolve":
        return (FULL,), None
    uuid = request.arg("uuid")
    uuid = uuid if isinstance(uuid, str) and len(uuid) <= 64 else None
    order = None
    if uuid:
        order = db.one("SELECT t.buyer_uuid, t.store_uuid FROM disputes d JOIN transactions t "
                       "ON t.uuid = d.transaction_uuid WHERE d.uuid = ?", (uuid,)) or \
            db.one("SELECT buyer_uuid, store_uuid FROM transactions WHERE uuid = ?", (uuid,))
    return _party_rule(db, user, order, True)


def _message_post(request, db, user):
    """Messages: an order thread's by party (as the order's actions); private messages and
    blocks are a buyer's or a vendor's business (orders or store)."""
    uuid = _data(request, "transaction_uuid") or request.arg("order")
    if uuid:
        order = db.one("SELECT buyer_uuid, store_uuid FROM transactions WHERE uuid = ?", (uuid,))
        return _party_rule(db, user, order, True)
    return (ORDERS, STORE), None


BY_ROLE = "orders for the buyer, store for a member of the order's store, full for staff"

# script (path under public/, without .py) -> {METHOD: Rule}
TABLE = {
    "api/auth_user": {"GET": Rule(READ)},
    "api/deposit_withdraw": {"POST": Rule(STORE, resolve=_deposit_store)},
    "api/deposits": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_store_field("store_uuid"))},
    "api/disputes": {"GET": Rule(READ),
                     "POST": Rule(ORDERS, STORE, resolve=_dispute_post,
                                  note="claim: " + BY_ROLE + "; resolution (staff): full")},
    "api/items": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_store_field("store_uuid"))},
    "api/keys": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/keys_revoke": {"POST": Rule(FULL)},
    "api/sessions": {"GET": Rule(READ)},
    "api/sessions_end": {"POST": Rule(FULL)},
    "api/skill": {"GET": Rule(READ)},
    # Webhook endpoints are account settings: reading them is a read, changing them is full.
    "api/webhooks": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/webhooks_delete": {"POST": Rule(FULL)},
    "api/webhook_deliveries": {"GET": Rule(READ)},
    "api/webhook_redeliver": {"POST": Rule(FULL)},
    "api/openapi": {"GET": Rule(READ)},
    "api/packages": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_item_store)},
    "api/payout_actions": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/store_settings": {"POST": Rule(STORE, resolve=_store_field("store_uuid"))},
    "api/stores": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_new_store,
                                                   note="refused for a key limited to one store")},
    "api/transaction_actions": {"POST": Rule(ORDERS, STORE, resolve=_order_action,
                                             note="release, cancel, confirm, dispute: " + BY_ROLE
                                                  + "; dispatch and vendor actions: store; "
                                                    "partial_refund: full")},
    "api/transactions": {"GET": Rule(READ), "POST": Rule(ORDERS)},
    "api/user_settings": {"GET": Rule(READ), "POST": Rule(FULL)},
    # Exports: a read; a key limited to one store exports that store only.
    "api/exports": {"GET": Rule(READ)},
    # messages (order threads by party) and notifications (marking read changes only my flags)
    "api/messages": {"GET": Rule(READ), "POST": Rule(ORDERS, STORE, resolve=_message_post,
                                                     note="order thread: " + BY_ROLE + "; private: orders or store")},
    "api/notifications": {"GET": Rule(READ), "POST": Rule(READ, ORDERS, STORE)},
    "admin/config": {"GET": Rule(READ), "POST": Rule(FULL)},
    "admin/index": {"GET": Rule(READ)},
    "admin/tokens": {"GET": Rule(READ), "POST": Rule(FULL)},
    "admin/tokens_remove": {"POST": Rule(FULL)},
    "admin/users": {"GET": Rule(READ), "POST": Rule(FULL)},
    # support tickets and store warnings; account and staff tools
    "api/tickets": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/store_warnings": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/email_settings": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/categories": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/agreement": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/recovery_codes": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/two_factor": {"GET": Rule(READ), "POST": Rule(FULL)},
    "api/plan": {"GET": Rule(READ)},
    # HTML pages that change state the way the API does (other pages' POSTs need full).
    "book": {"GET": Rule(READ), "POST": Rule(ORDERS)},
    "payment": {"GET": Rule(READ), "POST": Rule(ORDERS, STORE, resolve=_order_action, note=BY_ROLE)},
    "dispute": {"GET": Rule(READ), "POST": Rule(ORDERS, STORE, resolve=_dispute_page, note=BY_ROLE)},
    "create_store": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_new_store)},
    "messages": {"GET": Rule(READ), "POST": Rule(ORDERS, STORE, resolve=_message_post, note=BY_ROLE)},
    "notifications": {"GET": Rule(READ), "POST": Rule(READ, ORDERS, STORE)},
    "settings/store": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_store_field("uuid"))},
    "item/edit": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_item_edit)},
    "deposits/add": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_store_field("store_uuid"))},
    "deposits/withdraw": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_deposit_store)},
}

# Reviews and item images.
def _review_store(request, db):
    uuid = _data(request, "review_uuid")
    return db.value("SELECT store_uuid FROM reviews WHERE uuid = ?", (uuid,)) if uuid else None


def _review_post(request, db, user):
    """add: the buyer's (orders); reply: the reviewed store's member (store); hide: staff (full)."""
    which = request.data.get("action") or request.data.get("form")
    if which == "add":
        return (ORDERS,), None
    if which == "reply":
        return (STORE,), _review_store(request, db)
    return (FULL,), None


def _image_store(request, db, user):
    uuid = _data(request, "image_uuid")
    if uuid:
        return (STORE,), db.value("SELECT i.store_uuid FROM item_images m JOIN items i ON i.uuid = m.item_uuid "
                                  "WHERE m.uuid = ?", (uuid,))
    return _item_store(request, db, user)


def _item_edit_with_images(request, db, user):
    if request.data.get("form") in ("image_upload", "image_remove", "image_first"):
        return _image_store(request, db, user)
    return _item_edit(request, db, user)


TABLE.update({
    "api/reviews": {"GET": Rule(READ), "POST": Rule(ORDERS, STORE, resolve=_review_post,
                                                    note="add: orders; reply: store; hide (staff): full")},
    "api/item_images": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_image_store)},
    "review/add": {"GET": Rule(READ), "POST": Rule(ORDERS)},
    "review/manage": {"POST": Rule(ORDERS, STORE, resolve=_review_post, note="reply: store; hide (staff): full")},
    "item/edit": {"GET": Rule(READ), "POST": Rule(STORE, resolve=_item_edit_with_images)},
    "user": {"GET": Rule(READ)},
})

# The JSON API's URL of a script (for the OpenAPI document).
URLS = {"api/openapi": "/api/openapi.json"}


def script_of(path):
    """The TABLE key of a URL path (the router's mapping: .php/.json optional, '-' is '_',
    a trailing '/' is index), or None."""
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    parts = path[1:].split("/")
    if parts[-1] == "":
        parts[-1] = "index"
    for suffix in (".php", ".json"):
        if parts[-1].endswith(suffix):
            parts[-1] = parts[-1][: -len(suffix)]
            break
    return "/".join(parts).replace("-", "_")


def url_of(script):
    return URLS.get(script) or "/" + script.replace("_", "-") + ".php"


def rule_for(path, method):
    method = "GET" if method == "HEAD" else method
    return TABLE.get(script_of(path), {}).get(method)


def parse(value):
    """Scopes from a list or a comma-separated string -> a sorted tuple ('full' alone when
    given). Empty or None -> ('full',). 400 for an unknown scope."""
    if value is None or value == "" or value == []:
        return (FULL,)
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise BadRequest("scopes must be a list or a comma-separated string", fields={"scopes": "list"})
    names = set()
    for item in items:
        if not isinstance(item, str):
            raise BadRequest("scopes must be strings", fields={"scopes": "strings"})
        name = item.strip().lower()
        if name == "":
            continue
        if name not in SCOPES:
            raise BadRequest(f"unknown scope {item.strip()[:32]!r}; scopes are " + ", ".join(SCOPES),
                            fields={"scopes": "read, orders, store or full"})
        names.add(name)
    if not names or FULL in names:
        return (FULL,)
    return tuple(s for s in SCOPES if s in names)


def to_text(scopes):
    return ",".join(scopes)


def from_text(text):
    """The stored form (a column value, NULL or '' for keys made before scopes) -> tuple."""
    try:
        return parse(text or "")
    except HttpError:
        return (READ,)   # a damaged value narrows rather than widens


def attach(request, scopes, store_uuid=None):
    """Record the scopes of the key (or agent identity) that authenticated the request."""
    request.key_scopes = tuple(scopes)
    request.key_store_uuid = store_uuid or None


def _names(scopes):
    return " or ".join(f"'{s}'" for s in scopes)


def check(request, db, user):
    """403 unless the scopes attached to the request allow this path and method.
    Requests without attached scopes (sessions, anonymous) and full keys pass."""
    granted = getattr(request, "key_scopes", None)
    if not granted or FULL in granted or user is None:
        return
    method = "GET" if request.method == "HEAD" else request.method
    if method == "GET":
        return   # every scope reads
    rule = rule_for(request.path, method)
    if rule is None:
        needed, store_uuid = (FULL,), None
    elif rule.resolve is not None:
        needed, store_uuid = rule.resolve(request, db, user)
    else:
        needed, store_uuid = rule.scopes, None
    usable = [s for s in needed if s in granted]
    if not usable:
        missing = [s for s in needed if s != READ] or [FULL]
        raise Forbidden(f"this API key lacks the {_names(missing)} scope")
    limited = getattr(request, "key_store_uuid", None)
    if limited and usable == [STORE] and store_uuid is not None and store_uuid != limited:
        if store_uuid is NEW_STORE:
            raise Forbidden(f"this API key is limited to the store {limited}; it cannot create stores")
        raise Forbidden(f"this API key is limited to the store {limited}")


def operation_scopes(script, method):
    """(scopes, note) of an operation for the OpenAPI document."""
    rule = TABLE.get(script, {}).get(method.upper())
    if rule is None:
        return [FULL], None
    return list(rule.scopes), rule.note


def annotate_openapi(document):
    """Put `x-scope` (the scopes any one of which allows the operation; `full` always does)
    and, where the scope depends on who asks, `x-scope-note` on every operation."""
    for path, operations in document.get("paths", {}).items():
        script = script_of(path)
        for method, op in operations.items():
            if not isinstance(op, dict) or method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                continue
            scopes, note = operation_scopes(script, method)
            if script not in TABLE and method.upper() == "GET":
                scopes = [READ]
            op["x-scope"] = scopes
            if note:
                op["x-scope-note"] = note
    return document
