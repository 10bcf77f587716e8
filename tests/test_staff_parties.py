"""A staff member who is a party to an order (its buyer or a member of
its store) never uses staff powers on it; another staff member or an admin decides."""
from lib import orders
from tests import market
from tests.client import Client
from tests.factories import login, make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

ACTIONS = "/api/transaction-actions.php"


def act(client, user, order, action, **extra):
    return client.post(ACTIONS, data={"transaction_uuid": order, "action": action, **extra},
                       headers=user["headers"])


def test_staff_buyer_cannot_refund_or_resolve_their_own_order(db, client):
    w = market.world(db)
    order = market.order(db, w, "COMPLETED", buyer=w.staff, dispatched=True)
    # a paid, dispatched order: a buyer may not cancel it, and staff powers do not apply
    r = act(client, w.staff, order, "cancel")
    assert r.status == 403 and "party to this order" in r.json()["error"], r
    assert act(client, w.staff, order, "dispute", comment="broken").status == 200
    dispute = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (order,))
    for action, extra in (("partial_refund", {"refund_percent": "99"}), ("cancel", {}), ("release", {})):
        r = act(client, w.staff, order, action, **extra)
        assert r.status == 403 and "another staff member or an admin decides" in r.json()["error"], r
    assert db.value("SELECT COUNT(*) FROM transaction_intents") == 0
    # the order page offers the staff buyer no staff action
    seen = orders.get_order(db, w.staff, order)
    assert seen["my_roles"] == ["buyer"]
    assert not {"partial_refund", "cancel", "release"} & set(seen["allowed_actions"])
    # the dispute page says so and has no resolve form; a resolve POST is refused
    browser = Client(client.app)
    token = login(browser, w.staff["username"])
    page = browser.get(f"/payment.php?uuid={order}", headers={"Accept": "text/html"})
    assert page.status == 200 and "party-staff-note" in page.text and "action-partial_refund" not in page.text
    page = browser.get(f"/dispute.php?uuid={dispute}", headers={"Accept": "text/html"})
    assert page.status == 200 and "party-staff-note" in page.text and "resolve-form" not in page.text
    r = browser.post(f"/dispute.php?uuid={dispute}", data={
        "csrf_token": token, "action": "resolve", "resolution": "partial_refund", "refund_percent": "99"},
        headers={"Accept": "text/html"})
    assert r.status == 403 and "another staff member" in r.text
    assert db.value("SELECT status FROM disputes WHERE uuid = ?", (dispute,)) == "open"
    # another staff member decides
    other = make_user(db, "staff2", role="staff")
    r = act(client, other, order, "partial_refund", refund_percent="50")
    assert r.status == 200, r
    intent = r.json()["intent"]  # the action name (as the original answers it), or the intent object
    assert (intent if isinstance(intent, str) else intent["action"]) == "PARTIAL_REFUND", r
    assert db.value("SELECT status FROM disputes WHERE uuid = ?", (dispute,)) != "open"


def test_staff_store_member_cannot_resolve_a_dispute_on_their_store(db, client):
    w = market.world(db)
    shop = market.store(db, w.staff, "staffshop")
    item = market.item(db, w.staff, shop["uuid"])
    package = market.package(db, w.staff, item["uuid"])
    order = market.order(db, market.World(w, package=package), "COMPLETED")
    assert act(client, w.buyer, order, "dispute", comment="never came").status == 200
    dispute = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (order,))
    r = client.post("/api/disputes.php", data={"dispute_uuid": dispute, "resolution": "release"},
                    headers=w.staff["headers"])
    assert r.status in (400, 403, 405), r   # /api/disputes.php has no resolve; the action API does
    r = act(client, w.staff, order, "release")
    assert r.status == 403 and "party to this order" in r.json()["error"], r
    assert orders.get_order(db, w.staff, order)["my_roles"] == ["vendor"]
    r = act(client, w.admin, order, "release")
    assert r.status == 200, r
