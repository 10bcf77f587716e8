"""Catalog API: /api/stores.php, /api/items.php, /api/packages.php, /api/store-settings.php."""
import pytest

from lib import catalog, users
from tests import market
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)
from tests.factories import login, make_user


def count(db, table):
    return db.value(f"SELECT COUNT(*) FROM {table}")


# -- stores -------------------------------------------------------------------------

def test_create_store_makes_owner_and_vendor(db, client):
    alice = make_user(db, "alice")
    r = client.post("/api/stores.php", data={"storename": "Alice Shop", "description": "hand made",
                                             "vendorship_agree": "1"}, headers=alice["headers"])
    assert r.status == 200, r
    body = r.json()
    assert body["ok"] is True and body["store"]["storename"] == "Alice Shop"
    assert db.value("SELECT role FROM store_users WHERE store_uuid = ? AND user_uuid = ?",
                    (body["uuid"], alice["uuid"])) == "owner"
    assert users.by_uuid(db, alice["uuid"])["role"] == "vendor"
    listed = client.get("/api/stores.php").json()["stores"]
    assert [s["uuid"] for s in listed] == [body["uuid"]]
    assert set(listed[0]) >= {"uuid", "storename", "description", "vendorship_agreed_at", "created_at"}
    assert "payout_address" not in listed[0]


def test_create_store_by_json_and_staff_keeps_role(db, client):
    staff = make_user(db, "staffer", role="staff")
    r = client.post("/api/stores.php", json_body={"storename": "S1", "vendorship_agree": True},
                    headers=staff["headers"])
    assert r.status == 200, r
    assert users.by_uuid(db, staff["uuid"])["role"] == "staff"


@pytest.mark.parametrize("data, status, text", [
    ({"storename": "x", "vendorship_agree": "0"}, 400, "vendorship"),
    ({"storename": "x"}, 400, "vendorship"),
    ({"storename": "", "vendorship_agree": "1"}, 400, "storename"),
    ({"storename": "a" * 17, "vendorship_agree": "1"}, 400, "16"),
    ({"storename": "bad<name>", "vendorship_agree": "1"}, 400, "storename"),
    ({"storename": "ok", "description": "d" * 10001, "vendorship_agree": "1"}, 400, "description"),
])
def test_create_store_bad_input(db, client, data, status, text):
    alice = make_user(db, "alice")
    r = client.post("/api/stores.php", data=data, headers=alice["headers"])
    assert r.status == status and text in r.json()["error"]
    assert count(db, "stores") == 0 and users.by_uuid(db, alice["uuid"])["role"] == "customer"


def test_duplicate_store_name_is_409_case_insensitive(db, client):
    alice, bob = make_user(db, "alice"), make_user(db, "bob")
    assert client.post("/api/stores.php", data={"storename": "Shop", "vendorship_agree": "1"},
                       headers=alice["headers"]).status == 200
    r = client.post("/api/stores.php", data={"storename": "shop", "vendorship_agree": "1"},
                    headers=bob["headers"])
    assert r.status == 409 and "taken" in r.json()["error"]
    assert count(db, "stores") == 1 and users.by_uuid(db, bob["uuid"])["role"] == "customer"


def test_create_store_needs_auth_and_csrf(db, client):
    assert client.post("/api/stores.php", data={"storename": "S", "vendorship_agree": "1"}).status == 401
    make_user(db, "carol")
    token = login(client, "carol")
    assert client.post("/api/stores.php", data={"storename": "S", "vendorship_agree": "1"},
                       headers={"Origin": "http://testserver"}).status == 403
    r = client.post("/api/stores.php", data={"storename": "S", "vendorship_agree": "1", "csrf_token": token})
    assert r.status == 200
    assert count(db, "stores") == 1


def test_store_detail_and_suspension_hides(db, client):
    w = market.world(db)
    uuid = w.store["uuid"]
    public = client.get(f"/api/stores.php?uuid={uuid}").json()["store"]
    assert "payout_address" not in public
    mine = client.get(f"/api/stores.php?uuid={uuid}", headers=w.vendor["headers"]).json()["store"]
    assert mine["payout_address"] is None and mine["members"][0]["username"] == "vendor1"
    catalog.set_store_suspended(db, w.staff, uuid, True)
    assert client.get("/api/stores.php").json()["stores"] == []
    assert client.get(f"/api/stores.php?uuid={uuid}").status == 404
    assert client.get("/api/items.php").json()["items"] == []
    assert client.get(f"/api/packages.php?item_uuid={w.item['uuid']}").status == 404
    # the owner still sees it, marked suspended, but cannot add to it
    assert client.get(f"/api/stores.php?uuid={uuid}", headers=w.vendor["headers"]).json()["store"]["suspended"]
    r = client.post("/api/items.php", data={"store_uuid": uuid, "name": "x"}, headers=w.vendor["headers"])
    assert r.status == 409
    r = client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"]}, headers=w.buyer["headers"])
    assert r.status == 409 and "suspended" in r.json()["error"]
    assert count(db, "transactions") == 0


def test_my_stores(db, client):
    w = market.world(db)
    r = client.get("/api/stores.php?mine=1", headers=w.vendor["headers"])
    assert [s["storename"] for s in r.json()["stores"]] == ["shop"]
    assert client.get("/api/stores.php?mine=1", headers=w.buyer["headers"]).json()["stores"] == []
    assert client.get("/api/stores.php?mine=1").status == 401


def test_stores_pagination_and_bad_page(db, client):
    alice = make_user(db, "alice")
    for i in range(3):
        market.store(db, alice, f"s{i}")
    assert [s["storename"] for s in client.get("/api/stores.php?limit=2").json()["stores"]] == ["s2", "s1"]
    assert [s["storename"] for s in client.get("/api/stores.php?limit=2&offset=2").json()["stores"]] == ["s0"]
    assert client.get("/api/stores.php?limit=201").status == 400
    assert client.get("/api/stores.php?limit=abc").status == 400
    assert client.get("/api/stores.php?offset=-1").status == 400
    assert client.get("/api/stores.php?offset=100000000000000000000000").status == 400
    assert client.get("/api/stores.php?offset=1000000000").json()["stores"] == []
    assert client.get("/api/stores.php?uuid=nope").status == 404


def test_tier_and_suspend_are_staff_only(db):
    w = market.world(db)
    with pytest.raises(Exception) as e:
        catalog.set_store_tier(db, w.vendor, w.store["uuid"], "gold")
    assert e.value.status == 403
    catalog.set_store_tier(db, w.staff, w.store["uuid"], "gold")
    assert catalog.store_row(db, w.store["uuid"])["tier"] == "gold"
    assert str(catalog.store_commission(db, catalog.store_row(db, w.store["uuid"]))) == "0.02"
    with pytest.raises(Exception) as e:
        catalog.set_store_tier(db, w.staff, w.store["uuid"], "platinum")
    assert e.value.status == 400
    with pytest.raises(Exception) as e:
        catalog.set_store_tier(db, w.staff, "00000000-0000-0000-0000-000000000000", "gold")
    assert e.value.status == 404


# -- items --------------------------------------------------------------------------

def test_create_and_list_items(db, client):
    w = market.world(db)
    cat = db.value("SELECT id FROM item_categories WHERE name = 'Services'")
    r = client.post("/api/items.php", data={"store_uuid": w.store["uuid"], "name": "Repair 50%_off",
                                            "description": "fixing things", "category_id": str(cat)},
                    headers=w.vendor["headers"])
    assert r.status == 200, r
    item = r.json()["item"]
    assert item["category"] == "Services" and item["storename"] == "shop"
    body = client.get("/api/items.php").json()
    assert [i["name"] for i in body["items"]] == ["Repair 50%_off", "widget"]
    assert {c["name"] for c in body["categories"]} >= {"Services", "Other"}
    assert [i["uuid"] for i in client.get(f"/api/items.php?category_id={cat}").json()["items"]] == [item["uuid"]]
    assert [i["uuid"] for i in client.get("/api/items.php?q=REPAIR").json()["items"]] == [item["uuid"]]
    assert [i["uuid"] for i in client.get("/api/items.php?q=things").json()["items"]] == [item["uuid"]]
    # LIKE wildcards in q are literal
    assert [i["uuid"] for i in client.get("/api/items.php?q=50%25_").json()["items"]] == [item["uuid"]]
    assert client.get("/api/items.php?q=%25%25").json()["items"] == []
    assert client.get("/api/items.php?q=_x").json()["items"] == []
    assert len(client.get(f"/api/items.php?store_uuid={w.store['uuid']}").json()["items"]) == 2
    assert client.get(f"/api/items.php?uuid={item['uuid']}").json()["item"]["name"] == "Repair 50%_off"


@pytest.mark.parametrize("who, data, status", [
    ("buyer", {"name": "x"}, 403),                      # not a member
    ("vendor", {"name": ""}, 400),
    ("vendor", {"name": "n" * 65}, 400),
    ("vendor", {"name": "x", "category_id": "999"}, 400),
    ("vendor", {"name": "x", "category_id": "abc"}, 400),
    ("vendor", {"name": "x", "store_uuid": "00000000-0000-0000-0000-000000000000"}, 404),
    ("vendor", {"name": "x", "store_uuid": ""}, 400),
])
def test_create_item_failures(db, client, who, data, status):
    w = market.world(db)
    data = dict({"store_uuid": w.store["uuid"]}, **data)
    r = client.post("/api/items.php", data=data, headers=w[who]["headers"])
    assert r.status == status, r
    assert count(db, "items") == 1


def test_items_bad_queries(db, client):
    assert client.get("/api/items.php?category_id=x").status == 400
    assert client.get("/api/items.php?store_uuid=x").status == 400
    assert client.get("/api/items.php?q=" + "a" * 101).status == 400
    assert client.get("/api/items.php?uuid=00000000-0000-0000-0000-000000000000").status == 404
    assert client.post("/api/items.php", data={"name": "x"}).status == 401


# -- packages -------------------------------------------------------------------------

def test_create_package_and_list_with_quotes(db, client):
    w = market.world(db)
    usdc = market.add_token(db, 1, "USDC", market.USDC, decimals=6)
    market.set_rate(db, 1, "USDC", "0.5", contract=market.USDC)
    market.add_token(db, 1, "DAI", market.DAI, decimals=18)   # no rate: quote carries an error
    r = client.post("/api/packages.php", data={"item_uuid": w.item["uuid"], "name": "big",
                                               "description": "two of them", "price_usd": "12.50"},
                    headers=w.vendor["headers"])
    assert r.status == 200, r
    assert r.json()["package"]["price_usd"] == "12.5"
    assert db.value("SELECT price_usd FROM package_prices WHERE package_uuid = ?", (r.json()["uuid"],)) == "12.5"
    packages = client.get(f"/api/packages.php?item_uuid={w.item['uuid']}").json()["packages"]
    assert [p["price_usd"] for p in packages] == ["100", "12.5"]
    quotes = {q["currency"]: q for q in packages[1]["quotes"]}
    assert quotes["ETH"]["required_amount"] == "0.00625" and quotes["ETH"]["usd_rate"] == "2000"
    assert quotes["USDC"]["required_amount"] == "25" and usdc["decimals"] == 6
    assert quotes["DAI"]["required_amount"] is None and "no USD rate" in quotes["DAI"]["error"]


@pytest.mark.parametrize("price", ["-1", "0", "0.00", "abc", "1e3", "1000000.01", "99999999999", "1.005",
                                   "", " ", "NaN", "Infinity"])
def test_bad_prices_are_400(db, client, price):
    w = market.world(db)
    r = client.post("/api/packages.php", data={"item_uuid": w.item["uuid"], "name": "p", "price_usd": price},
                    headers=w.vendor["headers"])
    assert r.status == 400 and "price_usd" in r.json()["error"]
    assert count(db, "packages") == 1 and count(db, "package_prices") == 1


@pytest.mark.parametrize("who, data, status", [
    ("buyer", {}, 403),
    ("stranger", {}, 403),
    ("vendor", {"name": "n" * 65}, 400),
    ("vendor", {"item_uuid": "00000000-0000-0000-0000-000000000000"}, 404),
    ("vendor", {"item_uuid": ""}, 400),
])
def test_create_package_failures(db, client, who, data, status):
    w = market.world(db)
    data = dict({"item_uuid": w.item["uuid"], "name": "p", "price_usd": "5"}, **data)
    r = client.post("/api/packages.php", data=data, headers=w[who]["headers"])
    assert r.status == status, r
    assert count(db, "packages") == 1


def test_packages_get_needs_item(db, client):
    assert client.get("/api/packages.php").status == 400
    assert client.get("/api/packages.php?item_uuid=00000000-0000-0000-0000-000000000000").status == 404


def test_update_package_price_appends_history(db):
    w = market.world(db)
    p = catalog.update_package(db, w.vendor, w.package["uuid"], price_usd="80")
    assert p["price_usd"] == "80"
    assert [r["price_usd"] for r in catalog.price_history(db, w.package["uuid"])] == ["100", "80"]
    with pytest.raises(Exception) as e:
        catalog.update_package(db, w.buyer, w.package["uuid"], price_usd="1")
    assert e.value.status == 403
    catalog.update_item(db, w.vendor, w.item["uuid"], active="0")
    assert catalog.list_items(db) == []


# -- store settings -------------------------------------------------------------------

def test_store_settings(db, client):
    w = market.world(db)
    r = client.post("/api/store-settings.php", data={"store_uuid": w.store["uuid"],
                                                     "payout_address": market.ADDR_C,
                                                     "description": "new words"},
                    headers=w.vendor["headers"])
    assert r.status == 200, r
    assert r.json()["store"]["payout_address"] == market.ADDR_C
    row = catalog.store_row(db, w.store["uuid"])
    assert row["payout_address"] == market.ADDR_C and row["description"] == "new words"
    r = client.post("/api/store-settings.php", data={"store_uuid": w.store["uuid"], "payout_address": ""},
                    headers=w.vendor["headers"])
    assert r.status == 200 and catalog.store_row(db, w.store["uuid"])["payout_address"] is None


@pytest.mark.parametrize("who, data, status", [
    ("vendor", {"payout_address": market.BAD_CHECKSUM}, 400),
    ("vendor", {"payout_address": market.NO_CHECKSUM}, 400),
    ("vendor", {"payout_address": "0x1234"}, 400),
    ("vendor", {}, 400),
    ("buyer", {"description": "mine now"}, 403),
    ("vendor", {"store_uuid": "00000000-0000-0000-0000-000000000000", "description": "x"}, 404),
    ("vendor", {"store_uuid": "", "description": "x"}, 400),
])
def test_store_settings_failures(db, client, who, data, status):
    w = market.world(db)
    data = dict({"store_uuid": w.store["uuid"]}, **data)
    r = client.post("/api/store-settings.php", data=data, headers=w[who]["headers"])
    assert r.status == status, r
    row = catalog.store_row(db, w.store["uuid"])
    assert row["payout_address"] is None and row["description"] == "a store"


def test_bad_checksum_message_is_clear(db, client):
    w = market.world(db)
    r = client.post("/api/store-settings.php", data={"store_uuid": w.store["uuid"],
                                                     "payout_address": market.NO_CHECKSUM},
                    headers=w.vendor["headers"])
    assert "checksum" in r.json()["error"]


def test_a_member_who_is_not_the_owner(db, client):
    """Membership, not ownership, lets someone add items and packages; the store settings
    stay with the owner."""
    w = market.world(db)
    helper = make_user(db, "helper")
    db.insert("store_users", {"store_uuid": w.store["uuid"], "user_uuid": helper["uuid"], "role": "manager",
                              "created_at": "2026-01-01 00:00:00"})
    r = client.post("/api/items.php", data={"store_uuid": w.store["uuid"], "name": "extra"},
                    headers=helper["headers"])
    assert r.status == 200, r
    r = client.post("/api/packages.php", data={"item_uuid": r.json()["uuid"], "name": "p", "price_usd": "3"},
                    headers=helper["headers"])
    assert r.status == 200 and r.json()["package"]["price_usd"] == "3"
    r = client.post("/api/store-settings.php", data={"store_uuid": w.store["uuid"], "description": "mine"},
                    headers=helper["headers"])
    assert r.status == 403 and "owner" in r.json()["error"]
    assert catalog.store_row(db, w.store["uuid"])["description"] == "a store"
    # a member cannot buy from the store either
    r = client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"]}, headers=helper["headers"])
    assert r.status == 403 and count(db, "transactions") == 0
