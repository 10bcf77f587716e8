"""The OpenAPI document states the constraints the API enforces.

For every documented operation and every request parameter or body field that carries a
constraint (pattern, minLength, maxLength, enum, minimum, maximum), a value just outside
each constraint must get a 4xx, and values just inside (the field's example or the real
value of the scenario, each enum value, the bounds, a string of exactly maxLength) must
not be refused with 400 for that field's reason (a 400 whose message names the field).
Deterministic: the values are derived from the schema and a baseline request per operation.
On both databases.
"""
import re
import urllib.parse

import pytest

from lib import api_keys, env, intents, openapi
from tests import market
from tests.client import Client
from tests.factories import make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)
from tests.test_openapi import check

CONSTRAINTS = ("pattern", "minLength", "maxLength", "enum", "minimum", "maximum")


@pytest.fixture(autouse=True)
def no_rate_limit(monkeypatch):
    """Hundreds of requests per key: the rate limit has its own tests."""
    monkeypatch.setattr(api_keys, "RATE_LIMIT", 10 ** 6)
    from lib import messages
    monkeypatch.setattr(messages, "MESSAGES_PER_WINDOW", 10 ** 6)


def constrained(schema):
    return any(k in schema for k in CONSTRAINTS)


def pad(value, length):
    value = str(value)
    if len(value) >= length:
        return value[:length]
    return value + (value[-1:] or "a") * (length - len(value))


def outside_values(schema, base, required):
    """Values that break exactly one kind of constraint (checked against the schema below)."""
    out = []
    if "enum" in schema:
        out.append(5 if schema.get("type") == "integer" else "bogus")
    if schema.get("type") == "integer":
        out.append("x")
        if "minimum" in schema:
            out.append(schema["minimum"] - 1)
        if "maximum" in schema:
            out.append(schema["maximum"] + 1)
    if "maxLength" in schema:
        out.append(pad(base, schema["maxLength"] + 1))
    if required and (schema.get("minLength", 0) >= 1 or "pattern" in schema):
        out.append("")
    if "pattern" in schema:
        text = str(base)
        out += [text + "\x01", "!" + text, text + "!", text[:-1]]
    # an empty optional field means "not given": never a candidate
    return [v for v in out if required or v != ""]


def inside_values(schema, base):
    values = [base]
    if "enum" in schema:
        values += [v for v in schema["enum"] if v is not None]
    if schema.get("type") == "integer":
        values += [schema[k] for k in ("minimum", "maximum") if k in schema]
    if "maxLength" in schema and schema.get("type") == "string":
        values.append(pad(base, schema["maxLength"]))
    return values


def schema_ok(doc, schema, value):
    """Does the value (as sent: strings from a form or query) satisfy the schema?"""
    if schema.get("type") == "integer":
        if isinstance(value, str):
            if not re.fullmatch(r"-?[0-9]+", value):
                return False
            value = int(value)
    return not check(schema, value, doc)


def names_field(text, field):
    return re.search(r"(?<![A-Za-z0-9_])" + re.escape(field) + r"(?![A-Za-z0-9_])", text) is not None


class World:
    pass


def setup(db):
    """The objects the baselines refer to."""
    w = market.world(db)
    x = World()
    x.w = w
    x.owner = make_user(db, "depowner")
    x.target = make_user(db, "target1")
    x.store2 = market.store(db, x.owner, "deps")
    x.cat = str(db.value("SELECT MIN(id) FROM item_categories"))
    x.completed = market.order(db, w, "COMPLETED")
    x.disputed = market.order(db, w, "COMPLETED")
    from lib import orders
    orders.take_action(db, w.buyer, x.disputed, "dispute", comment="broken")
    x.dispute = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (x.disputed,))
    x.dispute2_order = market.order(db, w, "COMPLETED")
    orders.take_action(db, w.buyer, x.dispute2_order, "dispute", comment="late")
    x.dispute2 = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (x.dispute2_order,))
    stuck = intents.open_intent(db, market.order(db, w, "COMPLETED"), intents.RELEASE, None)
    intents.needs_attention(db, intents.ORDERS, stuck, "commission leg failed", chain_id=1)
    x.stuck = stuck["uuid"]
    from lib import deposits
    x.deposit = deposits.open_deposit(db, x.owner, x.store2["uuid"], "ETH", 1)["uuid"]
    from lib import tickets
    x.ticket = tickets.create(db, w.buyer, "Help", "Where is it?")["uuid"]
    return x


def baselines(x):
    """(path, method) -> (who, baseline fields, {field: (who, override fields)})."""
    w = x.w
    v, b, st, ad, s = "vendor", "buyer", "staff", "admin", "stranger"
    return {
        ("/health.php", "get"): (None, {}, {}),
        ("/api/openapi.json", "get"): (None, {}, {}),
        ("/api/skill.php", "get"): (None, {}, {}),
        ("/api/stores.php", "get"): (None, {}, {}),
        ("/api/stores.php", "post"): ("owner", {"storename": "fz", "description": "d", "vendorship_agree": "1"}, {}),
        ("/api/items.php", "get"): (None, {"category_id": x.cat, "store_uuid": w.store["uuid"]}, {}),
        ("/api/items.php", "post"): (v, {"name": "thing", "store_uuid": w.store["uuid"], "description": "d",
                                         "category_id": x.cat}, {}),
        ("/api/packages.php", "get"): (None, {"item_uuid": w.item["uuid"]}, {}),
        ("/api/packages.php", "post"): (v, {"item_uuid": w.item["uuid"], "name": "p", "description": "d",
                                            "price_usd": "9.99"}, {}),
        ("/api/transactions.php", "get"): (b, {}, {}),
        ("/api/transactions.php", "post"): (b, {"package_uuid": w.package["uuid"], "currency": "ETH",
                                                "chain_id": "1", "refund_address": market.ADDR_C}, {}),
        ("/api/transaction-actions.php", "post"): (
            st, {"transaction_uuid": x.disputed, "action": "partial_refund", "refund_percent": "40",
                 "comment": "c"},
            {"action": (b, {"transaction_uuid": x.completed, "comment": "c"})}),
        ("/api/payout-actions.php", "get"): (st, {}, {}),
        ("/api/payout-actions.php", "post"): (
            st, {"intent_uuid": x.stuck, "action": "redirect", "payout_id": "999999", "to_address": market.ADDR_B},
            {"comment": (st, {"intent_uuid": x.stuck, "action": "abandon", "comment": "paid"}),
             "flag_id": (st, {"action": "rescue", "flag_id": "999999"})}),
        ("/api/disputes.php", "get"): (b, {}, {}),
        ("/api/disputes.php", "post"): (
            st, {"dispute_uuid": x.dispute, "claim": "c"},
            {"resolution": (st, {"dispute_uuid": x.dispute2, "refund_percent": "30"}),
             "refund_percent": (st, {"dispute_uuid": x.dispute, "resolution": "partial_refund"}),
             "comment": (st, {"dispute_uuid": x.dispute, "resolution": "partial_refund", "refund_percent": "30"})}),
        ("/api/deposits.php", "get"): ("owner", {"store_uuid": x.store2["uuid"]}, {}),
        ("/api/deposits.php", "post"): ("owner", {"store_uuid": x.store2["uuid"], "currency": "ETH",
                                                  "chain_id": "1"}, {}),
        ("/api/deposit-withdraw.php", "post"): ("owner", {"deposit_uuid": x.deposit}, {}),
        ("/api/store-settings.php", "post"): ("owner", {"store_uuid": x.store2["uuid"], "description": "x",
                                                        "payout_address": market.ADDR_D}, {}),
        ("/api/user-settings.php", "get"): (b, {}, {}),
        ("/api/user-settings.php", "post"): (b, {"refund_address": market.ADDR_C,
                                                 "payout_address": market.ADDR_D}, {}),
        ("/api/keys.php", "get"): (s, {}, {}),
        ("/api/keys.php", "post"): (s, {"name": "laptop"}, {}),
        ("/api/keys-revoke.php", "post"): (s, {"id": "999999"}, {}),
        ("/api/sessions.php", "get"): (s, {}, {}),
        ("/api/sessions-end.php", "post"): (s, {"id": "999999"}, {}),
        ("/api/auth-user.php", "get"): (s, {}, {}),
        ("/admin/tokens.php", "get"): (ad, {}, {}),
        ("/admin/tokens.php", "post"): (ad, {"chain_id": "11155111", "symbol": "USDC",
                                             "contract_address": market.USDC, "decimals": "6",
                                             "manual_usd_price": "1"}, {}),
        ("/admin/tokens-remove.php", "post"): (ad, {"id": "999999"}, {}),
        ("/admin/config.php", "get"): (ad, {}, {}),
        ("/admin/config.php", "post"): (ad, {"price_max_age": "20m"}, {}),
        ("/admin/users.php", "get"): (ad, {}, {}),
        ("/admin/users.php", "post"): (ad, {"username": "target1", "role": "customer"}, {}),
        # the webhook endpoints, when this tree has them
        ("/api/webhooks.php", "get"): (s, {}, {}),
        ("/api/webhooks.php", "post"): (s, {"url": "https://hooks.example/x", "events": "order.paid"}, {}),
        ("/api/webhooks-delete.php", "post"): (s, {"id": "999999"}, {}),
        ("/api/webhook-deliveries.php", "get"): (s, {"webhook_id": "999999"}, {}),
        ("/api/webhook-redeliver.php", "post"): (s, {"delivery_id": "999999"}, {}),
        # exports
        ("/api/exports.php", "get"): (st, {"kind": "orders", "from": "2026-03-01", "to": "2026-03-31",
                                           "format": "json"}, {}),
        # messages and notifications
        ("/api/messages.php", "get"): (b, {"with": "vendor1"},
                                       {"transaction_uuid": (b, {"transaction_uuid": x.completed}),
                                        "thread": (b, {"thread": openapi.EXAMPLE_UUID})}),
        ("/api/messages.php", "post"): (b, {"to": "vendor1", "body": "hello"},
                                        {"transaction_uuid": (b, {"transaction_uuid": x.completed, "body": "hi"}),
                                         "action": (b, {"username": "stranger1"}),
                                         "username": (b, {"action": "unblock", "username": "stranger1"})}),
        ("/api/notifications.php", "get"): (b, {}, {}),
        ("/api/notifications.php", "post"): (b, {"id": "999999"}, {"all": (b, {})}),
        # support tickets and store warnings
        ("/api/tickets.php", "get"): (b, {}, {"status": (st, {"queue": "1"})}),
        ("/api/tickets.php", "post"): (
            b, {"action": "create", "subject": "Help", "body": "b", "transaction_uuid": x.completed},
            {"uuid": (b, {"action": "reply", "uuid": x.ticket, "body": "more"}),
             "assignee": (st, {"action": "assign", "uuid": x.ticket}),
             "comment": (st, {"action": "close", "uuid": x.ticket})}),
        ("/api/store-warnings.php", "get"): (st, {}, {}),
        ("/api/store-warnings.php", "post"): (st, {"action": "add", "store": "shop", "reason": "Late"},
                                              {"id": (st, {"action": "retire"})}),
        # account and staff tools as JSON (EMAIL_ENABLED is set for this test)
        ("/api/email-settings.php", "get"): (s, {}, {}),
        ("/api/email-settings.php", "post"): (s, {"action": "notifications"}, {"code": (s, {"action": "verify"})}),
        ("/api/categories.php", "get"): (None, {}, {}),
        ("/api/categories.php", "post"): (st, {"action": "add", "name": "Fresh", "parent_id": x.cat},
                                          {"category_id": (st, {"action": "rename", "category_id": x.cat,
                                                                "name": "Renamed"})}),
        ("/api/agreement.php", "get"): (None, {}, {}),
        ("/api/recovery-codes.php", "get"): (s, {}, {}),
        ("/api/two-factor.php", "get"): (s, {}, {}),
        ("/api/two-factor.php", "post"): (s, {"action": "disable", "otp": "123456"}, {}),
        ("/api/plan.php", "get"): (None, {}, {}),
        ("/api/recovery-codes.php", "post"): (s, {"password": "password123"}, {}),
        ("/api/agreement.php", "post"): (ad, {"action": "publish", "body": "Terms"},
                                         {"version": (v, {"action": "accept"})}),
        # reviews and item images
        ("/api/reviews.php", "get"): (None, {"store_uuid": w.store["uuid"]}, {}),
        ("/api/reviews.php", "post"): (b, {"action": "add", "transaction_uuid": x.completed, "score": "5"}, {}),
        ("/api/item-images.php", "get"): (None, {"item_uuid": w.item["uuid"]}, {}),
        ("/api/item-images.php", "post"): (v, {"action": "reorder", "item_uuid": w.item["uuid"], "order": ""},
                                           {"image_uuid": (v, {"action": "remove"})}),
    }


def fields_of(op):
    """(name, schema, required, 'query'|'body') for each documented input."""
    out = [(p["name"], p["schema"], p.get("required", False), "query") for p in op.get("parameters", [])]
    body = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {}).get("schema")
    if body:
        for name, schema in body.get("properties", {}).items():
            out.append((name, schema, name in body.get("required", []), "body"))
    return out


def send(client, x, method, path, who, fields):
    headers = {}
    if who == "owner":
        headers = x.owner["headers"]
    elif who is not None:
        headers = x.w[who]["headers"]
    data = {k: str(v) for k, v in fields.items()}
    if method == "get":
        return client.get(path + ("?" + urllib.parse.urlencode(data) if data else ""), headers=headers)
    return client.post(path, data=data, headers=headers)


@pytest.mark.parametrize("settings", [{
    "ALLOW_TESTNETS": "1",      # the token baseline is a Sepolia token with a manual price
    "EMAIL_ENABLED": "1",       # /api/email-settings.php validates its fields only then
}])
def test_every_constraint_is_enforced_at_its_edge(db, app):
    doc = openapi.document()
    x = setup(db)
    client = Client(app)
    table = baselines(x)
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert documented - set(table) == set(), "give every documented operation a baseline"
    table = {op: row for op, row in table.items() if op in documented}
    problems, tried = [], 0
    for (path, method), (who, base, overrides) in table.items():
        op = doc["paths"][path][method]
        for name, schema, required, _ in fields_of(op):
            if not constrained(schema):
                continue
            actor, fields = overrides.get(name, (who, base))
            value = fields.get(name, (schema.get("examples") or [None])[0])
            assert value is not None, f"{method} {path} {name}: no baseline value and no example"
            outside = [v for v in outside_values(schema, value, required) if not schema_ok(doc, schema, v)]
            if not outside:
                problems.append(f"{method} {path} {name}: no value outside the schema could be derived")
            for bad in outside:
                r = send(client, x, method, path, actor, dict(fields, **{name: bad}))
                tried += 1
                if not 400 <= r.status < 500 or r.status == 429:
                    problems.append(f"{method} {path} {name}={str(bad)[:40]!r} violates the schema but got "
                                    f"{r.status} {r.text[:120]}")
            for good in inside_values(schema, value):
                if not schema_ok(doc, schema, good):
                    if good is value:
                        problems.append(f"{method} {path} {name}: the baseline {value!r} violates the schema")
                    continue
                r = send(client, x, method, path, actor, dict(fields, **{name: good}))
                tried += 1
                if r.status >= 500 or r.status == 429:
                    problems.append(f"{method} {path} {name}={str(good)[:40]!r}: {r.status} {r.text[:120]}")
                elif r.status == 400 and names_field(r.json().get("error", ""), name):
                    problems.append(f"{method} {path} {name}={str(good)[:40]!r} satisfies the schema but was "
                                    f"refused: {r.text[:160]}")
    assert not problems, "\n".join(problems)
    assert tried > 300, tried


def test_outside_values_are_derived_for_every_kind_of_constraint():
    doc = openapi.document()
    uuid = openapi.EXAMPLE_UUID
    s = {"type": "string", "pattern": openapi.UUID_PATTERN}
    assert [v for v in outside_values(s, uuid, True) if not schema_ok(doc, s, v)] == \
        ["", uuid + "\x01", "!" + uuid, uuid + "!", uuid[:-1]]
    s = {"type": "integer", "minimum": 1, "maximum": 100}
    assert outside_values(s, 50, False) == ["x", 0, 101] and inside_values(s, 50) == [50, 1, 100]
    s = {"type": "string", "maxLength": 4}
    assert outside_values(s, "ab", False) == ["abbbb"] and inside_values(s, "ab") == ["ab", "abbb"]


def test_the_documented_constraints_match_the_validation_rules():
    """Spot checks against lib/ (the edge test above checks them all over HTTP)."""
    from lib import catalog, chains, config, tokens, users
    doc = openapi.document()
    paths = doc["paths"]

    def body(path, field):
        return paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"][field]

    assert body("/api/stores.php", "storename")["pattern"] == catalog.STORENAME_RE.pattern
    assert body("/admin/tokens.php", "symbol")["pattern"] == tokens.SYMBOL_RE.pattern
    assert re.fullmatch(body("/admin/users.php", "username")["pattern"][1:-1], "a.b-c_9")
    assert users.USERNAME_RE.pattern in body("/admin/users.php", "username")["pattern"]
    assert body("/api/items.php", "name")["maxLength"] == 64
    assert body("/api/transaction-actions.php", "refund_percent")["maximum"] == 100
    assert body("/api/transactions.php", "chain_id")["enum"] == [c for c in chains.CHAINS if tokens.chain_allowed(c)]
    assert body("/api/transactions.php", "refund_address")["pattern"] == r"^0x[0-9a-fA-F]{40}$"
    assert set(body("/admin/config.php", "price_max_age")) >= {"pattern"}
    config_body = paths["/admin/config.php"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(config_body["properties"]) == set(config.KEYS) | {"csrf_token"}
    assert config_body["additionalProperties"] is False
    limit = next(p for p in paths["/api/stores.php"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 200)
    for value, ok in (("9.99", True), ("0.01", True), ("1000000", True), ("1000000.00", True), ("0", False),
                      ("0.00", False), ("1000000.01", False), ("9.999", False), ("-1", False), ("1e3", False)):
        assert bool(re.search(body("/api/packages.php", "price_usd")["pattern"], value)) == ok, value


def test_chain_id_enum_follows_allow_dev_chain():
    with env.overriding({"ALLOW_DEV_CHAIN": "1"}):
        body = openapi.document()["paths"]["/api/transactions.php"]["post"]["requestBody"]
    assert 31337 in body["content"]["application/json"]["schema"]["properties"]["chain_id"]["enum"]
    with env.overriding({"ALLOW_DEV_CHAIN": "0"}):
        body = openapi.document()["paths"]["/api/transactions.php"]["post"]["requestBody"]
    assert 31337 not in body["content"]["application/json"]["schema"]["properties"]["chain_id"]["enum"]
