"""/api/openapi.json describes every JSON endpoint, and every endpoint's real answers
(success and error) match it. A small JSON-Schema checker (the subset the document uses)
validates each response of a scenario that calls every operation."""
import os
import re
import urllib.parse

import pyotp
import pytest

from lib import intents, openapi
from tests import market
from tests.factories import make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_ERRORS = {("/health.php", "get"), ("/api/openapi.json", "get"), ("/api/skill.php", "get")}  # nothing to get wrong
NOT_JSON = {("/api/skill.php", "get")}    # documented with its own content type (text/markdown)


# -- a minimal JSON-Schema checker -------------------------------------------------------

TYPES = {"string": lambda v: isinstance(v, str), "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
         "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
         "boolean": lambda v: isinstance(v, bool), "null": lambda v: v is None,
         "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list)}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def check(schema, value, doc, where="$"):
    """A list of problems (empty when `value` matches `schema`)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return check(doc["components"]["schemas"][name], value, doc, where)
    if "anyOf" in schema:
        results = [check(s, value, doc, where) for s in schema["anyOf"]]
        if all(results):
            return [f"{where}: matches none of anyOf: " + " | ".join("; ".join(r[:2]) for r in results)]
        return []
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[k](value) for k in kinds):
            return problems + [f"{where}: {value!r} is not {kinds}"]
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, str) and "minLength" in schema and len(value) < schema["minLength"]:
        problems.append(f"{where}: {value[:40]!r} shorter than {schema['minLength']}")
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        problems.append(f"{where}: {value[:40]!r} longer than {schema['maxLength']}")
    if isinstance(value, str) and schema.get("format") == "uuid" and not UUID_RE.match(value):
        problems.append(f"{where}: {value!r} is not a uuid")
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}: missing {name}")
        for name, item in value.items():
            if name in props:
                problems += check(props[name], item, doc, f"{where}.{name}")
            else:
                extra = schema.get("additionalProperties", True)
                if extra is False:
                    problems.append(f"{where}: undocumented property {name}")
                elif isinstance(extra, dict):
                    problems += check(extra, item, doc, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += check(schema["items"], item, doc, f"{where}[{i}]")
    return problems


def test_checker_catches_mismatches():
    doc = openapi.document()
    store = {"uuid": "00000000-0000-0000-0000-000000000000", "storename": "s", "description": None,
             "tier": "free", "vendorship_agreed_at": "2026-01-01 00:00:00", "created_at": "2026-01-01 00:00:00"}
    assert check({"$ref": "#/components/schemas/Store"}, store, doc) == []
    assert check({"$ref": "#/components/schemas/Store"}, dict(store, tier="platinum"), doc)
    assert check({"$ref": "#/components/schemas/Store"}, dict(store, secret=1), doc)
    assert check({"$ref": "#/components/schemas/Store"}, {k: v for k, v in store.items() if k != "uuid"}, doc)
    assert check({"$ref": "#/components/schemas/Store"}, dict(store, created_at="yesterday"), doc)
    assert check({"$ref": "#/components/schemas/Store"}, dict(store, uuid="not-a-uuid"), doc)
    assert check({"$ref": "#/components/schemas/Store"}, dict(store, description=5), doc)
    assert check({"type": "integer", "maximum": 200}, 201, doc)
    assert check({"type": "integer"}, True, doc)
    assert check({"anyOf": [{"type": "string"}, {"type": "null"}]}, 3, doc)
    assert check(doc["paths"]["/api/transactions.php"]["post"]["responses"]["200"]["content"]
                 ["application/json"]["schema"], {"ok": True, "required_amount": 0.05}, doc)


# -- every JSON script is documented ------------------------------------------------------

def json_scripts():
    """(url path, method) of every script under public/api and public/admin that answers JSON."""
    from wsgi import load_script
    found = set()
    for folder in ("api", "admin"):
        base = os.path.join(ROOT, "public", folder)
        for name in sorted(os.listdir(base)):
            if not name.endswith(".py") or name.startswith(("_", ".")):
                continue
            file = os.path.join(base, name)
            with open(file, encoding="utf-8") as f:
                text = f.read()
                if "json_response" not in text and "StreamResponse" not in text:
                    continue                       # an HTML page (e.g. /admin/ dashboard)
            module = load_script(file)
            stem = name[:-3]
            path = "/api/openapi.json" if stem == "openapi" else f"/{folder}/{stem.replace('_', '-')}.php"
            for method in ("get", "post", "put", "patch", "delete"):
                if callable(getattr(module, method, None)):
                    found.add((path, method))
    found.add(("/health.php", "get"))
    return found | NOT_JSON


def test_every_json_endpoint_is_documented_and_nothing_else():
    doc = openapi.document()
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    scripts = json_scripts()
    assert scripts - documented == set(), "endpoints missing from lib/openapi.py"
    assert documented - scripts == set(), "documented operations without a script"


def test_document_is_served_and_well_formed(client):
    r = client.get("/api/openapi.json")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    doc = r.json()
    assert doc["openapi"].startswith("3.") and doc == openapi.document()
    # every $ref resolves
    refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', r.text)
    assert refs and set(refs) <= set(doc["components"]["schemas"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "200" in op["responses"], (path, method)


# -- every operation's real answers match the document -------------------------------------

class Recorder:
    def __init__(self, client, doc):
        self.client, self.doc = client, doc
        self.seen = {}        # (path, method) -> set of statuses
        self.problems = []

    def call(self, method, url, headers=None, data=None, json_body=None, **raw):
        path, _, query = url.partition("?")
        r = self.client.request(method.upper(), url, data=data, json_body=json_body, headers=headers, **raw)
        op = self.doc["paths"].get(path, {}).get(method)
        if op is None:
            self.problems.append(f"{method} {path}: not documented")
            return r
        self.seen.setdefault((path, method), set()).add(r.status)
        names = {p["name"] for p in op.get("parameters", [])} | {"token"}
        for name in urllib.parse.parse_qs(query):
            if name not in names:
                self.problems.append(f"{method} {path}: undocumented query parameter {name}")
        body = data if data is not None else json_body
        if body:
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("additionalProperties") is None:
                for name in body:
                    if name not in schema.get("properties", {}):
                        self.problems.append(f"{method} {path}: undocumented body field {name}")
        response = op["responses"].get(str(r.status))
        if response is None:
            self.problems.append(f"{method} {path}: status {r.status} not documented ({r.text[:120]})")
            return r
        content = response.get("content", {})
        ctype = (r.header("Content-Type") or "").split(";")[0]
        if "application/json" not in content or (ctype != "application/json" and ctype in content):
            kind = ctype if ctype in content else next(iter(content))   # e.g. an export's text/csv
            if not (r.header("Content-Type") or "").startswith(kind):
                self.problems.append(f"{method} {path}: {r.status} is not {kind}")
            return r
        if r.header("Content-Type") != "application/json":
            self.problems.append(f"{method} {path}: {r.status} is not JSON")
            return r
        schema = response["content"]["application/json"]["schema"]
        for p in check(schema, r.json(), self.doc):
            self.problems.append(f"{method} {path} {r.status}: {p}")
        return r


def scenario(db, rec, make_client):
    """Call every documented operation at least once with success and once with an error."""
    w = market.world(db)
    v, b, st, ad, x = (w[k]["headers"] for k in ("vendor", "buyer", "staff", "admin", "stranger"))
    dep_owner = make_user(db, "depowner")
    G, P = "get", "post"

    rec.call(G, "/health.php")
    rec.call(G, "/api/openapi.json")
    rec.call(G, "/api/skill.php")
    # stores
    rec.call(G, "/api/stores.php?limit=10&offset=0")
    rec.call(G, f"/api/stores.php?uuid={w.store['uuid']}", headers=v)
    rec.call(G, "/api/stores.php?mine=1", headers=v)
    rec.call(G, "/api/stores.php?uuid=nope")
    rec.call(G, "/api/stores.php?limit=0")
    rec.call(G, "/api/stores.php", headers={"Authorization": "Bearer " + "0" * 64})
    rec.call(G, "/api/stores.php?mine=1")
    store2 = rec.call(P, "/api/stores.php", headers=dep_owner["headers"],
                      data={"storename": "deps", "description": "d", "vendorship_agree": "1"}).json()["store"]
    rec.call(P, "/api/stores.php", headers=b, data={"storename": "deps", "vendorship_agree": "1"})
    rec.call(P, "/api/stores.php", headers=b, json_body={"storename": "x"})
    rec.call(P, "/api/stores.php", data={"storename": "x", "vendorship_agree": "1"})
    assert rec.call(P, "/api/stores.php", headers=b, data={"storename": "big", "vendorship_agree": "1",
                                                           "description": "x" * (1024 * 1024)}).status == 413
    # items
    cat = str(db.value("SELECT MIN(id) FROM item_categories"))
    item = rec.call(P, "/api/items.php", headers=v, data={"store_uuid": w.store["uuid"], "name": "thing",
                                                          "description": "d", "category_id": cat}).json()["item"]
    rec.call(P, "/api/items.php", headers=b, data={"store_uuid": w.store["uuid"], "name": "thing"})
    rec.call(P, "/api/items.php", headers=v, data={"store_uuid": w.store["uuid"], "name": ""})
    rec.call(G, f"/api/items.php?store_uuid={w.store['uuid']}&q=thing&category_id={cat}&limit=5")
    rec.call(G, f"/api/items.php?uuid={item['uuid']}")
    rec.call(G, "/api/items.php?uuid=00000000-0000-0000-0000-000000000000")
    rec.call(G, "/api/items.php?category_id=abc")
    # packages
    market.add_token(db, 1, "USDC", market.USDC, decimals=6)            # no rate: a quote with an error
    rec.call(P, "/api/packages.php", headers=v, json_body={"item_uuid": item["uuid"], "name": "p",
                                                           "description": "d", "price_usd": "9.99"})
    rec.call(P, "/api/packages.php", headers=v, data={"item_uuid": item["uuid"], "name": "p", "price_usd": "-1"})
    rec.call(P, "/api/packages.php", headers=x, data={"item_uuid": item["uuid"], "name": "p", "price_usd": "1"})
    rec.call(G, f"/api/packages.php?item_uuid={w.item['uuid']}")
    rec.call(G, "/api/packages.php")
    rec.call(G, "/api/packages.php?item_uuid=00000000-0000-0000-0000-000000000000")
    # webhooks: a store's endpoint gets the events of the orders below
    WH = "/api/webhooks.php"
    hook = rec.call(P, WH, headers=v, json_body={"url": "https://93.184.216.34/hook", "store_uuid": w.store["uuid"],
                                                 "events": ["order.dispatched", "dispute.opened"]}).json()["webhook"]
    rec.call(P, WH, headers=v, data={"url": "http://10.0.0.1/hook", "events": "order.paid"})
    rec.call(P, WH, headers=x, data={"url": "https://93.184.216.34/", "store_uuid": w.store["uuid"]})
    rec.call(P, WH, headers=v, data={"url": "https://93.184.216.34/", "store_uuid": "00000000-0000-4000-8000-000000000000"})
    rec.call(G, WH, headers=v)
    rec.call(G, WH)
    # orders
    rec.call(P, "/api/transactions.php", headers=b, data={"package_uuid": w.package["uuid"], "currency": "ETH",
                                                          "chain_id": "1", "refund_address": market.ADDR_C,
                                                          "required_amount": "1"})
    rec.call(P, "/api/transactions.php", headers=b, data={"package_uuid": w.package["uuid"], "chain_id": "5"})
    rec.call(P, "/api/transactions.php", headers=b, data={"package_uuid": w.package["uuid"], "currency": "USDC"})
    rec.call(P, "/api/transactions.php", headers=v, data={"package_uuid": w.package["uuid"]})
    rec.call(P, "/api/transactions.php", headers=b, data={"package_uuid": "00000000-0000-0000-0000-000000000000"})
    uuid = market.order(db, w, "COMPLETED")
    db.execute("UPDATE evm_transactions SET escrow_address = ? WHERE transaction_uuid = ?", (market.ADDR_B, uuid))
    rec.call(G, "/api/transactions.php?limit=10&offset=0&scope=mine", headers=b)
    rec.call(G, "/api/transactions.php", headers=st)
    rec.call(G, "/api/transactions.php?scope=all", headers=b)
    rec.call(G, "/api/transactions.php?scope=zzz", headers=b)
    rec.call(G, f"/api/transactions.php?uuid={uuid}", headers=b)
    rec.call(G, f"/api/transactions.php?uuid={uuid}", headers=x)
    rec.call(G, "/api/transactions.php")
    # actions and disputes
    A = "/api/transaction-actions.php"
    rec.call(P, A, headers=v, data={"transaction_uuid": uuid, "action": "dispatch", "comment": "sent"})
    rec.call(P, A, headers=v, data={"transaction_uuid": uuid, "action": "dispatch"})
    rec.call(P, A, headers=b, data={"transaction_uuid": uuid, "action": "dispatch"})
    rec.call(P, A, headers=x, data={"transaction_uuid": uuid, "action": "release"})
    rec.call(P, A, headers=b, data={"transaction_uuid": uuid, "action": "fly"})
    rec.call(P, A, headers=b, json_body={"transaction_uuid": uuid, "action": "dispute", "comment": "broken"})
    dispute_uuid = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (uuid,))
    rec.call(G, "/api/disputes.php?status=open&limit=5", headers=b)
    rec.call(G, f"/api/disputes.php?uuid={dispute_uuid}", headers=v)
    rec.call(G, f"/api/disputes.php?uuid={dispute_uuid}", headers=x)
    rec.call(G, "/api/disputes.php?status=maybe", headers=b)
    rec.call(P, "/api/disputes.php", headers=v, data={"dispute_uuid": dispute_uuid, "claim": "it worked"})
    rec.call(P, "/api/disputes.php", headers=b, data={"dispute_uuid": dispute_uuid, "resolution": "refund"})
    rec.call(P, "/api/disputes.php", headers=st, data={"dispute_uuid": dispute_uuid, "resolution": "partial_refund",
                                                       "refund_percent": "200"})
    rec.call(P, "/api/disputes.php", headers=st, data={"dispute_uuid": dispute_uuid, "resolution": "partial_refund",
                                                       "refund_percent": "25", "comment": "split"})
    rec.call(P, "/api/disputes.php", headers=b, data={"dispute_uuid": dispute_uuid, "claim": "late"})
    rec.call(P, A, headers=st, data={"transaction_uuid": uuid, "action": "release"})
    rec.call(G, f"/api/transactions.php?uuid={uuid}", headers=st)     # with intents and a dispute
    # deposits
    dh = dep_owner["headers"]
    dep = rec.call(P, "/api/deposits.php", headers=dh, data={"store_uuid": store2["uuid"], "currency": "ETH",
                                                             "chain_id": "1"}).json()["deposit"]
    rec.call(P, "/api/deposits.php", headers=dh, data={"store_uuid": store2["uuid"]})
    rec.call(P, "/api/deposits.php", headers=b, data={"store_uuid": store2["uuid"]})
    rec.call(P, "/api/deposits.php", headers=dh, data={"store_uuid": store2["uuid"], "chain_id": "x"})
    rec.call(G, f"/api/deposits.php?store_uuid={store2['uuid']}&limit=5", headers=dh)
    rec.call(G, f"/api/deposits.php?uuid={dep['uuid']}", headers=dh)
    rec.call(G, f"/api/deposits.php?uuid={dep['uuid']}", headers=b)
    rec.call(G, "/api/deposits.php?all=1&limit=5", headers=st)
    rec.call(G, "/api/deposits.php?all=1", headers=b)
    rec.call(G, "/api/deposits.php?all=2", headers=st)
    rec.call(P, "/api/deposit-withdraw.php", headers=dh, data={"deposit_uuid": dep["uuid"]})
    rec.call(P, "/api/store-settings.php", headers=dh, data={"store_uuid": store2["uuid"],
                                                             "payout_address": market.ADDR_D, "description": "x"})
    rec.call(P, "/api/store-settings.php", headers=dh, data={"store_uuid": store2["uuid"],
                                                             "payout_address": market.BAD_CHECKSUM})
    rec.call(P, "/api/store-settings.php", headers=b, data={"store_uuid": store2["uuid"], "description": "x"})
    rec.call(P, "/api/store-settings.php", headers=dh, data={"store_uuid": "00000000-0000-0000-0000-000000000000",
                                                             "description": "x"})
    db.execute("UPDATE deposits SET address = ?, balance = '1000' WHERE uuid = ?", (market.ADDR_B, dep["uuid"]))
    rec.call(P, "/api/deposit-withdraw.php", headers=dh, data={"deposit_uuid": dep["uuid"]})
    rec.call(P, "/api/deposit-withdraw.php", headers=dh, data={"deposit_uuid": dep["uuid"]})
    rec.call(P, "/api/deposit-withdraw.php", headers=b, data={"deposit_uuid": dep["uuid"]})
    rec.call(P, "/api/deposit-withdraw.php", headers=dh, data={})
    rec.call(G, f"/api/deposits.php?uuid={dep['uuid']}", headers=dh)     # with history and withdrawals
    # user settings
    rec.call(G, "/api/user-settings.php", headers=b)
    rec.call(G, "/api/user-settings.php")
    rec.call(P, "/api/user-settings.php", headers=b, data={"refund_address": market.ADDR_C, "payout_address": ""})
    rec.call(P, "/api/user-settings.php", headers=b, data={"refund_address": market.NO_CHECKSUM})
    # keys and auth-user (accounts issue)
    rec.call(G, "/api/keys.php", headers=x)
    rec.call(G, "/api/keys.php")
    key = rec.call(P, "/api/keys.php", headers=x, data={"name": "laptop"}).json()
    rec.call(P, "/api/keys.php", headers=x, data={"name": ""})
    rec.call(P, "/api/keys-revoke.php", headers=x, data={"id": str(key["id"])})
    rec.call(P, "/api/keys-revoke.php", headers=x, data={"id": "999999"})
    rec.call(P, "/api/keys-revoke.php", headers=x, data={"id": "abc"})
    from lib import session as sessionmod
    _tok, srow = sessionmod.create(db, w["stranger"]["uuid"], "203.0.113.9", "curl/8.0")
    rec.call(G, "/api/sessions.php", headers=x)
    rec.call(G, "/api/sessions.php")
    rec.call(P, "/api/sessions-end.php", headers=x, data={"id": str(srow["id"])})
    rec.call(P, "/api/sessions-end.php", headers=x, data={"id": str(srow["id"])})
    rec.call(P, "/api/sessions-end.php", headers=x, data={"id": "abc"})
    rec.call(G, "/api/auth-user.php", headers=x)
    rec.call(G, "/api/auth-user.php")
    # admin
    rec.call(G, "/admin/tokens.php", headers=ad)
    rec.call(G, "/admin/tokens.php", headers=st)
    tok = rec.call(P, "/admin/tokens.php", headers=ad, data={"chain_id": "8453", "symbol": "ETH",
                                                             "contract_address": ""}).json()["token"]
    rec.call(P, "/admin/tokens.php", headers=ad, data={"chain_id": "8453", "symbol": "ETH"})
    rec.call(P, "/admin/tokens.php", headers=ad, data={"chain_id": "1", "symbol": "X",
                                                       "contract_address": market.BAD_CHECKSUM})
    rec.call(P, "/admin/tokens.php", headers=ad, data={"chain_id": "11155111", "symbol": "USDC",
                                                       "contract_address": market.USDC, "decimals": "6",
                                                       "manual_usd_price": "1"})
    rec.call(P, "/admin/tokens-remove.php", headers=ad, data={"id": str(tok["id"])})
    rec.call(P, "/admin/tokens-remove.php", headers=ad, data={"id": str(tok["id"])})
    rec.call(P, "/admin/tokens-remove.php", headers=st, data={"id": "1"})
    rec.call(G, "/admin/config.php", headers=ad)
    rec.call(G, "/admin/config.php", headers=b)
    rec.call(P, "/admin/config.php", headers=ad, data={"price_max_age": "20m"})
    rec.call(P, "/admin/config.php", headers=ad, data={"price_max_age": "never"})
    rec.call(G, "/admin/users.php?limit=5&role=customer&q=b", headers=ad)
    rec.call(G, "/admin/users.php", headers=v)
    rec.call(P, "/admin/users.php", headers=ad, data={"username": "stranger1", "role": "staff"})
    rec.call(P, "/admin/users.php", headers=ad, data={"username": "nobody", "role": "staff"})
    rec.call(P, "/admin/users.php", headers=ad, data={"username": "stranger1", "can_sell": "0"})
    rec.call(P, "/admin/users.php", headers=ad, data={"username": "stranger1", "can_sell": "x"})
    rec.call(P, "/admin/users.php", headers=ad, data={"username": "stranger1", "can_sell": "1"})
    # payout actions: an order's RELEASE that cron handed to staff
    stuck = intents.open_intent(db, market.order(db, w, "COMPLETED"), intents.RELEASE, None)
    intents.needs_attention(db, intents.ORDERS, stuck, "commission leg failed", chain_id=1)
    PA = "/api/payout-actions.php"
    rec.call(G, PA, headers=st)
    rec.call(G, PA, headers=b)
    rec.call(P, PA, headers=st, data={"intent_uuid": stuck["uuid"], "action": "fly"})
    rec.call(P, PA, headers=st, data={"intent_uuid": stuck["uuid"], "action": "retry"})
    assert intents.open_row(db, uuid)["action"] == "PARTIAL_REFUND"
    WD, WR = "/api/webhook-deliveries.php", "/api/webhook-redeliver.php"
    deliveries = rec.call(G, f"{WD}?webhook_id={hook['id']}&limit=5", headers=v).json()["deliveries"]
    assert [d["event_type"] for d in deliveries] == ["dispute.opened", "order.dispatched"]
    rec.call(G, f"{WD}?webhook_id={hook['id']}", headers=x)
    rec.call(G, f"{WD}?webhook_id=abc", headers=v)
    rec.call(P, WR, headers=v, data={"delivery_id": str(deliveries[0]["id"])})            # still pending: 409
    db.execute("UPDATE webhook_deliveries SET status = 'delivered' WHERE id = ?", (deliveries[0]["id"],))
    rec.call(P, WR, headers=v, data={"event_id": deliveries[0]["event_id"]})
    rec.call(P, WR, headers=x, data={"delivery_id": str(deliveries[1]["id"])})
    rec.call(P, WR, headers=v, data={})
    rec.call(P, "/api/webhooks-delete.php", headers=x, data={"id": str(hook["id"])})
    rec.call(P, "/api/webhooks-delete.php", headers=v, data={"id": str(hook["id"])})
    rec.call(P, "/api/webhooks-delete.php", headers=v, data={"id": "x"})
    # exports: JSON and CSV, a vendor's and staff's, bad ranges
    EX = "/api/exports.php?from=2021-01-01&to=2030-12-31"
    r = rec.call(G, f"{EX}&format=json", headers=v)
    assert r.status == 200, r
    rows = r.json()["rows"]
    assert rows and rows[0]["store"] == "shop"
    rec.call(G, f"{EX}&format=json&kind=payouts", headers=st)
    rec.call(G, f"{EX}&format=json&kind=disputes", headers=st)
    assert rec.call(G, EX, headers=v).text.startswith("order_uuid,")
    rec.call(G, f"{EX}&kind=orders", headers=v)
    rec.call(G, "/api/exports.php?from=2020-01-01&to=2019-12-31", headers=v)
    rec.call(G, f"{EX}&store_uuid={w.store['uuid']}", headers=x)
    # messages and notifications
    M, NT = "/api/messages.php", "/api/notifications.php"
    talk = market.order(db, w, "COMPLETED")
    sent = rec.call(P, M, headers=b, data={"to": "vendor1", "body": "hello"}).json()
    rec.call(P, M, headers=b, json_body={"transaction_uuid": talk, "body": "about the order"})
    rec.call(P, M, headers=b, data={"to": "vendor1", "body": ""})
    rec.call(P, M, headers=x, data={"transaction_uuid": talk, "body": "let me in"})
    rec.call(P, M, headers=v, data={"action": "block", "username": "buyer1"})
    rec.call(P, M, headers=b, data={"to": "vendor1", "body": "blocked?"})
    rec.call(P, M, headers=v, data={"action": "unblock", "username": "buyer1"})
    rec.call(G, M, headers=v)
    rec.call(G, M + "?with=buyer1&limit=10", headers=v)
    rec.call(G, M + f"?transaction_uuid={talk}", headers=v)
    rec.call(G, M + f"?thread={sent['thread']['uuid']}", headers=b)
    rec.call(G, M + f"?transaction_uuid={talk}", headers=x)
    rec.call(G, M + "?with=a!b", headers=v)
    notes = rec.call(G, NT + "?unread=1", headers=v).json()["notifications"]
    rec.call(G, NT + "?unread=maybe", headers=v)
    rec.call(P, NT, headers=v, data={"id": str(notes[0]["id"])})
    rec.call(P, NT, headers=x, data={"id": str(notes[0]["id"])})
    rec.call(P, NT, headers=v, data={"id": "x"})
    rec.call(P, NT, headers=v, data={"all": "1"})
    # support tickets and store warnings
    TK = "/api/tickets.php"
    ticket = rec.call(P, TK, headers=b, data={"action": "create", "subject": "Help", "body": "Where is it?",
                                              "transaction_uuid": uuid}).json()["ticket"]
    rec.call(P, TK, headers=b, data={"action": "create", "subject": ""})
    rec.call(P, TK, headers=st, data={"action": "reply", "uuid": ticket["uuid"], "body": "Sent."})
    rec.call(P, TK, headers=st, data={"action": "assign", "uuid": ticket["uuid"], "assignee": "staff1"})
    rec.call(P, TK, headers=st, data={"action": "close", "uuid": ticket["uuid"], "comment": "done"})
    rec.call(P, TK, headers=b, data={"action": "reply", "uuid": ticket["uuid"], "body": "closed: 409"})
    rec.call(P, TK, headers=x, data={"action": "reply", "uuid": ticket["uuid"], "body": "not mine: 404"})
    rec.call(P, TK, headers=b, data={"action": "close", "uuid": ticket["uuid"]})
    rec.call(G, TK + "?limit=5", headers=b)
    rec.call(G, TK + "?queue=1&status=closed", headers=st)
    rec.call(G, f"{TK}?uuid={ticket['uuid']}", headers=b)
    rec.call(G, f"{TK}?uuid={ticket['uuid']}", headers=x)
    rec.call(G, TK + "?queue=1", headers=b)
    rec.call(G, TK + "?queue=1&status=maybe", headers=st)
    SW = "/api/store-warnings.php"
    warning = rec.call(P, SW, headers=st, data={"action": "add", "store": "shop", "reason": "Late"}).json()["warning"]
    rec.call(P, SW, headers=st, data={"action": "add", "store": "shop"})
    rec.call(P, SW, headers=b, data={"action": "add", "store": "shop", "reason": "x"})
    rec.call(G, f"/api/stores.php?uuid={w.store['uuid']}")
    rec.call(G, f"{SW}?store_uuid={w.store['uuid']}")
    rec.call(G, f"{SW}?store_uuid=00000000-0000-4000-8000-000000000000")
    rec.call(P, SW, headers=st, data={"action": "retire", "id": str(warning["id"])})
    rec.call(P, SW, headers=st, data={"action": "retire", "id": str(warning["id"])})
    rec.call(P, SW, headers=st, data={"action": "retire", "id": "999999"})
    rec.call(G, SW + "?retired=1&limit=5", headers=st)
    rec.call(G, SW, headers=b)
    rec.call(G, SW + "?retired=2", headers=st)
    # email settings, categories and the agreement as JSON
    EM = "/api/email-settings.php"
    plain, rec.client = rec.client, make_client({"EMAIL_ENABLED": "1"})     # a site that sends mail
    rec.call(G, EM, headers=x)
    rec.call(P, EM, headers=x, data={"action": "add", "email": "x@example.com"})
    code = re.search(r"code=([A-Za-z0-9_\-]+)", db.value("SELECT body FROM email_outbox WHERE to_addr = "
                                                        "'x@example.com'")).group(1)
    rec.call(P, EM, headers=x, data={"action": "verify", "code": code})
    rec.call(P, EM, headers=x, data={"action": "notifications", "order.paid": "0"})
    rec.call(P, EM, headers=x, data={"action": "notifications", "order.paid": "maybe"})
    rec.call(P, EM, headers=x, data={"action": "remove"})
    rec.call(G, EM)
    rec.client = plain
    rec.call(P, EM, headers=x, data={"action": "add", "email": "x@example.com"})
    CA = "/api/categories.php"
    rec.call(G, CA)
    rec.call(G, CA, headers={"Authorization": "Bearer " + "0" * 64})
    books = rec.call(P, CA, headers=st, data={"action": "add", "name": "Books"}).json()["category"]
    rec.call(P, CA, headers=st, data={"action": "add", "name": "Books"})
    rec.call(P, CA, headers=st, data={"action": "rename", "category_id": str(books["id"]), "name": "a/b"})
    rec.call(P, CA, headers=b, data={"action": "remove", "category_id": str(books["id"])})
    rec.call(P, CA, headers=st, data={"action": "remove", "category_id": str(books["id"])})
    AG = "/api/agreement.php"
    rec.call(G, AG, headers=v)
    rec.call(G, AG, headers={"Authorization": "Bearer " + "0" * 64})
    rec.call(P, AG, headers=ad, data={"action": "publish", "body": "Ship fast."})
    rec.call(P, AG, headers=v, data={"action": "accept", "version": "1"})
    rec.call(P, AG, headers=v, data={"action": "accept", "version": "7"})
    rec.call(P, AG, headers=v, data={"action": "publish", "body": "mine"})
    rec.call(P, AG, headers=ad, data={"action": "publish", "body": ""})
    TF = "/api/two-factor.php"
    rec.call(G, TF, headers=x)
    rec.call(G, TF)
    secret = rec.call(P, TF, headers=x, data={"action": "begin"}).json()["secret"]
    rec.call(P, TF, headers=x, data={"action": "confirm", "otp": "abcdef"})
    rec.call(P, TF, headers=x, data={"action": "confirm", "otp": pyotp.TOTP(secret).now()})
    rec.call(P, TF, headers=x, data={"action": "begin"})
    rec.call(G, "/api/plan.php")
    rec.call(G, "/api/plan.php", headers={"Authorization": "Bearer " + "0" * 64})
    RC = "/api/recovery-codes.php"
    rec.call(G, RC, headers=x)
    rec.call(G, RC)
    rec.call(P, RC, headers=x, data={"password": "password123"})
    rec.call(P, RC, headers=x, data={"password": "wrong-password"})
    rec.call(P, RC, headers=x, data={})
    reviews_and_images(db, rec, w)


def reviews_and_images(db, rec, w):
    """Reviews, ratings and item images."""
    from tests.test_item_images import multipart, picture
    v, b, st = (w[k]["headers"] for k in ("vendor", "buyer", "staff"))
    G, P, R = "get", "post", "/api/reviews.php"
    released = market.order(db, w, status="RELEASED")
    review = rec.call(P, R, headers=b, data={"action": "add", "transaction_uuid": released, "score": "4",
                                             "body": "good"}).json()["review"]
    rec.call(P, R, headers=b, json_body={"action": "add", "transaction_uuid": released, "score": 4})   # 409
    rec.call(P, R, headers=v, data={"action": "reply", "review_uuid": review["uuid"], "reply": "thanks"})
    rec.call(P, R, headers=b, data={"action": "reply", "review_uuid": review["uuid"], "reply": "x"})   # 403
    rec.call(P, R, headers=b, data={"action": "add", "transaction_uuid": released, "score": "9"})      # 400
    rec.call(G, f"{R}?store_uuid={w.store['uuid']}&limit=5")
    rec.call(G, f"{R}?item_uuid={w.item['uuid']}")
    rec.call(G, f"{R}?uuid={review['uuid']}")
    rec.call(G, f"{R}?transaction_uuid={released}", headers=b)
    rec.call(G, f"{R}?mine=1", headers=b)
    rec.call(G, f"{R}?mine=1")                                                                        # 401
    rec.call(G, f"{R}?store_uuid=nope")
    rec.call(G, f"{R}?uuid=00000000-0000-4000-8000-000000000000")
    rec.call(P, R, headers=st, data={"action": "hide", "review_uuid": review["uuid"], "reason": "test"})
    rec.call(G, f"{R}?store_uuid={w.store['uuid']}", headers=st)
    rec.call(G, f"/api/stores.php?uuid={w.store['uuid']}")
    I = "/api/item-images.php"
    body, ctype = multipart({"item_uuid": w.item["uuid"]}, {"image": ("a.jpg", picture(size=(50, 40)), "image/jpeg")})
    first = rec.call(P, I, headers=v, body=body, content_type=ctype).json()["image"]
    body, ctype = multipart({"item_uuid": w.item["uuid"]}, {"image": ("a.png", b"not an image", "image/png")})
    rec.call(P, I, headers=v, body=body, content_type=ctype)                                          # 400
    body, ctype = multipart({"item_uuid": w.item["uuid"]}, {"image": ("b.png", picture("PNG", (30, 30)), "image/png")})
    second = rec.call(P, I, headers=v, body=body, content_type=ctype).json()["image"]
    rec.call(P, I, headers=v, data={"action": "reorder", "item_uuid": w.item["uuid"],
                                    "order": f"{second['uuid']},{first['uuid']}"})
    rec.call(P, I, headers=b, data={"action": "remove", "image_uuid": first["uuid"]})                  # 403
    rec.call(G, f"{I}?item_uuid={w.item['uuid']}")
    rec.call(G, f"{I}?item_uuid=00000000-0000-4000-8000-000000000000")
    rec.call(G, f"/api/items.php?uuid={w.item['uuid']}")
    rec.call(G, "/api/items.php?sort=rating")
    rec.call(G, "/api/items.php?sort=cheap")
    rec.call(P, I, headers=v, data={"action": "remove", "image_uuid": first["uuid"]})


@pytest.fixture
def settings(tmp_path):
    return {"MEDIA_DIR": str(tmp_path / "media")}     # the item images the scenario uploads


def test_every_operation_answers_as_documented(db, client, make_client):
    doc = openapi.document()
    rec = Recorder(client, doc)
    scenario(db, rec, make_client)
    assert not rec.problems, "\n".join(rec.problems)
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert set(rec.seen) == documented, documented - set(rec.seen)
    for op, statuses in rec.seen.items():
        assert any(200 <= s < 300 for s in statuses), f"{op}: no success answer exercised ({statuses})"
        if op not in NO_ERRORS:
            assert any(400 <= s < 500 for s in statuses), f"{op}: no error answer exercised ({statuses})"


def test_the_document_names_every_mail_kind_and_webhook_event():
    from lib import mail, webhooks
    assert list(openapi._MAIL_KINDS) == list(mail.KINDS)
    assert openapi._EVENT["enum"] == list(webhooks.EVENTS)
