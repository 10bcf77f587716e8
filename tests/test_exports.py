"""Exports (lib/exports.py, GET /api/exports.php) on both databases: what a vendor and
staff get for a date range, who may get what, bad input answered 400 naming the field,
and the body streamed in chunks read by keyset (never every row at once), also through
real nginx and uwsgi."""
import csv
import io
import json
import uuid as uuidlib

import pytest

from lib import api_keys, exports, orders
from tests import market
from tests.client import Client
from tests.factories import make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

RANGE = "from=2026-03-01&to=2026-03-31"
HASH = "0x" + "ab" * 32


def tx_hash(n):
    return "0x%064x" % n


def payout(db, order_uuid, role, amount, status="confirmed", n=1, to=market.ADDR_B, created_at="2026-03-10 12:00:00"):
    db.insert("payouts", {"intent_uuid": None, "transaction_uuid": order_uuid, "kind": "payout",
                          "recipient_role": role, "chain_id": 1, "currency": "ETH", "token_contract": "",
                          "from_address": market.ADDR_A, "to_address": to, "amount": str(amount),
                          "nonce": n, "tx_hash": tx_hash(n), "raw_tx": "0x00", "status": status,
                          "created_at": created_at, "updated_at": created_at})


def dated(db, order_uuid, stamp):
    db.execute("UPDATE transactions SET created_at = ? WHERE uuid = ?", (stamp, order_uuid))


@pytest.fixture
def sales(db):
    """Orders of w.store in March 2026 (one on each edge day) and outside it, a released one
    with its payout legs, and another vendor's order in range."""
    w = market.world(db)
    released = market.order(db, w, "RELEASED")
    dated(db, released, "2026-03-01 00:00:00")
    # 0.05 ETH due: commission 0.005 (half of it the referrer's share), vendor 0.045
    payout(db, released, "commission", 2500000000000000, n=1)
    payout(db, released, "referrer", 2500000000000000, n=2)
    payout(db, released, "vendor", 45000000000000000, n=3)
    payout(db, released, "vendor", 45000000000000000, status="failed", n=4)   # a leg that failed
    last_day = market.order(db, w)
    dated(db, last_day, "2026-03-31 23:59:59")
    before, after = market.order(db, w), market.order(db, w)
    dated(db, before, "2026-02-28 23:59:59")
    dated(db, after, "2026-04-01 00:00:00")
    other_vendor = make_user(db, "vendor2")
    other_store = market.store(db, other_vendor, "other")
    other_item = market.item(db, other_vendor, other_store["uuid"])
    other_package = market.package(db, other_vendor, other_item["uuid"])
    foreign = orders.create_order(db, w.buyer, other_package["uuid"], "ETH", 1, market.ADDR_A)["uuid"]
    dated(db, foreign, "2026-03-15 10:00:00")
    return {"w": w, "released": released, "last_day": last_day, "foreign": foreign,
            "other_vendor": other_vendor, "other_store": other_store}


def csv_rows(r):
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/csv; charset=utf-8"
    assert "attachment" in r.header("Content-Disposition")
    return list(csv.DictReader(io.StringIO(r.text)))


def test_a_vendors_sales_of_a_range_with_fees_and_payout_hashes(client, sales):
    w = sales["w"]
    rows = csv_rows(client.get(f"/api/exports.php?{RANGE}", headers=w.vendor["headers"]))
    assert [r["order_uuid"] for r in rows] == [sales["released"], sales["last_day"]]
    r = rows[0]
    assert (r["status"], r["store"], r["item"], r["package"], r["price_usd"], r["currency"], r["usd_rate"]) == \
        ("RELEASED", "shop", "widget", "one", "100", "ETH", "2000")
    assert (r["amount_due"], r["commission"], r["referral"], r["fees"], r["vendor_payout"]) == \
        ("0.05", "0.0025", "0.0025", "0.005", "0.045")
    assert r["payout_tx_hashes"].split() == [tx_hash(1), tx_hash(2), tx_hash(3), tx_hash(4)]
    assert rows[1]["status"] == "PENDING" and rows[1]["payout_tx_hashes"] == ""
    # The same as JSON, the legs with their status.
    r = client.get(f"/api/exports.php?{RANGE}&format=json", headers=w.vendor["headers"])
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    doc = r.json()
    assert (doc["kind"], doc["from"], doc["to"]) == ("sales", "2026-03-01", "2026-03-31")
    legs = doc["rows"][0]["payouts"]
    assert [(p["recipient_role"], p["amount"], p["status"]) for p in legs] == [
        ("commission", "0.0025", "confirmed"), ("referrer", "0.0025", "confirmed"),
        ("vendor", "0.045", "confirmed"), ("vendor", "0.045", "failed")]
    assert legs[2]["tx_hash"] == tx_hash(3)
    # The other vendor sees only their own order.
    rows = csv_rows(client.get(f"/api/exports.php?{RANGE}", headers=sales["other_vendor"]["headers"]))
    assert [r["order_uuid"] for r in rows] == [sales["foreign"]]


def test_store_choice_and_a_key_limited_to_one_store(client, db, sales):
    w = sales["w"]
    r = client.get(f"/api/exports.php?{RANGE}&store_uuid={sales['other_store']['uuid']}",
                   headers=w.vendor["headers"])
    assert r.status == 404
    rows = csv_rows(client.get(f"/api/exports.php?{RANGE}&store_uuid={w.store['uuid']}",
                               headers=w.vendor["headers"]))
    assert len(rows) == 2
    second = market.store(db, w.vendor, "second")
    key, _row = api_keys.create_key(db, w.vendor["uuid"], "one store", key_scopes="store",
                                    store_uuid=second["uuid"])
    limited = {"Authorization": f"Bearer {key}"}
    assert csv_rows(client.get(f"/api/exports.php?{RANGE}", headers=limited)) == []
    assert client.get(f"/api/exports.php?{RANGE}&store_uuid={w.store['uuid']}", headers=limited).status == 404


def test_staff_exports_orders_payouts_commissions_referrals_and_disputes(client, db, sales):
    w = sales["w"]
    st = w.staff["headers"]
    rows = csv_rows(client.get(f"/api/exports.php?kind=orders&{RANGE}", headers=st))
    assert [(r["order_uuid"], r["buyer"]) for r in rows] == [
        (sales["released"], "buyer1"), (sales["last_day"], "buyer1"), (sales["foreign"], "buyer1")]
    rows = csv_rows(client.get(f"/api/exports.php?kind=payouts&{RANGE}", headers=st))
    assert [(r["recipient_role"], r["amount"], r["amount_base_units"], r["tx_hash"], r["status"]) for r in rows] == [
        ("commission", "0.0025", "2500000000000000", tx_hash(1), "confirmed"),
        ("referrer", "0.0025", "2500000000000000", tx_hash(2), "confirmed"),
        ("vendor", "0.045", "45000000000000000", tx_hash(3), "confirmed"),
        ("vendor", "0.045", "45000000000000000", tx_hash(4), "failed")]
    rows = csv_rows(client.get(f"/api/exports.php?kind=commissions&{RANGE}", headers=st))
    assert [(r["order_uuid"], r["amount"], r["tx_hash"]) for r in rows] == [(sales["released"], "0.0025", tx_hash(1))]
    db.insert("referral_payments", {"transaction_uuid": sales["released"], "referrer_uuid": w.stranger["uuid"],
                                    "amount": "2500000000000000", "currency": "ETH", "chain_id": 1,
                                    "payment_receipt_uuid": tx_hash(2), "created_at": "2026-03-10 12:00:00"})
    rows = csv_rows(client.get(f"/api/exports.php?kind=referrals&{RANGE}", headers=st))
    assert [(r["order_uuid"], r["referrer"], r["amount"], r["tx_hash"]) for r in rows] == [
        (sales["released"], "stranger1", "0.0025", tx_hash(2))]
    db.insert("disputes", {"uuid": str(uuidlib.uuid4()), "transaction_uuid": sales["last_day"],
                           "opened_by": w.buyer["uuid"], "status": "resolved", "resolution": "partial_refund",
                           "refund_percent": 40, "resolved_by": w.staff["uuid"],
                           "created_at": "2026-03-20 08:00:00", "resolved_at": "2026-03-21 09:00:00"})
    doc = client.get(f"/api/exports.php?kind=disputes&{RANGE}&format=json", headers=st).json()
    assert [(d["order_uuid"], d["opened_by"], d["status"], d["resolution"], d["refund_percent"], d["resolved_by"])
            for d in doc["rows"]] == [(sales["last_day"], "buyer1", "resolved", "partial_refund", 40, "staff1")]


def test_who_may_export_what(app, client, sales):
    w = sales["w"]
    assert Client(app).get(f"/api/exports.php?{RANGE}").status == 401
    for kind in exports.STAFF_KINDS:
        r = client.get(f"/api/exports.php?kind={kind}&{RANGE}", headers=w.vendor["headers"])
        assert r.status == 403 and kind in r.json()["error"]
    r = client.get(f"/api/exports.php?{RANGE}", headers=w.buyer["headers"])
    assert r.status == 404 and "vendors" in r.json()["error"]


@pytest.mark.parametrize("query, field", [
    ("to=2026-03-31", "from"), ("from=2026-03-01", "to"), ("from=2026-3-1&to=2026-03-31", "from"),
    ("from=2026-02-30&to=2026-03-31", "from"), ("from=2026-03-01&to=31.03.2026", "to"),
    ("from=2026-03-02&to=2026-03-01", "to"), ("from=2000-01-01&to=2026-03-01", "to"),
    (f"{RANGE}&kind=everything", "kind"), (f"{RANGE}&format=xlsx", "format"), (f"{RANGE}&store_uuid=shop", "store_uuid"),
])
def test_bad_input_is_400_naming_the_field(client, db, sales, query, field):
    counts = {t: db.value(f"SELECT COUNT(*) FROM {t}") for t in ("transactions", "payouts", "audit_log")}
    r = client.get(f"/api/exports.php?{query}", headers=sales["w"].vendor["headers"])
    assert r.status == 400, r
    assert r.json()["error"].startswith(field + " "), r.json()
    assert {t: db.value(f"SELECT COUNT(*) FROM {t}") for t in counts} == counts


def test_csv_cells_are_not_spreadsheet_formulas(client, db, sales):
    db.execute("UPDATE items SET name = ? WHERE uuid = ?", ('=HYPERLINK("http://x","y")', sales["w"].item["uuid"]))
    rows = csv_rows(client.get(f"/api/exports.php?{RANGE}", headers=sales["w"].vendor["headers"]))
    assert rows[0]["item"] == "'=HYPERLINK(\"http://x\",\"y\")"


def many_orders(db, w, n, day="2026-03-05"):
    """n orders of w.package straight into the tables (the export reads them; nothing else)."""
    with db.transaction():
        for i in range(n):
            order_uuid = str(uuidlib.uuid4())
            stamp = f"{day} {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
            db.insert("transactions", {"uuid": order_uuid, "package_uuid": w.package["uuid"],
                                       "store_uuid": w.store["uuid"], "buyer_uuid": w.buyer["uuid"],
                                       "price_usd": "100", "created_at": stamp, "updated_at": stamp})
            db.insert("evm_transactions", {"transaction_uuid": order_uuid, "chain_id": 1, "currency": "ETH",
                                           "decimals": 18, "required_amount": str(10 ** 16 + i),
                                           "usd_rate": "2000", "created_at": stamp})


def test_the_export_is_streamed_in_keyset_chunks(app, db, monkeypatch):
    w = market.world(db)
    many_orders(db, w, 260)
    monkeypatch.setattr(exports, "CHUNK", 50)
    largest = []
    real_query = db.query

    def counting_query(sql, params=()):
        rows = real_query(sql, params)
        largest.append(len(rows))
        return rows

    monkeypatch.setattr(db, "query", counting_query)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/exports.php",
               "QUERY_STRING": f"{RANGE}&format=json", "REMOTE_ADDR": "127.0.0.1",
               "HTTP_AUTHORIZATION": w.vendor["headers"]["Authorization"], "wsgi.input": io.BytesIO(b"")}
    started = {}
    body = app(environ, lambda status, headers: started.update(status=status, headers=headers))
    assert started["status"].startswith("200")
    assert "content-length" not in {k.lower() for k, _ in started["headers"]}
    assert not isinstance(body, (list, tuple, bytes))       # an iterator: nothing read yet
    before = len(largest)
    chunks = []
    for chunk in body:
        chunks.append(chunk)
    doc = json.loads(b"".join(chunks))
    assert [r["amount_due"] for r in doc["rows"]] == [exports.format_amount(10 ** 16 + i, 18) for i in range(260)]
    assert len(chunks) >= 260 // 50
    assert max(largest[before:]) <= 50                       # no query returned more than a chunk


def test_streamed_through_nginx_and_uwsgi(request):
    from tests.stacks import started
    with started(request, "mkt-export-", database="sqlite", processes=1) as ([s], db):
        w = market.world(db)
        many_orders(db, w, 1200)
        status, headers, data = s.request("GET", f"/api/exports.php?{RANGE}", headers=w.vendor["headers"])
        assert status == 200
        names = {k.lower(): v for k, v in headers}
        assert names.get("transfer-encoding") == "chunked" and "content-length" not in names
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert len(rows) == 1200 and rows[-1]["amount_due"] == exports.format_amount(10 ** 16 + 1199, 18)
