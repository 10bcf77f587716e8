"""Staff tools (categories, all deposits, grant seller, the
vendorship agreement, the tier page) and the vendor bond."""
import pytest

from lib import catalog, config
from tests import market
from tests.client import Client
from tests.factories import login, make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

HTML = {"Accept": "text/html"}


def browser(client, user):
    c = Client(client.app)
    token = login(c, user["username"])
    return c, token


def cat_id(db, name):
    return db.value("SELECT id FROM item_categories WHERE name = ?", (name,))


def audits(db, action):
    return db.value("SELECT COUNT(*) FROM audit_log WHERE action = ?", (action,))


# -- categories ---------------------------------------------------------------------

def test_staff_add_rename_move_remove_categories(db, client):
    staff = make_user(db, "staffer", role="staff")
    c, token = browser(client, staff)
    page = c.get("/staff/categories.php", headers=HTML)
    assert page.status == 200 and "Digital goods" in page.text and 'id="add-category"' in page.text

    def post(**data):
        return c.post("/staff/categories.php", data={"csrf_token": token, **data}, headers=HTML)

    assert post(action="add", name="Books").status == 303
    books = cat_id(db, "Books")
    assert post(action="add", name="Novels", parent_id=str(books)).status == 303
    novels = cat_id(db, "Novels")
    assert db.value("SELECT parent_id FROM item_categories WHERE id = ?", (novels,)) == books
    assert post(action="add", name="Crime", parent_id=str(novels)).status == 303
    crime = cat_id(db, "Crime")
    tree = {r["name"]: r for r in catalog.category_tree(db)}
    assert tree["Crime"]["path"] == "Books / Novels / Crime" and tree["Crime"]["depth"] == 2
    assert post(action="rename", category_id=str(novels), name="Fiction").status == 303
    assert cat_id(db, "Fiction") == novels and cat_id(db, "Novels") is None
    # move: no cycles, the parent must exist
    for parent in (str(novels), str(crime)):
        r = post(action="move", category_id=str(novels), parent_id=parent)
        assert r.status == 400 and "parent_id" in r.text, r
    r = post(action="move", category_id=str(novels), parent_id="99999")
    assert r.status == 400 and "parent_id" in r.text
    assert db.value("SELECT parent_id FROM item_categories WHERE id = ?", (novels,)) == books
    assert post(action="move", category_id=str(crime), parent_id="").status == 303
    assert db.value("SELECT parent_id FROM item_categories WHERE id = ?", (crime,)) is None
    assert post(action="move", category_id=str(crime), parent_id=str(books)).status == 303
    # remove only when empty
    r = post(action="remove", category_id=str(books))
    assert r.status == 409 and "subcategories" in r.text
    owner = make_user(db, "vendor1")
    shop = market.store(db, owner)
    catalog.create_item(db, owner, shop["uuid"], "A novel", "good", str(novels))
    r = post(action="remove", category_id=str(novels))
    assert r.status == 409 and "items use" in r.text
    assert post(action="remove", category_id=str(crime)).status == 303
    assert cat_id(db, "Crime") is None
    for action in ("category_added", "category_renamed", "category_moved", "category_removed"):
        assert audits(db, action) >= 1, action
    # the marketplace's filter shows the tree, and a parent's filter includes its subtree
    page = client.get("/marketplace.php", headers=HTML)
    assert "— Fiction" in page.text
    page = client.get(f"/marketplace.php?category={books}", headers=HTML)
    assert page.status == 200 and "A novel" in page.text
    assert [i["name"] for i in catalog.list_items(db, category_id=books)] == ["A novel"]


@pytest.mark.parametrize("data, field", [
    ({"action": "add", "name": ""}, "name"),
    ({"action": "add", "name": "x" * 65}, "name"),
    ({"action": "add", "name": "a/b"}, "name"),
    ({"action": "add", "name": "ok", "parent_id": "abc"}, "parent_id"),
    ({"action": "rename", "category_id": "", "name": "x"}, "category_id"),
    ({"action": "rename", "category_id": "123456", "name": "x"}, "category_id"),
    ({"action": "move", "category_id": "x"}, "category_id"),
    ({"action": "remove", "category_id": "-1"}, "category_id"),
    ({"action": "explode"}, "action"),
])
def test_bad_category_input_is_400_and_changes_nothing(db, client, data, field):
    staff = make_user(db, "staffer", role="staff")
    c, token = browser(client, staff)
    before = db.query("SELECT id, name, parent_id FROM item_categories ORDER BY id")
    r = c.post("/staff/categories.php", data={"csrf_token": token, **data}, headers=HTML)
    assert r.status == 400 and field in r.text, r
    assert db.query("SELECT id, name, parent_id FROM item_categories ORDER BY id") == before


def test_category_names_are_unique_and_staff_only(db, client):
    staff = make_user(db, "staffer", role="staff")
    c, token = browser(client, staff)
    r = c.post("/staff/categories.php", data={"csrf_token": token, "action": "add", "name": "services"},
               headers=HTML)
    assert r.status == 409
    vendor = make_user(db, "vendor1", role="vendor")
    v, vtoken = browser(client, vendor)
    r = v.post("/staff/categories.php", data={"csrf_token": vtoken, "action": "add", "name": "Mine"},
               headers=HTML)
    assert r.status == 403 and cat_id(db, "Mine") is None
    # CSRF: a browser POST without the token is refused
    r = c.post("/staff/categories.php", data={"action": "add", "name": "NoToken"},
               headers={**HTML, "Origin": "http://localhost"})
    assert r.status == 403 and cat_id(db, "NoToken") is None


# -- all deposits -------------------------------------------------------------------

def fund(db, deposit_uuid, wei, address="0x" + "ab" * 20):
    db.execute("UPDATE deposits SET balance = ?, address = COALESCE(address, ?) WHERE uuid = ?",
               (str(wei), address, deposit_uuid))


def open_deposit(db, owner, store_uuid, chain_id=1, currency="ETH"):
    from lib import deposits
    return deposits.open_deposit(db, owner, store_uuid, currency, chain_id)


def test_staff_see_every_deposit_of_every_store(db, client):
    w = market.world(db)
    other = make_user(db, "vendor2")
    shop2 = market.store(db, other, "shop2")
    d1 = open_deposit(db, w.vendor, w.store["uuid"])
    d2 = open_deposit(db, other, shop2["uuid"])
    fund(db, d1["uuid"], 10 ** 18)
    # JSON for staff: both stores; others: 403
    r = client.get("/api/deposits.php?all=1", headers=w.staff["headers"])
    assert r.status == 200, r
    rows = {d["uuid"]: d for d in r.json()["deposits"]}
    assert set(rows) == {d1["uuid"], d2["uuid"]}
    assert rows[d1["uuid"]]["balance"] == "1" and rows[d1["uuid"]]["fiat_value"] == "2000.00"
    assert rows[d1["uuid"]]["storename"] == "shop" and rows[d2["uuid"]]["storename"] == "shop2"
    assert rows[d2["uuid"]]["address"] is None and rows[d2["uuid"]]["open_withdrawal"] is None
    assert client.get("/api/deposits.php?all=1", headers=w.vendor["headers"]).status == 403
    assert client.get("/api/deposits.php?all=yes", headers=w.staff["headers"]).status == 400
    # paginated
    page = client.get("/api/deposits.php?all=1&limit=1&offset=1", headers=w.staff["headers"]).json()
    assert [d["uuid"] for d in page["deposits"]] == [d1["uuid"]]
    # the page
    c, _ = browser(client, w.staff)
    html = c.get("/staff/deposits.php", headers=HTML)
    assert html.status == 200 and "shop2" in html.text and "0x" + "ab" * 20 in html.text and "$2000.00" in html.text
    html = c.get("/staff/deposits.php?limit=1", headers=HTML)
    assert html.status == 200 and 'rel="next"' in html.text and "shop2" in html.text and "abab" not in html.text
    v, _ = browser(client, w.vendor)
    assert v.get("/staff/deposits.php", headers=HTML).status == 403


# -- grant seller -------------------------------------------------------------------

def test_admin_grants_and_revokes_the_right_to_open_stores(db, client):
    admin = make_user(db, "admin1", role="admin")
    alice = make_user(db, "alice")
    r = client.post("/admin/users.php", data={"user_uuid": alice["uuid"], "can_sell": "0"}, headers=admin["headers"])
    assert r.status == 200 and r.json()["user"]["can_sell"] is False, r
    assert audits(db, "seller_revoked") == 1
    r = client.post("/api/stores.php", data={"storename": "Nope", "vendorship_agree": "1"}, headers=alice["headers"])
    assert r.status == 403 and "not allowed you to open stores" in r.json()["error"]
    assert db.value("SELECT COUNT(*) FROM stores") == 0
    c, token = browser(client, alice)
    page = c.get("/create-store.php", headers=HTML)
    assert 'id="no-selling"' in page.text
    r = c.post("/create-store.php", data={"csrf_token": token, "storename": "Nope", "vendorship_agree": "1"},
               headers=HTML)
    assert r.status == 403 and "not allowed you to open stores" in r.text
    # bad input: 400 naming the field, nothing changed
    r = client.post("/admin/users.php", data={"user_uuid": alice["uuid"], "can_sell": "maybe"},
                    headers=admin["headers"])
    assert r.status == 400 and "can_sell" in r.json()["error"]
    assert db.value("SELECT can_sell FROM users WHERE uuid = ?", (alice["uuid"],)) == 0
    # only admins
    staff = make_user(db, "staffer", role="staff")
    r = client.post("/admin/users.php", data={"user_uuid": alice["uuid"], "can_sell": "1"}, headers=staff["headers"])
    assert r.status == 403
    # the admin page's form grants it again
    a, atoken = browser(client, admin)
    assert "Grant" in a.get("/admin/users.php", headers=HTML).text
    r = a.post("/admin/users.php", data={"csrf_token": atoken, "user_uuid": alice["uuid"], "can_sell": "1"},
               headers=HTML)
    assert r.status == 303, r
    assert audits(db, "seller_granted") == 1
    r = client.post("/api/stores.php", data={"storename": "Yes", "vendorship_agree": "1"}, headers=alice["headers"])
    assert r.status == 200, r


# -- tier page ----------------------------------------------------------------------

def test_tier_page_shows_commission_and_referral_share_from_config(db, client):
    config.set_values(db, {"gold_account_commission": "0.015", "bronze_account_referral_percent": "0.25"})
    page = client.get("/verification/plan.php", headers=HTML)
    assert page.status == 200
    for tier in ("gold", "silver", "bronze", "free"):
        assert f'id="tier-{tier}"' in page.text
    assert "1.5%" in page.text and "25%" in page.text and "20%" in page.text
    body = client.get("/verification/plan.php").json()
    tiers = {t["tier"]: t for t in body["tiers"]}
    assert tiers["gold"]["commission"] == "0.015" and tiers["bronze"]["referral_percent"] == "0.25"
    assert [t["tier"] for t in body["tiers"]] == ["gold", "silver", "bronze", "free"]


# -- vendorship agreement -----------------------------------------------------------

def test_agreement_is_versioned_and_vendors_accept_again_before_new_items(db, client):
    admin = make_user(db, "admin1", role="admin")
    vendor = make_user(db, "vendor1")
    shop = market.store(db, vendor)          # before any agreement: nothing required
    market.item(db, vendor, shop["uuid"], "old")
    assert client.get("/verification/agreement.php").json()["agreement"] is None
    a, atoken = browser(client, admin)
    assert 'id="edit-agreement"' in a.get("/verification/agreement.php", headers=HTML).text
    r = a.post("/verification/agreement.php", data={"csrf_token": atoken, "action": "publish",
                                                    "body": "Rule one.\nRule <two>."}, headers=HTML)
    assert r.status == 303, r
    page = client.get("/verification/agreement.php", headers=HTML)
    assert "Rule &lt;two&gt;." in page.text and "Version 1" in page.text
    assert audits(db, "agreement_published") == 1
    # the vendor has not accepted: 403 with the link, existing items stay listed
    r = client.post("/api/items.php", data={"store_uuid": shop["uuid"], "name": "new"}, headers=vendor["headers"])
    assert r.status == 403 and "/verification/agreement.php" in r.json()["error"], r
    assert [i["name"] for i in catalog.list_items(db)] == ["old"]
    v, vtoken = browser(client, vendor)
    assert "agreement-notice" in v.get("/item/edit.php", headers=HTML).text
    assert "not accepted" in v.get("/verification/agreement.php", headers=HTML).text
    r = v.post("/verification/agreement.php", data={"csrf_token": vtoken, "action": "accept", "version": "1"},
               headers=HTML)
    assert r.status == 303, r
    assert db.value("SELECT agreement_version FROM stores WHERE uuid = ?", (shop["uuid"],)) == 1
    assert audits(db, "agreement_accepted") == 1
    r = client.post("/api/items.php", data={"store_uuid": shop["uuid"], "name": "new"}, headers=vendor["headers"])
    assert r.status == 200, r
    # a new version: accept again; the old version's number is refused (409), nothing changes
    r = client.post("/verification/agreement.php", data={"action": "publish", "body": "Rule three."},
                    headers=admin["headers"])
    assert r.status == 200 and r.json()["version"] == 2, r
    assert db.value("SELECT COUNT(*) FROM vendor_agreements") == 2
    r = client.post("/api/items.php", data={"store_uuid": shop["uuid"], "name": "newer"}, headers=vendor["headers"])
    assert r.status == 403
    r = client.post("/verification/agreement.php", data={"action": "accept", "version": "1"},
                    headers=vendor["headers"])
    assert r.status == 409
    assert db.value("SELECT agreement_version FROM stores WHERE uuid = ?", (shop["uuid"],)) == 1
    r = client.post("/verification/agreement.php", data={"action": "accept"}, headers=vendor["headers"])
    assert r.status == 200 and r.json()["stores"][0]["accepted"] is True, r
    # a store opened now accepts the current version with vendorship_agree
    other = make_user(db, "vendor2")
    s2 = market.store(db, other, "shop2")
    assert db.value("SELECT agreement_version FROM stores WHERE uuid = ?", (s2["uuid"],)) == 2


@pytest.mark.parametrize("role, data, status, field", [
    ("admin", {"action": "publish", "body": ""}, 400, "body"),
    ("admin", {"action": "publish", "body": "x" * 20001}, 400, "body"),
    ("admin", {"action": "publish", "body": "bad\x01"}, 400, "body"),
    ("admin", {"action": "nope"}, 400, "action"),
    ("vendor", {"action": "publish", "body": "mine"}, 403, None),
    ("vendor", {"action": "accept", "version": "abc"}, 400, "version"),
    ("customer", {"action": "accept"}, 403, None),
])
def test_bad_agreement_input_changes_nothing(db, client, role, data, status, field):
    admin = make_user(db, "admin1", role="admin")
    client.post("/verification/agreement.php", data={"action": "publish", "body": "v1"}, headers=admin["headers"])
    vendor = make_user(db, "vendor1")
    market.store(db, vendor)
    db.execute("UPDATE stores SET agreement_version = NULL")
    who = {"admin": admin, "vendor": vendor, "customer": make_user(db, "cust")}[role]
    r = client.post("/verification/agreement.php", data=data, headers=who["headers"])
    assert r.status == status, r
    if field:
        assert field in r.text
    assert db.value("SELECT COUNT(*) FROM vendor_agreements") == 1
    assert db.value("SELECT agreement_version FROM stores") is None


# -- vendor bond --------------------------------------------------------------------

def listed(client, w):
    """Where the world's item shows: marketplace, store page, /api/items.php, /api/packages.php."""
    market_page = "widget" in client.get("/marketplace.php", headers=HTML).text
    store_page = "widget" in client.get(f"/store.php?uuid={w.store['uuid']}", headers=HTML).text
    api_items = [i["uuid"] for i in client.get("/api/items.php").json()["items"]] == [w.item["uuid"]]
    api_packages = client.get(f"/api/packages.php?item_uuid={w.item['uuid']}").status == 200
    return market_page, store_page, api_items, api_packages


def test_vendor_bond_lists_a_store_only_while_its_deposits_hold_it(db, client):
    w = market.world(db, eth_rate="2000")
    assert listed(client, w) == (True, True, True, True)          # default 0: off
    config.set_values(db, {"vendor_bond_usd": "500"})
    assert listed(client, w) == (False, False, False, False)      # no deposits: hidden
    r = client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"], "currency": "ETH",
                                                   "chain_id": "1"}, headers=w.buyer["headers"])
    assert r.status == 409 and "vendor bond" in r.json()["error"], r
    assert db.value("SELECT COUNT(*) FROM transactions") == 0
    # the owner is told how much is missing; members still see their item
    v, _ = browser(client, w.vendor)
    page = v.get(f"/settings/store.php?uuid={w.store['uuid']}", headers=HTML)
    assert 'id="bond-missing"' in page.text and "$500 missing" in page.text, page.text[:3000]
    assert v.get(f"/item.php?uuid={w.item['uuid']}", headers=HTML).status == 200
    # 0.2 ETH at 2000 = 400 USD: still short by 100
    dep = open_deposit(db, w.vendor, w.store["uuid"])
    fund(db, dep["uuid"], 2 * 10 ** 17)
    assert listed(client, w) == (False, False, False, False)
    assert "$100.00 missing" in v.get(f"/settings/store.php?uuid={w.store['uuid']}", headers=HTML).text
    # 0.25 ETH = 500 USD: listed and orderable
    fund(db, dep["uuid"], 25 * 10 ** 16)
    assert listed(client, w) == (True, True, True, True)
    assert 'id="bond-status"' in v.get(f"/settings/store.php?uuid={w.store['uuid']}", headers=HTML).text
    r = client.post("/api/transactions.php", data={"package_uuid": w.package["uuid"], "currency": "ETH",
                                                   "chain_id": "1"}, headers=w.buyer["headers"])
    assert r.status == 200, r
    # a stale rate counts 0
    market.set_rate(db, 1, "ETH", "2000", age_seconds=3600)
    assert listed(client, w) == (False, False, False, False)
    # a manual USD price counts
    db.execute("UPDATE accepted_tokens SET manual_usd_price = ? WHERE chain_id = 1 AND symbol = 'ETH'", ("4000",))
    assert listed(client, w) == (True, True, True, True)
    # off again
    config.set_values(db, {"vendor_bond_usd": "0"})
    assert listed(client, w) == (True, True, True, True)


def test_vendor_bond_config_is_validated_on_the_admin_api(db, client):
    admin = make_user(db, "admin1", role="admin")
    r = client.post("/admin/config.php", data={"vendor_bond_usd": "-5"}, headers=admin["headers"])
    assert r.status == 400 and "vendor_bond_usd" in r.json()["error"], r
    assert db.value("SELECT COUNT(*) FROM config") == 0
    r = client.post("/admin/config.php", data={"vendor_bond_usd": "99.5"}, headers=admin["headers"])
    assert r.status == 200 and config.usd(db, "vendor_bond_usd") == 99.5
    assert audits(db, "config_changed") == 1


def test_staff_tools_answer_json_to_api_clients(db, client):
    w = market.world(db)
    r = client.get("/staff/categories.php", headers=w.staff["headers"])
    assert r.status == 200 and {c["name"] for c in r.json()["categories"]} >= {"Services", "Other"}
    r = client.post("/staff/categories.php", data={"action": "add", "name": "Art"}, headers=w.staff["headers"])
    assert r.status == 200 and r.json()["category"]["name"] == "Art", r
    r = client.post("/staff/categories.php", data={"action": "add", "name": ""}, headers=w.staff["headers"])
    assert r.status == 400 and "name" in r.text
    assert client.get("/staff/categories.php", headers=w.vendor["headers"]).status == 403
    open_deposit(db, w.vendor, w.store["uuid"])
    r = client.get("/staff/deposits.php?limit=5", headers=w.staff["headers"])
    assert r.status == 200 and len(r.json()["deposits"]) == 1 and r.json()["limit"] == 5
    assert client.get("/staff/deposits.php", headers=w.vendor["headers"]).status == 403
