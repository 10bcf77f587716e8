"""Scoped API keys: creating keys with scopes and a store, each scope
allowed and refused across representative endpoints, the scope table covering every JSON
endpoint, x-scope in the OpenAPI document, and keys made before the migration. SQLite and
MariaDB."""
import ast
import os
import uuid as uuidlib

import pytest

from lib import migrate, scopes
from lib import status_machine as sm
from tests import market
from tests.client import Client
from tests.conftest import ROOT
from tests.factories import login, make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)


def new_key(client, user, scopes_value=None, store_uuid=None, json_body=True, name="scoped"):
    body = {"name": name}
    if scopes_value is not None:
        body["scopes"] = scopes_value
    if store_uuid is not None:
        body["store_uuid"] = store_uuid
    if json_body:
        r = client.post("/api/keys.php", json_body=body, headers=user["headers"])
    else:
        r = client.post("/api/keys.php", data=body, headers=user["headers"])
    assert r.status == 200, r
    return r.json(), {"Authorization": "Bearer " + r.json()["api_key"]}


def store_post(client, headers, name="newshop"):
    return client.post("/api/stores.php", data={"storename": name, "description": "d", "vendorship_agree": "1"},
                       headers=headers)


def item_post(client, headers, store_uuid, name="thing"):
    return client.post("/api/items.php", data={"store_uuid": store_uuid, "name": name, "description": "d"},
                       headers=headers)


# -- creating and listing keys ---------------------------------------------------------

def test_keys_take_scopes_as_list_or_comma_separated_and_list_them(client, db):
    user = make_user(db, "alice")
    body, _ = new_key(client, user, ["read", "orders"])
    assert body["scopes"] == ["read", "orders"] and body["store_uuid"] is None
    body2, _ = new_key(client, user, "orders, READ", json_body=False, name="form")
    assert body2["scopes"] == ["read", "orders"]
    body3, _ = new_key(client, user, None, name="default")
    assert body3["scopes"] == ["full"]
    body4, _ = new_key(client, user, ["full", "read"], name="full wins")
    assert body4["scopes"] == ["full"]
    listed = {k["name"]: k for k in client.get("/api/keys.php", headers=user["headers"]).json()["keys"]}
    assert listed["scoped"]["scopes"] == ["read", "orders"] and listed["form"]["scopes"] == ["read", "orders"]
    assert listed["default"]["scopes"] == ["full"] and listed["test"]["scopes"] == ["full"]
    assert db.value("SELECT scopes FROM api_keys WHERE id = ?", (body["id"],)) == "read,orders"


@pytest.mark.parametrize("bad", ["admin", ["read", "root"], [1], {"a": 1}, "read,,nope"])
def test_unknown_scopes_are_400_and_create_nothing(client, db, bad):
    user = make_user(db, "alice")
    r = client.post("/api/keys.php", json_body={"name": "x", "scopes": bad}, headers=user["headers"])
    assert r.status == 400 and "scope" in r.json()["error"]
    assert db.value("SELECT COUNT(*) FROM api_keys") == 1


def test_store_uuid_must_be_a_store_of_mine_with_the_store_scope(client, db):
    w = market.world(db)
    other = market.store(db, w.stranger, "elsewhere")
    r = client.post("/api/keys.php", json_body={"name": "x", "scopes": ["store"], "store_uuid": other["uuid"]},
                    headers=w.vendor["headers"])
    assert r.status == 403 and "not a member" in r.json()["error"]
    r = client.post("/api/keys.php", json_body={"name": "x", "scopes": ["store"], "store_uuid": str(uuidlib.uuid4())},
                    headers=w.vendor["headers"])
    assert r.status == 404
    for without_store in (["orders"], ["full"], None):
        r = client.post("/api/keys.php", json_body={"name": "x", "scopes": without_store,
                                                    "store_uuid": w.store["uuid"]}, headers=w.vendor["headers"])
        assert r.status == 400 and "store" in r.json()["error"], without_store
    body, _ = new_key(client, w.vendor, ["store"], w.store["uuid"])
    assert body["store_uuid"] == w.store["uuid"] and body["scopes"] == ["store"]
    assert db.value("SELECT COUNT(*) FROM api_keys WHERE user_uuid = ?", (w.vendor["uuid"],)) == 2


def test_key_management_needs_full(client, db):
    user = make_user(db, "alice")
    for granted in (["read"], ["orders"], ["store"], ["read", "orders", "store"]):
        _, headers = new_key(client, user, granted, name="k-" + "-".join(granted))
        r = client.post("/api/keys.php", data={"name": "more"}, headers=headers)
        assert r.status == 403 and r.json()["error"] == "this API key lacks the 'full' scope", granted
        r = client.post("/api/keys-revoke.php", data={"id": str(user["api_key_id"])}, headers=headers)
        assert r.status == 403 and "'full'" in r.json()["error"]
        assert client.get("/api/keys.php", headers=headers).status == 200
        r = client.post("/api/user-settings.php", data={"refund_address": market.ADDR_A}, headers=headers)
        assert r.status == 403 and "'full'" in r.json()["error"]
    assert db.value("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL") == 5
    assert db.value("SELECT refund_address FROM users WHERE uuid = ?", (user["uuid"],)) is None


# -- read ---------------------------------------------------------------------------

def test_read_key_reads_and_is_refused_every_write_naming_the_scope(client, db):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    _, read = new_key(client, w.buyer, "read")
    _, vread = new_key(client, w.vendor, "read")
    for path in ("/api/transactions.php", f"/api/transactions.php?uuid={uuid}", "/api/auth-user.php",
                 "/api/keys.php", "/api/disputes.php", "/api/user-settings.php", "/api/stores.php?mine=1"):
        assert client.get(path, headers=read).status == 200, path
        assert client.request("HEAD", path, headers=read).status == 200, path
    assert client.get("/api/deposits.php", headers=vread).status == 200
    r = client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"], "refund_address": market.ADDR_A},
                    headers=read)
    assert r.status == 403 and r.json()["error"] == "this API key lacks the 'orders' scope"
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "release"}, headers=read)
    assert r.status == 403 and r.json()["error"] == "this API key lacks the 'orders' scope"
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "dispatch"},
                    headers=vread)
    assert r.status == 403 and r.json()["error"] == "this API key lacks the 'store' scope"
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": str(uuidlib.uuid4()),
                                                          "action": "release"}, headers=read)
    assert r.status == 403 and r.json()["error"] == "this API key lacks the 'orders' or 'store' scope"
    r = item_post(client, vread, w.store["uuid"])
    assert r.status == 403 and r.json()["error"] == "this API key lacks the 'store' scope"
    r = store_post(client, read)
    assert r.status == 403 and "'store'" in r.json()["error"]
    r = client.post("/book.php?package_uuid=" + w.package["uuid"], data={"token": "1:ETH"}, headers=read)
    assert r.status == 403 and "lacks the 'orders' scope" in r.text
    assert db.value("SELECT COUNT(*) FROM transactions") == 1
    assert db.value("SELECT COUNT(*) FROM transaction_intents") == 0
    assert db.value("SELECT COUNT(*) FROM items") == 1 and db.value("SELECT COUNT(*) FROM stores") == 1


# -- orders --------------------------------------------------------------------------

def test_orders_key_creates_an_order_and_releases_it_as_buyer(client, db):
    w = market.world(db)
    _, orders_key = new_key(client, w.buyer, ["orders"])
    r = client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"], "refund_address": market.ADDR_A},
                    headers=orders_key)
    assert r.status == 200, r
    uuid = r.json()["uuid"]
    required = db.value("SELECT required_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))
    for status in ("PENDING", "COMPLETED"):   # what cron appends when the escrow is paid
        sm.append_status(db, uuid, status, required if status != "PENDING" else "0")
    assert client.get(f"/api/transactions.php?uuid={uuid}", headers=orders_key).status == 200
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "release"},
                    headers=orders_key)
    assert r.status == 200, r
    assert db.value("SELECT action FROM transaction_intents WHERE transaction_uuid = ?", (uuid,)) == "RELEASE"
    # the buyer's other actions, claims on the buyer's dispute
    other = market.order(db, w, "COMPLETED")
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": other, "action": "dispute",
                                                          "comment": "never came"}, headers=orders_key)
    assert r.status == 200, r
    dispute_uuid = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (other,))
    r = client.post("/api/disputes.php", data={"dispute_uuid": dispute_uuid, "claim": "still nothing"},
                    headers=orders_key)
    assert r.status == 200, r


def test_orders_key_cannot_manage_a_store_even_for_its_vendor(client, db):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    shipping = db.value("SELECT COUNT(*) FROM shipping_statuses WHERE transaction_uuid = ?", (uuid,))
    _, vorders = new_key(client, w.vendor, ["orders"])
    r = item_post(client, vorders, w.store["uuid"])
    assert r.status == 403 and r.json()["error"] == "this API key lacks the 'store' scope"
    r = client.post("/api/packages.php", data={"item_uuid": w.item["uuid"], "name": "p", "price_usd": "5"},
                    headers=vorders)
    assert r.status == 403 and "'store'" in r.json()["error"]
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "dispatch"},
                    headers=vorders)
    assert r.status == 403 and "'store'" in r.json()["error"]
    r = client.post("/api/store-settings.php", data={"store_uuid": w.store["uuid"], "description": "x"},
                    headers=vorders)
    assert r.status == 403 and "'store'" in r.json()["error"]
    r = client.post("/api/deposits.php", data={"store_uuid": w.store["uuid"]}, headers=vorders)
    assert r.status == 403 and "'store'" in r.json()["error"]
    assert db.value("SELECT COUNT(*) FROM items") == 1 and db.value("SELECT COUNT(*) FROM packages") == 1
    assert db.value("SELECT COUNT(*) FROM shipping_statuses WHERE transaction_uuid = ?", (uuid,)) == shipping


# -- store ---------------------------------------------------------------------------

def test_store_key_with_store_uuid_manages_that_store_only(client, db):
    w = market.world(db)
    second = market.store(db, w.vendor, "second")
    item_b = market.item(db, w.vendor, second["uuid"], "b-item")
    order_a = market.order(db, w, "COMPLETED")
    _, key_a = new_key(client, w.vendor, ["store"], w.store["uuid"])
    r = item_post(client, key_a, w.store["uuid"], "a-new")
    assert r.status == 200, r
    r = client.post("/api/packages.php", data={"item_uuid": r.json()["uuid"], "name": "p", "price_usd": "5"},
                    headers=key_a)
    assert r.status == 200, r
    r = client.post("/api/store-settings.php", data={"store_uuid": w.store["uuid"], "description": "new words"},
                    headers=key_a)
    assert r.status == 200, r
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": order_a, "action": "dispatch"},
                    headers=key_a)
    assert r.status == 200, r
    # the same user's other store is out of reach
    limited = f"this API key is limited to the store {w.store['uuid']}"
    r = item_post(client, key_a, second["uuid"], "b-new")
    assert r.status == 403 and r.json()["error"] == limited
    r = client.post("/api/packages.php", data={"item_uuid": item_b["uuid"], "name": "p", "price_usd": "5"},
                    headers=key_a)
    assert r.status == 403 and r.json()["error"] == limited
    r = client.post("/api/store-settings.php", data={"store_uuid": second["uuid"], "description": "x"},
                    headers=key_a)
    assert r.status == 403 and r.json()["error"] == limited
    r = client.post("/api/deposits.php", data={"store_uuid": second["uuid"]}, headers=key_a)
    assert r.status == 403 and r.json()["error"] == limited
    r = store_post(client, key_a, "third")
    assert r.status == 403 and "cannot create stores" in r.json()["error"]
    # nor is buying
    r = client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"], "refund_address": market.ADDR_A},
                    headers=key_a)
    assert r.status == 403 and r.json()["error"] == "this API key lacks the 'orders' scope"
    assert db.value("SELECT COUNT(*) FROM items WHERE store_uuid = ?", (second["uuid"],)) == 1
    assert db.value("SELECT COUNT(*) FROM stores") == 2
    assert db.value("SELECT description FROM stores WHERE uuid = ?", (second["uuid"],)) == "a store"


def test_store_key_without_store_uuid_manages_every_store_and_never_more_than_the_user(client, db):
    w = market.world(db)
    second = market.store(db, w.vendor, "second")
    _, key = new_key(client, w.vendor, "store")
    assert item_post(client, key, second["uuid"]).status == 200
    assert item_post(client, key, w.store["uuid"]).status == 200
    assert store_post(client, key, "third").status == 200
    # scopes only narrow: a store key of someone who is not a member gets the usual 403
    _, stranger_key = new_key(client, w.stranger, "store")
    r = item_post(client, stranger_key, w.store["uuid"])
    assert r.status == 403 and "scope" not in r.json()["error"]
    _, buyer_store = new_key(client, w.buyer, ["store", "orders"])
    uuid = market.order(db, w, "COMPLETED")
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "partial_refund",
                                                          "refund_percent": "50"}, headers=buyer_store)
    assert r.status == 403


def test_full_key_and_session_behave_as_before(client, db):
    w = market.world(db)
    _, full = new_key(client, w.vendor, "full")
    assert item_post(client, full, w.store["uuid"]).status == 200
    assert store_post(client, full, "viafull").status == 200
    assert client.post("/api/keys.php", data={"name": "another"}, headers=full).status == 200
    uuid = market.order(db, w, "COMPLETED")
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "dispatch"},
                    headers=full)
    assert r.status == 200
    token = login(client, "buyer1")
    r = client.post("/api/keys.php", data={"name": "from session", "scopes": "read", "csrf_token": token})
    assert r.status == 200 and r.json()["scopes"] == ["read"]


def test_staff_writes_need_full(client, db):
    w = market.world(db)
    _, staff_orders = new_key(client, w.admin, ["orders", "store"])
    r = client.post("/admin/config.php", data={"pending_duration": "12h"}, headers=staff_orders)
    assert r.status == 403 and "'full'" in r.json()["error"]
    assert client.get("/admin/config.php", headers=staff_orders).status == 200
    uuid = market.order(db, w, "COMPLETED")
    r = client.post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "cancel"},
                    headers=staff_orders)
    assert r.status == 403 and "'full'" in r.json()["error"]


# -- the table -------------------------------------------------------------------------

def _scripts():
    for folder in ("api", "admin"):
        base = os.path.join(ROOT, "public", folder)
        for name in sorted(os.listdir(base)):
            if name.endswith(".py") and not name.startswith(("_", ".")):
                with open(os.path.join(base, name), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
                methods = {n.name.upper() for n in tree.body if isinstance(n, ast.FunctionDef)
                           and n.name in ("get", "post", "put", "patch", "delete")}
                yield f"{folder}/{name[:-3]}", methods


def test_every_json_endpoint_and_method_is_in_the_scope_table():
    seen = set()
    for script, methods in _scripts():
        assert methods, script
        for method in methods:
            assert method in scopes.TABLE.get(script, {}), f"{method} {script} is missing from lib/scopes.py TABLE"
            seen.add((script, method))
    stale = {(s, m) for s, ms in scopes.TABLE.items() for m in ms
             if s.startswith(("api/", "admin/")) and (s, m) not in seen}
    assert not stale, f"lib/scopes.py TABLE names endpoints that do not exist: {stale}"
    for script, methods in scopes.TABLE.items():
        for method, rule in methods.items():
            assert rule.scopes and set(rule.scopes) <= set(scopes.SCOPES)
            assert (method == "GET") == (rule.scopes == (scopes.READ,)), (script, method)


def test_script_of_follows_the_router():
    assert scopes.script_of("/api/transaction-actions.php") == "api/transaction_actions"
    assert scopes.script_of("/api/transaction-actions") == "api/transaction_actions"
    assert scopes.script_of("/api/openapi.json") == "api/openapi"
    assert scopes.script_of("/admin/") == "admin/index"
    assert scopes.script_of("/book.php") == "book"


def test_openapi_names_the_scope_of_every_operation(client, db):
    doc = client.get("/api/openapi.json").json()
    ops = 0
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            ops += 1
            assert op["x-scope"] and set(op["x-scope"]) <= set(scopes.SCOPES), (method, path)
            if method == "get":
                assert op["x-scope"] == ["read"], path
    assert ops > 20
    assert doc["paths"]["/api/items.php"]["post"]["x-scope"] == ["store"]
    assert doc["paths"]["/api/transactions.php"]["post"]["x-scope"] == ["orders"]
    assert doc["paths"]["/api/keys.php"]["post"]["x-scope"] == ["full"]
    assert set(doc["paths"]["/api/transaction-actions.php"]["post"]["x-scope"]) == {"orders", "store"}
    assert "x-scope-note" in doc["paths"]["/api/transaction-actions.php"]["post"]
    assert "scopes" in doc["components"]["schemas"]["ApiKey"]["properties"]


# -- keys made before scopes -------------------------------------------------------

def test_a_key_made_before_the_migration_keeps_working_as_full(bare_db, monkeypatch):
    import hashlib
    from lib import users
    from lib.db import utc_now
    db = bare_db
    with open(os.path.join(ROOT, "schema.sql"), encoding="utf-8") as f:
        db.run_script(f.read())
    for version, path in migrate.migration_files():   # the release before scoped keys
        if version < 3 and path.endswith(".py"):
            migrate._run_python(db, path)
            db.insert("schema_migrations", {"version": version, "name": os.path.basename(path),
                                            "applied_at": utc_now()})
    assert "scopes" not in migrate.columns(db, "api_keys")
    monkeypatch.setattr(users, "SCRYPT_N", 2 ** 10)
    user = users.create_user(db, "oldtimer", "password123", role="vendor")
    key = "ab" * 32
    db.insert("api_keys", {"user_uuid": user["uuid"], "name": "old", "key_hash": hashlib.sha256(key.encode()).hexdigest(),
                           "key_prefix": key[:8], "created_at": utc_now(), "last_used_at": None, "revoked_at": None})
    applied = migrate.init(db)
    assert 3 in applied
    assert migrate.init(db) == []                     # idempotent
    assert {"scopes", "store_uuid", "agent_id"} <= migrate.columns(db, "api_keys")
    assert db.value("SELECT scopes FROM api_keys WHERE name = 'old'") == "full"
    from wsgi import make_app
    client = Client(make_app(db))
    headers = {"Authorization": "Bearer " + key}
    listed = client.get("/api/keys.php", headers=headers).json()["keys"]
    assert listed[0]["scopes"] == ["full"] and listed[0]["store_uuid"] is None
    r = store_post(client, headers, "oldshop")
    assert r.status == 200, r
    assert item_post(client, headers, r.json()["uuid"]).status == 200
    assert client.post("/api/keys.php", data={"name": "new"}, headers=headers).status == 200


def test_pages_follow_the_same_scopes(client, db):
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    _, vorders = new_key(client, w.vendor, ["orders"])
    r = client.post(f"/payment.php?uuid={uuid}", data={"action": "dispatch"}, headers=vorders)
    assert r.status == 403 and "lacks the 'store' scope" in r.text
    _, vstore = new_key(client, w.vendor, ["store"], w.store["uuid"])
    r = client.post(f"/payment.php?uuid={uuid}", data={"action": "dispatch"}, headers=vstore)
    assert r.status in (200, 303), r
    _, border = new_key(client, w.buyer, ["orders"])
    r = client.post("/settings/user.php", data={"refund_address": market.ADDR_A}, headers=border)
    assert r.status == 403 and "lacks the 'full' scope" in r.text
    r = client.post(f"/payment.php?uuid={uuid}", data={"action": "release"}, headers=border)
    assert r.status in (200, 303), r


def test_store_pages_follow_the_store_limit(client, db):
    w = market.world(db)
    second = market.store(db, w.vendor, "second")
    _, key_a = new_key(client, w.vendor, ["store"], w.store["uuid"])
    r = client.post("/item/edit.php", data={"form": "item_create", "store_uuid": w.store["uuid"], "name": "page-a",
                                            "description": "d"}, headers=key_a)
    assert r.status == 303, r
    r = client.post("/item/edit.php", data={"form": "item_create", "store_uuid": second["uuid"], "name": "page-b",
                                            "description": "d"}, headers=key_a)
    assert r.status == 403 and "limited to the store" in r.text
    r = client.post("/item/edit.php", data={"form": "package_update", "package_uuid": w.package["uuid"],
                                            "name": "renamed", "price_usd": "100"}, headers=key_a)
    assert r.status == 303, r
    r = client.post("/create-store.php", data={"storename": "third", "description": "d", "vendorship_agree": "1"},
                    headers=key_a)
    assert r.status == 403 and "cannot create stores" in r.text
    _, orders_key = new_key(client, w.vendor, ["orders"])
    r = client.post(f"/settings/store.php?uuid={w.store['uuid']}", data={"description": "x"}, headers=orders_key)
    assert r.status == 403 and "lacks the 'store' scope" in r.text
    assert db.value("SELECT COUNT(*) FROM items WHERE store_uuid = ?", (second["uuid"],)) == 0
    assert db.value("SELECT name FROM packages WHERE uuid = ?", (w.package["uuid"],)) == "renamed"
