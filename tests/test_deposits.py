"""/api/deposits.php and /api/deposit-withdraw.php."""
import pytest

from lib import catalog
from lib.db import utc_now
from tests import market
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)


def count(db, table):
    return db.value(f"SELECT COUNT(*) FROM {table}")


def open_deposit(client, w, **extra):
    return client.post("/api/deposits.php", data=dict({"store_uuid": w.store["uuid"], "currency": "ETH",
                                                       "chain_id": "1"}, **extra), headers=w.vendor["headers"])


def test_open_list_and_detail(db, client):
    w = market.world(db)
    r = open_deposit(client, w)
    assert r.status == 200, r
    dep = r.json()["deposit"]
    assert dep["address"] is None and dep["address_pending"] is True and dep["balance"] == "0"
    assert dep["currency"] == "ETH" and dep["chain_id"] == 1 and dep["open_withdrawal"] is None
    assert [h["event"] for h in dep["history"]] == ["opened"]
    row = db.one("SELECT * FROM deposits WHERE uuid = ?", (dep["uuid"],))
    assert row["decimals"] == 18 and row["derivation_index"] is None and row["created_by"] == w.vendor["uuid"]
    listed = client.get("/api/deposits.php", headers=w.vendor["headers"]).json()["deposits"]
    assert [d["uuid"] for d in listed] == [dep["uuid"]]
    assert client.get(f"/api/deposits.php?store_uuid={w.store['uuid']}",
                      headers=w.vendor["headers"]).json()["deposits"][0]["uuid"] == dep["uuid"]
    assert client.get("/api/deposits.php", headers=w.buyer["headers"]).json()["deposits"] == []
    assert client.get(f"/api/deposits.php?store_uuid={w.store['uuid']}", headers=w.buyer["headers"]).status == 404
    assert client.get(f"/api/deposits.php?uuid={dep['uuid']}", headers=w.buyer["headers"]).status == 404
    detail = client.get(f"/api/deposits.php?uuid={dep['uuid']}", headers=w.vendor["headers"]).json()["deposit"]
    assert detail["uuid"] == dep["uuid"] and detail["withdrawals"] == []
    assert client.get("/api/deposits.php").status == 401


@pytest.mark.parametrize("who, extra, status", [
    ("buyer", {}, 403),
    ("vendor", {"store_uuid": "00000000-0000-0000-0000-000000000000"}, 404),
    ("vendor", {"store_uuid": ""}, 400),
    ("vendor", {"currency": "DOGE"}, 400),
    ("vendor", {"chain_id": "5"}, 400),
    ("vendor", {"chain_id": "x"}, 400),
])
def test_open_deposit_failures(db, client, who, extra, status):
    w = market.world(db)
    data = dict({"store_uuid": w.store["uuid"], "currency": "ETH", "chain_id": "1"}, **extra)
    r = client.post("/api/deposits.php", data=data, headers=w[who]["headers"])
    assert r.status == status, r
    assert count(db, "deposits") == 0 and count(db, "deposit_history") == 0


def test_duplicate_and_unverified_token(db, client):
    w = market.world(db)
    assert open_deposit(client, w).status == 200
    r = open_deposit(client, w)
    assert r.status == 409 and "already" in r.json()["error"]
    market.add_token(db, 1, "USDC", market.USDC, decimals=6, status="unverified")
    assert open_deposit(client, w, currency="USDC").status == 409
    assert count(db, "deposits") == 1


def test_withdraw(db, client):
    w = market.world(db)
    dep = open_deposit(client, w).json()["deposit"]

    def withdraw(who="vendor", uuid=dep["uuid"]):
        return client.post("/api/deposit-withdraw.php", data={"deposit_uuid": uuid}, headers=w[who]["headers"])

    r = withdraw()
    assert r.status == 409 and "payout address" in r.json()["error"]
    catalog.update_store(db, w.vendor, w.store["uuid"], payout_address=market.ADDR_C)
    r = withdraw()
    assert r.status == 409 and "not derived" in r.json()["error"]
    db.execute("UPDATE deposits SET address = ?, derivation_index = 7 WHERE uuid = ?", (market.ADDR_B, dep["uuid"]))
    r = withdraw()
    assert r.status == 409 and "no balance" in r.json()["error"]
    db.execute("UPDATE deposits SET balance = ? WHERE uuid = ?", (str(15 * 10 ** 17), dep["uuid"]))
    assert count(db, "deposit_withdraw_intents") == 0
    assert withdraw("buyer").status == 404
    assert withdraw("vendor", "00000000-0000-0000-0000-000000000000").status == 404
    assert client.post("/api/deposit-withdraw.php", data={}, headers=w.vendor["headers"]).status == 400
    # a member who is not the owner
    db.insert("store_users", {"store_uuid": w.store["uuid"], "user_uuid": w.stranger["uuid"], "role": "staff",
                              "created_at": utc_now()})
    assert withdraw("stranger").status == 403
    assert count(db, "deposit_withdraw_intents") == 0

    r = withdraw()
    assert r.status == 200, r
    intent = r.json()["intent"]
    assert intent["to_address"] == market.ADDR_C and intent["status"] == "pending"
    row = db.one("SELECT * FROM deposit_withdraw_intents WHERE uuid = ?", (intent["uuid"],))
    assert row["open_key"] == dep["uuid"] and row["requested_by"] == w.vendor["uuid"]
    r = withdraw()
    assert r.status == 409 and "in progress" in r.json()["error"]
    detail = client.get(f"/api/deposits.php?uuid={dep['uuid']}", headers=w.vendor["headers"]).json()["deposit"]
    assert detail["balance"] == "1.5" and detail["open_withdrawal"] == intent["uuid"]
    assert [x["status"] for x in detail["withdrawals"]] == ["pending"]
    # once cron finished it, another withdrawal may be asked for
    db.execute("UPDATE deposit_withdraw_intents SET status = 'completed', open_key = NULL")
    assert withdraw().status == 200
    assert count(db, "deposit_withdraw_intents") == 2
