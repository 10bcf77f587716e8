"""Reviews and public profiles (point 5), on SQLite and MariaDB:
only the buyer of a RELEASED order reviews it, once; the store answers once; staff hide a
review (audited) and it leaves the lists and the averages; outsiders get 404; the profile
shows nothing private."""
from decimal import Decimal

import pytest

from lib import reviews
from tests import market
from tests.concurrency import at_once, post
from tests.factories import login, make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

API = "/api/reviews.php"


def count(db, table="reviews"):
    return db.value(f"SELECT COUNT(*) FROM {table}")


def add(client, user, order_uuid, score="5", body="great"):
    return client.post(API, data={"action": "add", "transaction_uuid": order_uuid, "score": score, "body": body},
                       headers=user["headers"])


def test_buyer_reviews_a_released_order_once(db, client):
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    r = add(client, w.buyer, order, "4", "fast and as described")
    assert r.status == 200, r
    review = r.json()["review"]
    assert review["score"] == 4 and review["body"] == "fast and as described"
    assert review["store_uuid"] == w.store["uuid"] and review["item_uuid"] == w.item["uuid"]
    again = add(client, w.buyer, order, "1", "changed my mind")
    assert again.status == 409 and "already reviewed" in again.json()["error"]
    assert count(db) == 1
    assert db.value("SELECT score FROM reviews") == 4


@pytest.mark.parametrize("status", ["PENDING", "COMPLETED", "FROZEN", "CANCELLED", "FAILED"])
def test_only_a_released_order_can_be_reviewed(db, client, status):
    w = market.world(db)
    order = market.order(db, w, status=status)
    r = add(client, w.buyer, order)
    assert r.status == 409 and "released" in r.json()["error"]
    assert count(db) == 0


def test_only_the_buyer_reviews_others_get_404(db, client):
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    for who in (w.stranger, w.vendor, w.staff):
        r = add(client, who, order)
        assert r.status == 404 and r.json()["error"] == "no such order", who["username"]
    assert add(client, w.buyer, "00000000-0000-4000-8000-000000000000").status == 404
    assert client.post(API, data={"action": "add", "transaction_uuid": order, "score": "5"}).status == 401
    assert count(db) == 0
    # the review form is the buyer's alone too
    login(client, "stranger1")
    assert client.get(f"/review/add.php?transaction_uuid={order}").status == 404
    r = client.get(f"{API}?transaction_uuid={order}", headers=w.stranger["headers"])
    assert r.status == 404


@pytest.mark.parametrize("score", ["0", "6", "4.5", "-1", "", "five", "٣", "1e0"])
def test_bad_scores_are_400_and_nothing_stored(db, client, score):
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    r = add(client, w.buyer, order, score)
    assert r.status == 400 and "score" in r.json()["error"]
    assert count(db) == 0


def test_json_score_must_be_an_integer(db, client):
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    for bad in (4.0, True, [5], None):
        r = client.post(API, json_body={"action": "add", "transaction_uuid": order, "score": bad},
                        headers=w.buyer["headers"])
        assert r.status == 400 and "score" in r.json()["error"], bad
    assert count(db) == 0
    r = client.post(API, json_body={"action": "add", "transaction_uuid": order, "score": 3},
                    headers=w.buyer["headers"])
    assert r.status == 200 and r.json()["review"]["score"] == 3 and r.json()["review"]["body"] is None


def test_long_or_control_text_is_400(db, client):
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    assert add(client, w.buyer, order, "5", "x" * 2001).status == 400
    r = add(client, w.buyer, order, "5", "bell\x07")
    assert r.status == 400 and "body" in r.json()["error"]
    assert count(db) == 0
    assert add(client, w.buyer, order, "5", "x" * 2000).status == 200


def test_store_answers_once_and_only_members(db, client):
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    review = add(client, w.buyer, order).json()["review"]
    data = {"action": "reply", "review_uuid": review["uuid"], "reply": "thank you!"}
    for who, status in ((w.stranger, 403), (w.buyer, 403)):
        assert client.post(API, data=data, headers=who["headers"]).status == status
    assert client.post(API, data=dict(data, reply=""), headers=w.vendor["headers"]).status == 400
    r = client.post(API, data=data, headers=w.vendor["headers"])
    assert r.status == 200 and r.json()["review"]["reply"] == "thank you!"
    again = client.post(API, data=dict(data, reply="edited"), headers=w.vendor["headers"])
    assert again.status == 409 and "already answered" in again.json()["error"]
    assert db.value("SELECT reply FROM reviews") == "thank you!"
    assert db.value("SELECT reply_by FROM reviews") == w.vendor["uuid"]


def test_staff_hide_is_audited_and_leaves_lists_and_averages(db, client):
    w = market.world(db)
    first = market.order(db, w, status="RELEASED")
    second = market.order(db, w, status="RELEASED")
    r1 = add(client, w.buyer, first, "5").json()["review"]
    add(client, w.buyer, second, "2")
    listed = client.get(f"{API}?store_uuid={w.store['uuid']}").json()
    assert listed["rating"] == {"average": "3.50", "count": 2} and len(listed["reviews"]) == 2
    hide = {"action": "hide", "review_uuid": r1["uuid"], "reason": "names a person"}
    assert client.post(API, data=hide, headers=w.vendor["headers"]).status == 403
    assert client.post(API, data=dict(hide, reason=""), headers=w.staff["headers"]).status == 400
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'review_hidden'") == 0
    r = client.post(API, data=hide, headers=w.staff["headers"])
    assert r.status == 200 and r.json()["review"]["hidden"] is True
    audit = db.one("SELECT * FROM audit_log WHERE action = 'review_hidden'")
    assert audit["user_uuid"] == w.staff["uuid"] and audit["target"] == r1["uuid"]
    assert audit["detail"] == "names a person"
    assert client.post(API, data=hide, headers=w.staff["headers"]).status == 409
    listed = client.get(f"{API}?store_uuid={w.store['uuid']}").json()
    assert listed["rating"] == {"average": "2.00", "count": 1}
    assert [x["score"] for x in listed["reviews"]] == [2]
    assert client.get(f"{API}?uuid={r1['uuid']}").status == 404
    staff_view = client.get(f"{API}?store_uuid={w.store['uuid']}", headers=w.staff["headers"]).json()
    assert {x["hidden_reason"] for x in staff_view["reviews"]} == {"names a person", None}
    # the writer still sees their hidden review, with the reason
    mine = client.get(f"{API}?mine=1", headers=w.buyer["headers"]).json()["reviews"]
    assert [x["hidden"] for x in mine] == [False, True]
    store = client.get(f"/api/stores.php?uuid={w.store['uuid']}").json()["store"]
    assert store["rating"] == {"average": "2.00", "count": 1}
    page = client.get(f"/store.php?uuid={w.store['uuid']}").text
    assert "2.00 from 1 review" in page and "names a person" not in page


def test_averages_are_exact_decimals(db, client):
    w = market.world(db)
    for score in ("5", "4", "4"):
        add(client, w.buyer, market.order(db, w, status="RELEASED"), score)
    rating = client.get(f"/api/items.php?uuid={w.item['uuid']}").json()["item"]["rating"]
    assert rating == {"average": "4.33", "count": 3}
    assert reviews.average(13, 3) == Decimal("4.33") and reviews.average(2, 3) == Decimal("0.67")
    assert reviews.average(5, 2) == Decimal("2.50") and reviews.average(0, 0) is None
    listed = client.get("/api/items.php").json()["items"]
    assert listed[0]["rating"] == {"average": "4.33", "count": 3}
    assert "★ 4.33 (3 reviews)" in client.get("/marketplace.php").text


def test_review_page_flow_with_csrf(db, client):
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    pending = market.order(db, w, status="COMPLETED")
    token = login(client, "buyer1")
    html = {"Accept": "text/html"}
    assert "review-link" in client.get(f"/payment.php?uuid={order}", headers=html).text
    assert "review-link" not in client.get(f"/payment.php?uuid={pending}", headers=html).text
    assert "not-yet" in client.get(f"/review/add.php?transaction_uuid={pending}", headers=html).text
    form = client.get(f"/review/add.php?transaction_uuid={order}", headers=html)
    assert form.status == 200 and 'id="review-form"' in form.text
    url = f"/review/add.php?transaction_uuid={order}"
    # no CSRF token: refused, nothing stored
    assert client.post(url, data={"score": "5", "body": "x"}, headers={"Origin": "http://testserver"}).status == 403
    bad = client.post(url, data={"score": "9", "csrf_token": token}, headers=html)
    assert bad.status == 400 and "score" in bad.text
    assert count(db) == 0
    r = client.post(url, data={"score": "5", "body": "<b>lovely</b>", "csrf_token": token})
    assert r.status == 303 and r.header("Location").startswith(f"/store.php?uuid={w.store['uuid']}")
    page = client.get(f"/store.php?uuid={w.store['uuid']}", headers=html).text
    assert "&lt;b&gt;lovely&lt;/b&gt;" in page and "<b>lovely</b>" not in page
    assert client.post(url, data={"score": "4", "csrf_token": token}, headers=html).status == 409
    assert count(db) == 1


def test_store_answers_and_staff_hide_from_the_store_page(db, client):
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    review = add(client, w.buyer, order, "3", "ok").json()["review"]
    html = {"Accept": "text/html"}
    token = login(client, "vendor1")
    page = client.get(f"/store.php?uuid={w.store['uuid']}", headers=html).text
    assert "reply-form" in page and "hide-form" not in page
    r = client.post("/review/manage.php", data={"form": "reply", "review_uuid": review["uuid"],
                                                "reply": "sorry", "csrf_token": token})
    assert r.status == 303
    assert client.post("/review/manage.php", data={"form": "reply", "review_uuid": review["uuid"],
                                                   "reply": "again", "csrf_token": token}).status == 409
    assert client.post("/review/manage.php", data={"form": "hide", "review_uuid": review["uuid"],
                                                   "reason": "x", "csrf_token": token}).status == 403
    client.post("/logout.php", data={"csrf_token": token})
    token = login(client, "staff1")
    assert "hide-form" in client.get(f"/store.php?uuid={w.store['uuid']}", headers=html).text
    r = client.post("/review/manage.php", data={"form": "hide", "review_uuid": review["uuid"],
                                                "reason": "off topic", "csrf_token": token})
    assert r.status == 303
    assert db.value("SELECT hidden FROM reviews") == 1
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'review_hidden'") == 1


def test_concurrent_reviews_of_one_order_store_exactly_one(db, live_server):
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    statuses = at_once(8, lambda i: post(live_server + API, {
        "action": "add", "transaction_uuid": order, "score": str(1 + i % 5)}, headers=w.buyer["headers"]))
    assert statuses == [200] + [409] * 7
    assert count(db) == 1


def test_concurrent_answers_store_exactly_one(db, live_server):
    w = market.world(db)
    review = reviews.add_review(db, w.buyer, market.order(db, w, status="RELEASED"), 5)
    statuses = at_once(8, lambda i: post(live_server + API, {
        "action": "reply", "review_uuid": review["uuid"], "reply": f"answer{i}"}, headers=w.vendor["headers"]))
    assert statuses == [200] + [409] * 7
    assert db.value("SELECT reply FROM reviews").startswith("answer")


def test_bad_list_queries_are_400(db, client):
    assert client.get(API).status == 400
    assert client.get(f"{API}?store_uuid=nope").status == 400
    assert client.get(f"{API}?item_uuid=00000000-0000-4000-8000-000000000000").status == 404
    assert client.post(API, data={"action": "fly"}, headers=make_user(db, "zed")["headers"]).status == 400


# -- public profiles --------------------------------------------------------------------

def test_profile_shows_public_facts_and_nothing_private(db, client):
    w = market.world(db)
    db.execute("UPDATE users SET refund_address = ?, payout_address = ? WHERE uuid = ?",
               (market.ADDR_B, market.ADDR_C, w.vendor["uuid"]))
    db.execute("UPDATE stores SET payout_address = ? WHERE uuid = ?", (market.ADDR_D, w.store["uuid"]))
    order = market.order(db, w, status="RELEASED")
    reviews.add_review(db, w.buyer, order, 4, "solid")
    r = client.get("/user.php?username=VENDOR1", headers={"Accept": "text/html"})
    assert r.status == 200
    page = r.text
    assert "vendor1" in page and "Member since " + w.vendor["created_at"][:10] in page
    assert f'/store.php?uuid={w.store["uuid"]}' in page and "★ 4.00 (1 review)" in page and "solid" in page
    assert '/messages.php?with=vendor1' in page
    for secret in (market.ADDR_A, market.ADDR_B, market.ADDR_C, market.ADDR_D, order, "buyer1",
                   w.vendor["uuid"], "@"):
        assert secret.lower() not in page.lower(), secret
    buyer_page = client.get("/user.php?username=buyer1").text
    assert order not in buyer_page and market.ADDR_A.lower() not in buyer_page.lower()


def test_profile_of_unknown_or_banned_user_is_404(db, client):
    from lib import users
    w = market.world(db)
    assert client.get("/user.php?username=nobody").status == 404
    assert client.get("/user.php").status == 400
    assert client.get("/user.php?username=" + "x" * 40).status == 404
    users.set_banned(db, w.vendor["uuid"], True)
    assert client.get("/user.php?username=vendor1").status == 404


def test_profile_escapes_and_hides_suspended_stores(db, client):
    w = market.world(db)
    db.execute("UPDATE stores SET suspended = 1 WHERE uuid = ?", (w.store["uuid"],))
    page = client.get("/user.php?username=vendor1").text
    assert w.store["uuid"] not in page and "No stores." in page


def test_store_page_links_its_owners_profile(db, client):
    w = market.world(db)
    page = client.get(f"/store.php?uuid={w.store['uuid']}").text
    assert '<a href="/user.php?username=vendor1" id="store-owner">vendor1</a>' in page


def test_scoped_keys_add_answer_and_hide_by_their_scope(db, client):
    from tests.test_scopes import new_key
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    _, read_key = new_key(client, w.buyer, ["read"], name="r")
    r = client.post(API, data={"action": "add", "transaction_uuid": order, "score": "5"}, headers=read_key)
    assert r.status == 403 and "'orders' scope" in r.json()["error"] and count(db) == 0
    _, orders_key = new_key(client, w.buyer, ["orders"], name="o")
    r = client.post(API, data={"action": "add", "transaction_uuid": order, "score": "5"}, headers=orders_key)
    assert r.status == 200, r
    review = r.json()["review"]
    _, vendor_orders = new_key(client, w.vendor, ["orders"], name="vo")
    r = client.post(API, data={"action": "reply", "review_uuid": review["uuid"], "reply": "hi"}, headers=vendor_orders)
    assert r.status == 403 and "'store' scope" in r.json()["error"]
    other = market.store(db, w.vendor, "other")
    _, other_store_key = new_key(client, w.vendor, ["store"], other["uuid"], name="vs")
    r = client.post(API, data={"action": "reply", "review_uuid": review["uuid"], "reply": "hi"},
                    headers=other_store_key)
    assert r.status == 403 and "limited to the store" in r.json()["error"]
    _, staff_store = new_key(client, w.staff, ["store"], name="ss")
    r = client.post(API, data={"action": "hide", "review_uuid": review["uuid"], "reason": "x"}, headers=staff_store)
    assert r.status == 403 and "'full' scope" in r.json()["error"]
    assert db.value("SELECT reply FROM reviews") is None and db.value("SELECT hidden FROM reviews") == 0


def test_purchases_list_links_the_review_of_released_orders(db, client):
    w = market.world(db)
    released = market.order(db, w, status="RELEASED")
    pending = market.order(db, w, status="COMPLETED")
    login(client, "buyer1")
    page = client.get("/payments.php", headers={"Accept": "text/html"}).text
    assert f'href="/review/add.php?transaction_uuid={released}"' in page
    assert f"transaction_uuid={pending}" not in page
