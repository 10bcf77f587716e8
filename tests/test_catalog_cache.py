"""Public catalog pages from the per-process cache (lib/catalog_cache.py):
after every kind of write the next guest read shows it, in-process and through real
nginx -> uwsgi with two workers in each of two uwsgi instances on one database."""
import time
import urllib.parse

import pytest

from lib import catalog, catalog_cache, config, tokens, users
from lib.db import utc_now
from tests import market
from tests.client import Client
from tests.factories import login, make_user

PAGES = ("/api/stores.php", "/api/items.php", "/marketplace.php")


@pytest.fixture
def settings(tmp_path):
    return {"MEDIA_DIR": str(tmp_path / "media")}     # the item images a test uploads


@pytest.fixture
def w(db):
    catalog_cache.clear()
    return market.world(db)


def guest(app, path, headers=None):
    r = Client(app).get(path, headers=headers or {})
    return r


def test_a_guest_read_is_cached_and_answers_304_to_its_etag(app, w):
    first = guest(app, "/api/items.php")
    assert first.status == 200 and first.header("ETag")
    assert "widget" in first.text
    again = guest(app, "/api/items.php", {"If-None-Match": first.header("ETag")})
    assert again.status == 304 and again.body == b"" and again.header("ETag") == first.header("ETag")
    assert guest(app, "/api/items.php", {"If-None-Match": '"other"'}).status == 200


def test_after_each_kind_of_write_the_next_read_shows_it(app, db, w):
    vendor, staff, store, item = w["vendor"], w["staff"], w["store"], w["item"]
    store_url = "/api/stores.php?" + urllib.parse.urlencode({"uuid": store["uuid"]})
    item_page = "/item.php?" + urllib.parse.urlencode({"uuid": item["uuid"]})
    packages_url = "/api/packages.php?" + urllib.parse.urlencode({"item_uuid": item["uuid"]})
    store_page = "/store.php?" + urllib.parse.urlencode({"uuid": store["uuid"]})
    urls = PAGES + (store_url, item_page, packages_url, store_page)

    def warm():
        """Every page read once and kept (after any stamp of cron's tables has settled)."""
        while not catalog_cache._settled(catalog_cache.version(db)):
            time.sleep(0.2)
        catalog_cache.clear()
        for url in urls:
            assert guest(app, url).status == 200, url
        assert len(catalog_cache._entries) == len(urls)

    def seen(url, text):
        return text in guest(app, url).text

    warm()
    catalog.create_store(db, make_user(db, "second"), "newshop", "fresh store", True)
    assert seen("/api/stores.php", "newshop")

    warm()
    catalog.update_store(db, vendor, store["uuid"], description="now with more")
    assert seen(store_url, "now with more")

    warm()
    usdc = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"
    market.add_token(db, 1, "USDC", usdc, 6)
    market.set_rate(db, 1, "USDC", "1", contract=usdc)
    catalog.update_store(db, vendor, store["uuid"], tokens="1:ETH")
    assert guest(app, store_url).json()["store"]["tokens"] == ["1:ETH"]

    warm()
    catalog.set_store_tier(db, staff, store["uuid"], "gold")
    assert guest(app, store_url).json()["store"]["tier"] == "gold"

    warm()
    second = market.item(db, vendor, store["uuid"], name="gadget")
    for url in ("/api/items.php", "/marketplace.php", store_page):
        assert seen(url, "gadget"), url

    warm()
    catalog.update_item(db, vendor, item["uuid"], name="renamed widget")
    assert seen(item_page, "renamed widget") and seen("/api/items.php", "renamed widget")

    warm()
    market.package(db, vendor, item["uuid"], price="7.50", name="small box")
    assert seen(packages_url, "small box") and seen(item_page, "small box")

    warm()
    catalog.update_package(db, vendor, w["package"]["uuid"], price_usd="250")
    assert guest(app, packages_url).json()["packages"][0]["price_usd"] == "250"

    warm()
    catalog.add_category(db, staff, "Rare books")
    assert seen("/marketplace.php", "Rare books") and seen("/api/items.php", "Rare books")

    warm()   # cron's price refresh (it writes `prices` only)
    market.set_rate(db, 1, "ETH", "2500")
    quotes = guest(app, packages_url).json()["packages"][0]["quotes"]
    assert [q["usd_rate"] for q in quotes if q["currency"] == "ETH"] == ["2500"]

    warm()   # cron's token check (it writes accepted_tokens only)
    db.execute("UPDATE accepted_tokens SET status = 'rejected', updated_at = ? WHERE symbol = 'ETH'",
               (utc_now(),))
    assert guest(app, packages_url).json()["packages"][0]["quotes"] == []
    tokens.set_status(db, w["eth"]["id"], "active")
    assert guest(app, packages_url).json()["packages"][0]["quotes"] != []

    warm()
    config.set_values(db, {"vendor_bond_usd": "100"})   # no deposit: the items are hidden
    assert "gadget" not in guest(app, "/api/items.php").text
    assert guest(app, item_page).status == 404

    deposit = db.insert("deposits", {
        "uuid": "d0000000-0000-4000-8000-000000000001", "store_uuid": store["uuid"], "chain_id": 1,
        "currency": "ETH", "token_contract": "", "decimals": 18, "balance": "0",
        "created_at": utc_now(), "updated_at": utc_now()})
    time.sleep(2)                                         # the stamps are of past seconds
    assert "gadget" not in guest(app, "/api/items.php").text
    db.execute("UPDATE deposits SET balance = ?, updated_at = ? WHERE id = ?",   # as cron does
               (str(10 ** 18), utc_now(), deposit))
    assert seen("/api/items.php", "gadget") and guest(app, item_page).status == 200

    warm()
    catalog.set_store_suspended(db, staff, store["uuid"], True)
    assert "gadget" not in guest(app, "/api/items.php").text
    assert guest(app, store_url).status == 404 and store["uuid"] not in guest(app, "/api/stores.php").text
    catalog.set_store_suspended(db, staff, store["uuid"], False)
    assert seen("/api/items.php", "gadget")
    assert second["uuid"]


def test_a_write_that_rolls_back_leaves_the_cache_valid(app, db, w):
    guest(app, "/api/items.php")
    before = catalog_cache.version(db)
    with pytest.raises(RuntimeError):
        with db.transaction():
            catalog.update_item(db, w["vendor"], w["item"]["uuid"], name="never")
            raise RuntimeError("rolled back")
    assert catalog_cache.version(db) == before
    assert "never" not in guest(app, "/api/items.php").text


def test_a_quote_going_stale_is_not_served_from_the_cache(app, db, w):
    config.set_values(db, {"price_max_age": "1m"})
    market.set_rate(db, 1, "ETH", "2000", age_seconds=57)
    time.sleep(1.1)
    url = "/api/packages.php?" + urllib.parse.urlencode({"item_uuid": w["item"]["uuid"]})
    fresh = guest(app, url).json()["packages"][0]["quotes"][0]
    assert fresh["required_amount"] is not None
    time.sleep(3)
    stale = guest(app, url).json()["packages"][0]["quotes"][0]
    assert stale["required_amount"] is None and "stale" in stale["error"]


def test_signed_in_pages_are_never_cached_nor_leak_to_guests(app, db, w):
    guest_page = guest(app, "/marketplace.php")
    assert "csrf_token" not in guest_page.text and "vendor1" not in guest_page.text
    member = Client(app)
    login(member, "vendor1")
    mine = member.get("/marketplace.php")
    assert mine.status == 200 and "vendor1" in mine.text and 'name="csrf_token"' in mine.text
    assert mine.header("Cache-Control") == "private, no-cache"
    again = guest(app, "/marketplace.php")
    assert "vendor1" not in again.text and "csrf_token" not in again.text
    # A key's caller is not a guest either: a member sees the inactive item, guests do not.
    catalog.update_item(db, w["vendor"], w["item"]["uuid"], active=False)
    url = "/api/items.php?" + urllib.parse.urlencode({"uuid": w["item"]["uuid"]})
    assert guest(app, url).status == 404
    assert Client(app).get(url, headers=w["vendor"]["headers"]).status == 200
    assert guest(app, url).status == 404


def test_guest_reads_cost_one_query_when_cached(app, db, w, monkeypatch):
    time.sleep(2)           # the world's rate is of this second: a render then is not kept
    guest(app, "/marketplace.php")
    seen = []
    real = db._run
    monkeypatch.setattr(db, "_run", lambda sql, params=(), retry=True: seen.append(sql) or real(sql, params, retry))
    assert guest(app, "/marketplace.php").status == 200
    assert seen == [catalog_cache.VERSION_SQL]


def test_an_answer_from_the_cache_is_the_rendered_answer(app, db, w):
    """GET, HEAD and a revalidating GET answered from the cache (before any script runs)
    carry the very status, headers and body of the same request answered by rendering."""
    item, store = w["item"]["uuid"], w["store"]["uuid"]
    urls = PAGES + ("/item.php?uuid=" + item, "/store.php?uuid=" + store,
                    "/api/packages.php?item_uuid=" + item, "/api/stores.php?uuid=" + store)
    while not catalog_cache._settled(catalog_cache.version(db)):
        time.sleep(0.2)
    etags = {url: guest(app, url).header("ETag") for url in urls}
    for url in urls:
        for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"If-None-Match": etags[url]}),
                                ("GET", {"If-None-Match": '"other", ' + etags[url]})):
            answers = []
            for _ in range(2):
                if not answers:
                    catalog_cache.clear()          # the first is rendered, the second is a hit
                r = Client(app).request(method, url, headers=headers)
                answers.append((r.status, r.headers, r.body))
            assert catalog_cache._entries, url
            assert answers[0] == answers[1], (method, url, headers)
            assert answers[0][0] == (304 if headers else 200)


# -- through nginx and uwsgi -----------------------------------------------------------

@pytest.fixture(params=["sqlite", "mariadb"])
def two_stacks(request):
    """Two uwsgi instances (2 worker processes each) behind their own nginx on one database."""
    from tests.stacks import started
    with started(request, "mkt-cache-", count=2, processes=2) as (stacks, db):
        yield stacks, db


def read_everywhere(stacks, path, times=12):
    """The bodies of `times` reads of `path` on new connections through each stack, and
    the number of distinct uwsgi workers that answered (from the stats server)."""
    bodies = []
    for s in stacks:
        for _ in range(times):
            status, _h, body = s.request("GET", path)
            assert status == 200, (path, status, body[:300])
            bodies.append(body.decode())
    return bodies


def test_no_stale_page_across_workers_and_uwsgi_instances(two_stacks):
    stacks, db = two_stacks
    w = market.world(db)
    vendor = w["vendor"]
    item_page = "/item.php?uuid=" + w["item"]["uuid"]
    urls = PAGES + (item_page, "/api/packages.php?item_uuid=" + w["item"]["uuid"])
    while not catalog_cache._settled(catalog_cache.version(db)):   # so that renders are kept
        time.sleep(0.2)
    for url in urls:                                # every worker of both caches every page
        read_everywhere(stacks, url)
    for s in stacks:
        served = [wk["requests"] for wk in s.stats()["workers"]]
        assert len(served) == 2 and all(n > 0 for n in served), served

    # A write by this process (lib), then one through the first stack's API.
    catalog.update_item(db, vendor, w["item"]["uuid"], name="first rename")
    for url in ("/api/items.php", "/marketplace.php", item_page):
        assert all("first rename" in b for b in read_everywhere(stacks, url)), url
    status, _h, body = stacks[0].request(
        "POST", "/api/packages.php", headers={**vendor["headers"], "Content-Type": "application/json"},
        body='{"item_uuid": "%s", "name": "through nginx", "price_usd": "3"}' % w["item"]["uuid"])
    assert status == 200, body
    assert all("through nginx" in b for b in read_everywhere(stacks, "/api/packages.php?item_uuid="
                                                             + w["item"]["uuid"]))
    assert all("through nginx" in b for b in read_everywhere(stacks, item_page))
    users.set_banned(db, make_user(db, "troll")["uuid"], True)
    catalog.set_store_suspended(db, w["staff"], w["store"]["uuid"], True)
    assert all("first rename" not in b for b in read_everywhere(stacks, "/api/items.php"))
    assert all(w["store"]["uuid"] not in b for b in read_everywhere(stacks, "/api/stores.php"))


def test_warnings_reviews_and_images_show_on_the_next_guest_read(app, db, w):
    import io

    from PIL import Image

    from lib import images, reviews, store_warnings
    store_page = "/store.php?" + urllib.parse.urlencode({"uuid": w.store["uuid"]})
    store_url = "/api/stores.php?" + urllib.parse.urlencode({"uuid": w.store["uuid"]})
    item_url = "/api/items.php?" + urllib.parse.urlencode({"uuid": w.item["uuid"]})

    def warm(*urls):
        while not catalog_cache._settled(catalog_cache.version(db)):
            time.sleep(0.2)
        for url in urls:
            assert guest(app, url).status == 200, url

    warm(store_page, store_url)
    warning = store_warnings.add(db, w.staff, w.store["uuid"], "Ships late")
    assert "Ships late" in guest(app, store_page).text
    assert [x["reason"] for x in guest(app, store_url).json()["warnings"]] == ["Ships late"]
    store_warnings.retire(db, w.staff, warning["id"])
    assert "Ships late" not in guest(app, store_page).text

    order = market.order(db, w, status="RELEASED")
    warm(store_page, store_url, "/api/items.php")
    review = reviews.add_review(db, w.buyer, order, 4, "Solid widget")
    assert "Solid widget" in guest(app, store_page).text
    assert guest(app, store_url).json()["store"]["rating"] == {"average": "4.00", "count": 1}
    reviews.reply(db, w.vendor, review["uuid"], "Thanks a lot")
    assert "Thanks a lot" in guest(app, store_page).text
    reviews.hide(db, w.staff, review["uuid"], "spam")
    assert "Solid widget" not in guest(app, store_page).text
    assert guest(app, store_url).json()["store"]["rating"]["count"] == 0

    warm(item_url, "/api/items.php")
    picture = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 10, 10)).save(picture, "PNG")
    first = images.add_image(db, w.vendor, w.item["uuid"], picture.getvalue())
    assert guest(app, item_url).json()["item"]["image"]["uuid"] == first["uuid"]
    second = images.add_image(db, w.vendor, w.item["uuid"], picture.getvalue())
    warm(item_url)
    images.reorder(db, w.vendor, w.item["uuid"], [second["uuid"], first["uuid"]])
    assert guest(app, item_url).json()["item"]["image"]["uuid"] == second["uuid"]
    images.remove_image(db, w.vendor, second["uuid"])
    assert guest(app, item_url).json()["item"]["image"]["uuid"] == first["uuid"]
