"""Staff recovery of payouts: POST/GET /api/payout-actions.php and the
staff page /staff/payouts.php, on SQLite and MariaDB.

Rows cron would write (intents needing attention, payout legs, staff flags, chain heads)
are inserted directly; the actions go through lib.intents.staff_action / rescue.
"""
import re
import uuid as uuidlib

from lib import openapi
from lib.db import utc_now
from tests import market
from tests.client import Client
from tests.factories import login, make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)
from tests.test_openapi import Recorder, check

API = "/api/payout-actions.php"
PAGE = "/staff/payouts.php"
HTML = {"Accept": "text/html,application/xhtml+xml"}
SCRIPT = "<script>alert(1)</script>"
ESCROW = "0x" + "e1" * 20
STATION = "0x" + "5a" * 20
UNKNOWN_TOKEN = "0x" + "7e" * 20          # an ERC-20 nobody accepted (funds sent in the wrong asset)
_nonce = [0]


def payout(db, intent_uuid, order_uuid, role, status, amount, to=market.ADDR_C, kind="payout", retry_of=None,
           block_hash=None, replacements=0, token_contract="", currency="ETH", error=None, chain_id=1):
    """A payouts row as cron writes it (every NOT NULL column, and the issue-10 ones)."""
    _nonce[0] += 1
    now = utc_now()
    return db.insert("payouts", {
        "intent_uuid": intent_uuid, "transaction_uuid": order_uuid, "deposit_uuid": None, "kind": kind,
        "recipient_role": role, "chain_id": chain_id, "currency": currency, "token_contract": token_contract,
        "from_address": ESCROW if kind == "payout" else STATION, "to_address": to, "amount": str(amount),
        "fee": "21000000000000", "nonce": _nonce[0], "tx_hash": "0x%064x" % (10 ** 6 + _nonce[0]),
        "raw_tx": "0x02f8", "status": status, "block_number": 100 if block_hash else None, "error": error,
        "created_at": now, "updated_at": now, "retry_of": retry_of, "redirect_to": None, "tx_type": 2,
        "gas_limit": 21000, "max_fee_per_gas": "30000000000", "max_priority_fee_per_gas": "1000000000",
        "block_hash": block_hash, "replacements": replacements})


def attention_intent(db, order_uuid, action="RELEASE", status="needs_attention", error=None):
    """A transaction_intents row cron handed to staff (open_key = the order)."""
    now = utc_now()
    row = {"uuid": str(uuidlib.uuid4()), "transaction_uuid": order_uuid, "action": action, "status": status,
           "open_key": order_uuid, "refund_percent": None, "requested_by": None,
           "error": error if error is not None else "commission leg failed on chain: " + SCRIPT,
           "attempts": 1, "claimed_by": "cron", "claimed_at": now, "created_at": now, "updated_at": now,
           "failures": 0, "next_attempt_at": None, "asset": None, "flag_id": None}
    db.insert("transaction_intents", row)
    return row["uuid"]


def staff_flag(db, kind, reason, order_uuid=None, intent_uuid=None, amount=None, token_contract=None, chain_id=1,
               address=ESCROW, resolved=False):
    return db.insert("staff_flags", {
        "transaction_uuid": order_uuid, "reason": reason, "amount": amount, "created_at": utc_now(),
        "resolved_at": utc_now() if resolved else None, "kind": kind, "intent_uuid": intent_uuid,
        "chain_id": chain_id, "address": address, "token_contract": token_contract})


def setup(db):
    """A world, a RELEASE that needs attention (vendor leg confirmed, commission leg failed
    twice: the first attempt retried), its leg_failed flag, and a finished order with
    funds flagged in the wrong asset (rescuable)."""
    w = market.world(db)
    order = market.order(db, w, "COMPLETED")
    db.execute("UPDATE evm_transactions SET escrow_address = ? WHERE transaction_uuid = ?", (ESCROW, order))
    intent = attention_intent(db, order)
    vendor_leg = payout(db, intent, order, "vendor", "confirmed", 47500000000000000, to=market.ADDR_D,
                        block_hash="0x" + "b" * 64)
    first = payout(db, intent, order, "commission", "failed", 2500000000000000, error="out of gas")
    commission_leg = payout(db, intent, order, "commission", "failed", 2500000000000000, retry_of=first,
                            error="reverted: " + SCRIPT)
    leg_flag = staff_flag(db, "leg_failed", "commission leg failed", order, intent, amount="2500000000000000",
                          token_contract="")
    done = market.order(db, w, "RELEASED")
    wrong = staff_flag(db, "wrong_asset", "USDT sent to an ETH escrow", done, amount="1234500",
                       token_contract=UNKNOWN_TOKEN)
    w.update(order=order, intent=intent, vendor_leg=vendor_leg, first_leg=first, leg=commission_leg,
             leg_flag=leg_flag, done=done, wrong_flag=wrong)
    return w


def snapshot(db):
    return {t: db.query(f"SELECT * FROM {t} ORDER BY id") for t in
            ("transaction_intents", "deposit_withdraw_intents", "payouts", "staff_flags", "audit_log")}


def post(client, who, **data):
    return client.post(API, data=data, headers=who["headers"])


# -- who may act ---------------------------------------------------------------------

def test_only_staff_and_not_parties(db, client):
    w = setup(db)
    before = snapshot(db)
    for body in ({"intent_uuid": w.intent, "action": "retry"}, {"action": "rescue", "flag_id": str(w.wrong_flag)}):
        r = client.post(API, data=body)
        assert r.status == 401 and r.header("Content-Type") == "application/json", r
        for who in ("buyer", "vendor", "stranger"):
            r = post(client, w[who], **body)
            assert r.status == 403, (who, r)
            assert "error" in r.json()
    assert client.get(API).status == 401
    for who in ("buyer", "vendor", "stranger"):
        assert client.get(API, headers=w[who]["headers"]).status == 403
    # a staff member who is the buyer, or a member of the store, decides nothing about the order
    buyer_staff = make_user(db, "staffbuyer", role="staff")
    own = market.order(db, w, "RELEASED", buyer=buyer_staff)
    own_intent = attention_intent(db, market.order(db, w, "COMPLETED", buyer=buyer_staff))
    own_flag = staff_flag(db, "late_funds", "late payment", own, amount="1000", token_contract="")
    member_staff = make_user(db, "staffmember", role="staff")
    db.insert("store_users", {"store_uuid": w.store["uuid"], "user_uuid": member_staff["uuid"], "role": "manager",
                              "created_at": utc_now()})
    before = snapshot(db)
    for who, intent, flag in ((buyer_staff, own_intent, own_flag), (member_staff, w.intent, w.wrong_flag)):
        for body in ({"intent_uuid": intent, "action": "retry"},
                     {"intent_uuid": intent, "action": "abandon", "comment": "paid by hand"},
                     {"action": "rescue", "flag_id": str(flag)}):
            r = post(client, who, **body)
            assert r.status == 403 and "party" in r.json()["error"], (who["username"], body, r)
    assert snapshot(db) == before
    # another staff member may
    assert post(client, w.staff, intent_uuid=own_intent, action="retry").status == 200


def test_session_requests_need_the_csrf_token(db, app):
    w = setup(db)
    c = Client(app)
    token = login(c, "staff1")
    before = snapshot(db)
    for headers in ({"Sec-Fetch-Mode": "cors"}, {"Origin": "http://testserver"}, {"X-CSRF-Token": "0" * 64}):
        r = c.post(API, data={"intent_uuid": w.intent, "action": "retry"}, headers=headers)
        assert r.status == 403 and "CSRF" in r.json()["error"], r
    assert snapshot(db) == before
    assert c.get(API).status == 200                    # a GET needs no token
    r = c.post(API, data={"intent_uuid": w.intent, "action": "retry"}, headers={"X-CSRF-Token": token})
    assert r.status == 200, r
    r = c.post(API, json_body={"action": "rescue", "flag_id": w.wrong_flag, "csrf_token": token})
    assert r.status == 200, r


# -- bad input changes nothing ---------------------------------------------------------

def test_bad_input_is_400_naming_the_field_and_changes_nothing(db, client):
    w = setup(db)
    i, leg = w.intent, str(w.leg)
    cases = [
        ({"intent_uuid": i, "action": "fly"}, "action"),
        ({"intent_uuid": i}, "action"),
        ({"intent_uuid": i, "action": ""}, "action"),
        ({"action": "retry"}, "intent_uuid"),
        ({"action": "retry", "intent_uuid": ""}, "intent_uuid"),
        ({"intent_uuid": i, "action": "redirect", "to_address": market.ADDR_B}, "payout_id"),
        ({"intent_uuid": i, "action": "redirect", "payout_id": "abc", "to_address": market.ADDR_B}, "payout_id"),
        ({"intent_uuid": i, "action": "redirect", "payout_id": "-1", "to_address": market.ADDR_B}, "payout_id"),
        ({"intent_uuid": i, "action": "redirect", "payout_id": "1" * 30, "to_address": market.ADDR_B},
         "payout_id"),
        ({"intent_uuid": i, "action": "redirect", "payout_id": leg}, "to_address"),
        ({"intent_uuid": i, "action": "redirect", "payout_id": leg, "to_address": market.BAD_CHECKSUM},
         "to_address"),
        ({"intent_uuid": i, "action": "redirect", "payout_id": leg, "to_address": market.NO_CHECKSUM},
         "to_address"),
        ({"intent_uuid": i, "action": "redirect", "payout_id": leg, "to_address": "0x" + "0" * 40}, "to_address"),
        ({"intent_uuid": i, "action": "redirect", "payout_id": leg, "to_address": "vitalik.eth"}, "to_address"),
        ({"intent_uuid": i, "action": "abandon"}, "comment"),
        ({"intent_uuid": i, "action": "abandon", "comment": "   "}, "comment"),
        ({"intent_uuid": i, "action": "abandon", "comment": "two\nlines"}, "comment"),
        ({"intent_uuid": i, "action": "abandon", "comment": "x" * 256}, "comment"),
        ({"action": "rescue"}, "flag_id"),
        ({"action": "rescue", "flag_id": "one"}, "flag_id"),
    ]
    before = snapshot(db)
    for body, field in cases:
        r = post(client, w.staff, **body)
        assert r.status == 400, (body, r)
        assert field in r.json()["error"], (body, r.json())
    # JSON bodies with the wrong types
    for body, field in (({"intent_uuid": [i], "action": "retry"}, "intent_uuid"),
                        ({"intent_uuid": i, "action": ["retry"]}, "action"),
                        ({"intent_uuid": i, "action": "redirect", "payout_id": {"a": 1},
                          "to_address": market.ADDR_B}, "payout_id"),
                        ({"intent_uuid": i, "action": "redirect", "payout_id": int(leg), "to_address": 7},
                         "to_address"),
                        ({"intent_uuid": i, "action": "abandon", "comment": 5}, "comment"),
                        ({"action": "rescue", "flag_id": True}, "flag_id")):
        r = client.post(API, json_body=body, headers=w.staff["headers"])
        assert r.status == 400 and field in r.json()["error"], (body, r)
    assert snapshot(db) == before


def test_unknown_is_404_and_wrong_state_is_409(db, client):
    w = setup(db)
    before = snapshot(db)
    for body in ({"intent_uuid": str(uuidlib.uuid4()), "action": "retry"},
                 {"intent_uuid": "short", "action": "abandon", "comment": "x"},
                 {"intent_uuid": w.intent, "action": "redirect", "payout_id": "999999", "to_address": market.ADDR_B},
                 {"action": "rescue", "flag_id": "999999"}):
        r = post(client, w.staff, **body)
        assert r.status == 404, (body, r)
    for body in ({"intent_uuid": w.intent, "action": "redirect", "payout_id": str(w.vendor_leg),
                  "to_address": market.ADDR_B},                            # a confirmed leg
                 {"intent_uuid": w.intent, "action": "redirect", "payout_id": str(w.first_leg),
                  "to_address": market.ADDR_B},                            # a leg already retried
                 {"action": "rescue", "flag_id": str(w.leg_flag)}):        # not about funds in an escrow
        r = post(client, w.staff, **body)
        assert r.status in (404, 409), (body, r)
    assert post(client, w.staff, intent_uuid=w.intent, action="redirect", payout_id=str(w.vendor_leg),
                to_address=market.ADDR_B).status == 409
    assert post(client, w.staff, action="rescue", flag_id=str(w.leg_flag)).status == 409
    resolved = staff_flag(db, "dust", "dust", w.done, amount="5", token_contract="", resolved=True)
    before = snapshot(db)
    assert post(client, w.staff, action="rescue", flag_id=str(resolved)).status == 409
    assert snapshot(db) == before
    # an intent that does not need attention (any more): 409 for every action
    assert post(client, w.staff, intent_uuid=w.intent, action="retry").status == 200
    before = snapshot(db)
    for body in ({"intent_uuid": w.intent, "action": "retry"},
                 {"intent_uuid": w.intent, "action": "abandon", "comment": "paid"},
                 {"intent_uuid": w.intent, "action": "redirect", "payout_id": str(w.leg),
                  "to_address": market.ADDR_B}):
        assert post(client, w.staff, **body).status == 409, body
    # the order already has an open intent: a rescue of its flag waits
    late = staff_flag(db, "late_funds", "late", w.order, amount="7", token_contract="")
    assert post(client, w.staff, action="rescue", flag_id=str(late)).status == 409
    assert snapshot(db)["transaction_intents"] == before["transaction_intents"]


# -- the actions ----------------------------------------------------------------------------

def test_retry(db, client):
    w = setup(db)
    r = post(client, w.staff, intent_uuid=w.intent, action="retry")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    assert r.json() == {"ok": True, "action": "retry", "intent_uuid": w.intent, "status": "pending"}
    row = db.one("SELECT * FROM transaction_intents WHERE uuid = ?", (w.intent,))
    assert row["status"] == "pending" and row["error"] is None and row["open_key"] == w.order
    flag = db.one("SELECT * FROM staff_flags WHERE id = ?", (w.leg_flag,))
    assert flag["resolved_at"] and flag["resolved_by"] == w.staff["uuid"] and flag["resolution"] == "retry"
    assert db.one("SELECT resolved_at FROM staff_flags WHERE id = ?", (w.wrong_flag,))["resolved_at"] is None
    audit = db.query("SELECT * FROM audit_log WHERE action = 'payout_retry'")
    assert len(audit) == 1 and audit[0]["user_uuid"] == w.staff["uuid"] and audit[0]["target"] == w.intent
    assert db.value("SELECT COUNT(*) FROM payouts WHERE status = 'failed'") == 2   # cron re-signs, not the web


def test_redirect_sets_the_address_of_that_leg_only(db, client):
    w = setup(db)
    r = client.post(API, json_body={"intent_uuid": w.intent, "action": "redirect", "payout_id": w.leg,
                                    "to_address": market.ADDR_B}, headers=w.admin["headers"])
    assert r.status == 200, r
    assert r.json() == {"ok": True, "action": "redirect", "intent_uuid": w.intent, "status": "pending"}
    rows = {p["id"]: p for p in db.query("SELECT * FROM payouts")}
    assert rows[w.leg]["redirect_to"] == market.ADDR_B
    assert rows[w.leg]["to_address"] == market.ADDR_C                # the signed leg keeps its recipient
    assert [p for p in rows if rows[p]["redirect_to"]] == [w.leg]
    assert db.value("SELECT status FROM transaction_intents WHERE uuid = ?", (w.intent,)) == "pending"
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'payout_redirect'") == 1


def test_abandon_settles_the_failed_legs(db, client):
    w = setup(db)
    r = post(client, w.staff, intent_uuid=w.intent, action="abandon", comment="paid by bank transfer")
    assert r.status == 200, r
    assert r.json() == {"ok": True, "action": "abandon", "intent_uuid": w.intent, "status": "processing"}
    rows = {p["id"]: p for p in db.query("SELECT * FROM payouts")}
    assert rows[w.leg]["status"] == "abandoned" and rows[w.leg]["settled_by"] == w.staff["uuid"]
    assert "paid by bank transfer" in rows[w.leg]["error"]
    assert rows[w.vendor_leg]["status"] == "confirmed"
    assert rows[w.first_leg]["status"] == "failed"                   # retried earlier: not a live leg
    assert db.value("SELECT status FROM transaction_intents WHERE uuid = ?", (w.intent,)) == "processing"
    assert db.value("SELECT resolved_at FROM staff_flags WHERE id = ?", (w.leg_flag,))
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'payout_abandon'") == 1


def test_rescue_opens_a_rescue_intent_of_the_flagged_asset(db, client):
    w = setup(db)
    r = post(client, w.staff, action="rescue", flag_id=str(w.wrong_flag))
    assert r.status == 200, r
    body = r.json()
    assert body["ok"] is True and body["action"] == "rescue" and body["status"] == "pending"
    assert body["flag_id"] == w.wrong_flag
    row = db.one("SELECT * FROM transaction_intents WHERE uuid = ?", (body["intent_uuid"],))
    assert row["action"] == "RESCUE" and row["status"] == "pending" and row["transaction_uuid"] == w.done
    assert row["asset"] == UNKNOWN_TOKEN and int(row["flag_id"]) == w.wrong_flag
    assert row["requested_by"] == w.staff["uuid"]
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'payout_rescue'") == 1
    assert post(client, w.staff, action="rescue", flag_id=str(w.wrong_flag)).status == 409   # one at a time
    # the native coin: asset ''
    other = market.order(db, w, "FAILED")
    dust = staff_flag(db, "dust", "dust after refund", other, amount="3000", token_contract="")
    body = post(client, w.admin, action="RESCUE", flag_id=str(dust)).json()
    assert db.value("SELECT asset FROM transaction_intents WHERE uuid = ?", (body["intent_uuid"],)) == ""


def withdrawal_needing_attention(db, w):
    from lib import deposits
    dep = deposits.open_deposit(db, w.vendor, w.store["uuid"], "ETH", 1)
    db.execute("UPDATE deposits SET address = ?, balance = '1000000000000000000' WHERE uuid = ?",
               ("0x" + "d0" * 20, dep["uuid"]))
    now = utc_now()
    intent = str(uuidlib.uuid4())
    db.insert("deposit_withdraw_intents", {
        "uuid": intent, "deposit_uuid": dep["uuid"], "to_address": market.ADDR_D, "status": "needs_attention",
        "open_key": dep["uuid"], "requested_by": w.vendor["uuid"], "error": "withdrawal failed", "attempts": 1,
        "claimed_by": "cron", "claimed_at": now, "created_at": now, "updated_at": now, "failures": 0})
    _nonce[0] += 1
    db.insert("payouts", {
        "intent_uuid": intent, "transaction_uuid": None, "deposit_uuid": dep["uuid"], "kind": "payout",
        "recipient_role": "store", "chain_id": 1, "currency": "ETH", "token_contract": "",
        "from_address": "0x" + "d0" * 20, "to_address": market.ADDR_D, "amount": "999979000000000000",
        "fee": "21000000000000", "nonce": _nonce[0], "tx_hash": "0x%064x" % (10 ** 7 + _nonce[0]), "raw_tx": "0x02",
        "status": "failed", "error": "dropped", "created_at": now, "updated_at": now, "replacements": 0})
    return dep, intent


def test_withdrawals_are_listed_and_store_members_refused(db, client):
    w = setup(db)
    dep, intent = withdrawal_needing_attention(db, w)
    body = client.get(API, headers=w.staff["headers"]).json()
    listed = {i["uuid"]: i for i in body["needs_attention"]}
    assert listed[intent]["kind"] == "withdrawal" and listed[intent]["action"] == "WITHDRAW"
    assert listed[intent]["deposit_uuid"] == dep["uuid"] and listed[intent]["transaction_uuid"] is None
    assert listed[intent]["legs"][0]["amount"] == "0.999979"
    member = make_user(db, "staffmember", role="staff")
    db.insert("store_users", {"store_uuid": w.store["uuid"], "user_uuid": member["uuid"], "role": "manager",
                              "created_at": utc_now()})
    before = snapshot(db)
    assert post(client, member, intent_uuid=intent, action="retry").status == 403
    assert snapshot(db) == before
    assert post(client, w.staff, intent_uuid=intent, action="retry").json()["status"] == "pending"


# -- GET: the list staff work from -------------------------------------------------------------

def chain_head(db, base_fee, confirmations):
    """Chain 1 as cron last saw it: its gas station below its minimum balance (0.04 < 0.05 ETH)."""
    db.insert("chain_heads", {"chain_id": 1, "block_number": 19000000, "seen_at": utc_now(),
                              "gas_station_address": STATION, "gas_station_balance": "40000000000000000",
                              "gas_station_min_balance": "50000000000000000", "base_fee_per_gas": base_fee,
                              "max_fee_ceiling": "100000000000", "confirmations": confirmations})


def test_get_lists_intents_with_live_legs_flags_and_chains(db, client):
    w = setup(db)
    chain_head(db, base_fee="12500000000", confirmations="3")
    r = client.get(API, headers=w.staff["headers"])
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    body = r.json()
    assert set(body) == {"needs_attention", "flags", "chains", "totals", "warnings"}
    (intent,) = body["needs_attention"]
    assert intent["uuid"] == w.intent and intent["kind"] == "order" and intent["action"] == "RELEASE"
    assert intent["transaction_uuid"] == w.order and intent["error"].endswith(SCRIPT)
    assert intent["chain_id"] == 1 and intent["currency"] == "ETH"
    legs = {leg["id"]: leg for leg in intent["legs"]}
    assert set(legs) == {w.vendor_leg, w.leg}                    # the retried first attempt is not live
    assert legs[w.leg]["status"] == "failed" and legs[w.leg]["amount"] == "0.0025"
    assert legs[w.leg]["amount_base_units"] == "2500000000000000" and legs[w.leg]["retry_of"] == w.first_leg
    assert legs[w.vendor_leg]["amount"] == "0.0475" and legs[w.vendor_leg]["explorer_url"].startswith("https://")
    assert "raw_tx" not in legs[w.leg]
    flags = {f["id"]: f for f in body["flags"]}
    assert flags[w.wrong_flag]["kind"] == "wrong_asset" and flags[w.wrong_flag]["rescuable"] is True
    assert flags[w.wrong_flag]["amount"] is None and flags[w.wrong_flag]["amount_base_units"] == "1234500"
    assert flags[w.leg_flag]["rescuable"] is False and flags[w.leg_flag]["amount"] == "0.0025"
    assert flags[w.leg_flag]["asset"] == "ETH"
    (chain,) = body["chains"]
    assert chain["gas_station_balance"] == "0.04" and chain["gas_station_low"] is True
    assert chain["base_fee_gwei"] == "12.5" and chain["max_fee_ceiling_gwei"] == "100"
    assert chain["failed_legs"] == 1 and chain["intents_needing_attention"] == 1 and chain["open_flags"] == 2
    assert "chain 1: gas station balance below 0.05 ETH" in body["warnings"]
    doc = openapi.document()
    schema = doc["paths"][API]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert check(schema, body, doc) == []
    # an open rescue shows on its flag
    rescue = post(client, w.staff, action="rescue", flag_id=str(w.wrong_flag)).json()
    flags = {f["id"]: f for f in client.get(API, headers=w.staff["headers"]).json()["flags"]}
    assert flags[w.wrong_flag]["rescue_intent_uuid"] == rescue["intent_uuid"]


def test_answers_match_the_openapi_document(db, client):
    """Every answer of this endpoint (success and errors) as lib/openapi.py describes it."""
    w = setup(db)
    dep, withdrawal = withdrawal_needing_attention(db, w)
    doc = openapi.document()
    rec = Recorder(client, doc)
    st, b = w.staff["headers"], w.buyer["headers"]
    rec.call("get", API, headers=st)
    rec.call("get", API, headers=b)
    rec.call("get", API)
    rec.call("post", API, headers=st, data={"intent_uuid": w.intent, "action": "fly"})
    rec.call("post", API, headers=b, data={"intent_uuid": w.intent, "action": "retry"})
    rec.call("post", API, headers=st, data={"intent_uuid": str(uuidlib.uuid4()), "action": "retry"})
    rec.call("post", API, headers=st, json_body={"intent_uuid": w.intent, "action": "redirect", "payout_id": w.leg,
                                                 "to_address": market.ADDR_B})
    rec.call("post", API, headers=st, data={"intent_uuid": w.intent, "action": "retry"})
    rec.call("post", API, headers=st, data={"intent_uuid": withdrawal, "action": "abandon", "comment": "paid"})
    rec.call("post", API, headers=st, data={"action": "rescue", "flag_id": str(w.wrong_flag)})
    rec.call("post", API, data={"action": "rescue", "flag_id": str(w.wrong_flag)})
    assert not rec.problems, "\n".join(rec.problems)
    assert rec.seen[(API, "get")] == {200, 401, 403}
    assert rec.seen[(API, "post")] == {200, 400, 401, 403, 404, 409}


# -- the staff page ------------------------------------------------------------------------------

def browser(app, username):
    c = Client(app)
    return c, login(c, username)


def test_page_lists_what_needs_attention_escaped(db, app):
    w = setup(db)
    c, token = browser(app, "staff1")
    r = c.get(PAGE, headers=HTML)
    assert r.status == 200 and r.header("Content-Type").startswith("text/html"), r
    text = r.text
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert f'href="/payment.php?uuid={w.order}"' in text
    assert "0.0025 ETH" in text and "0.0475 ETH" in text and market.ADDR_C in text
    assert "1234500 base units" in text and UNKNOWN_TOKEN in text and "wrong_asset" in text
    assert f'id="leg-{w.leg}"' in text and f'id="leg-{w.first_leg}"' not in text
    forms = re.findall(r'<form method="post".*?</form>', text, re.S)
    assert forms and all(f'name="csrf_token" value="{token}"' in f for f in forms)
    forms = [f for f in forms if 'action="/staff/payouts.php"' in f]
    kinds = [re.search(r'name="action" value="(\w+)"', f).group(1) for f in forms]
    assert sorted(kinds) == ["abandon", "redirect", "rescue", "retry"]          # one failed leg, one rescuable flag
    redirect_form = next(f for f in forms if 'value="redirect"' in f)
    assert f'name="payout_id" value="{w.leg}"' in redirect_form
    assert 'aria-current="page"' in text and 'href="/staff/payouts.php"' in text
    from tests.test_pages import _Controls
    assert _Controls(text).unlabelled == []
    # customers, vendors: 403; anonymous: to the login form
    for name in ("buyer1", "vendor1"):
        assert browser(app, name)[0].get(PAGE, headers=HTML).status == 403
    r = Client(app).get(PAGE, headers=HTML)
    assert r.status == 303 and r.header("Location").startswith("/login.php?next=")


def test_page_forms_work_with_csrf(db, app):
    w = setup(db)
    c, token = browser(app, "staff1")
    before = snapshot(db)
    assert c.post(PAGE, data={"action": "retry", "intent_uuid": w.intent}, headers=HTML).status == 403
    assert c.post(PAGE, data={"action": "retry", "intent_uuid": w.intent, "csrf_token": "0" * 64},
                  headers=HTML).status == 403
    r = c.post(PAGE, data={"action": "redirect", "intent_uuid": w.intent, "payout_id": str(w.leg),
                           "to_address": market.NO_CHECKSUM, "csrf_token": token}, headers=HTML)
    assert r.status == 400 and "to_address" in r.text and "<script>alert" not in r.text
    r = c.post(PAGE, data={"action": "abandon", "intent_uuid": w.intent, "comment": SCRIPT + "\nsecond line",
                           "csrf_token": token}, headers=HTML)
    assert r.status == 400 and "<script>alert" not in r.text
    assert snapshot(db) == before
    r = c.post(PAGE, data={"action": "redirect", "intent_uuid": w.intent, "payout_id": str(w.leg),
                           "to_address": market.ADDR_B, "csrf_token": token}, headers=HTML)
    assert r.status == 303 and r.header("Location") == PAGE
    assert db.value("SELECT redirect_to FROM payouts WHERE id = ?", (w.leg,)) == market.ADDR_B
    text = c.get(PAGE, headers=HTML).text
    assert "Redirect saved" in text and "No payout needs attention." in text
    r = c.post(PAGE, data={"action": "rescue", "flag_id": str(w.wrong_flag), "csrf_token": token}, headers=HTML)
    assert r.status == 303
    text = c.get(PAGE, headers=HTML).text
    assert "Rescue queued" in text and "in progress" in text
    assert db.value("SELECT COUNT(*) FROM transaction_intents WHERE action = 'RESCUE' AND status = 'pending'") == 1
    # the retry and abandon forms
    again = attention_intent(db, market.order(db, w, "COMPLETED"))
    assert c.post(PAGE, data={"action": "retry", "intent_uuid": again, "csrf_token": token},
                  headers=HTML).status == 303
    assert db.value("SELECT status FROM transaction_intents WHERE uuid = ?", (again,)) == "pending"
    third = market.order(db, w, "COMPLETED")
    last = attention_intent(db, third)
    payout(db, last, third, "vendor", "failed", 1000)
    assert c.post(PAGE, data={"action": "abandon", "intent_uuid": last, "comment": "paid by hand",
                              "csrf_token": token}, headers=HTML).status == 303
    assert db.value("SELECT status FROM transaction_intents WHERE uuid = ?", (last,)) == "processing"
    assert "settled off-platform" in c.get(PAGE, headers=HTML).text


def test_page_shows_no_buttons_to_a_party(db, app):
    w = setup(db)
    db.insert("store_users", {"store_uuid": w.store["uuid"], "user_uuid": w.staff["uuid"], "role": "manager",
                              "created_at": utc_now()})
    c, token = browser(app, "staff1")
    text = c.get(PAGE, headers=HTML).text
    assert "another staff member or an admin decides" in text
    section = text[text.index(f'id="intent-{w.intent}"'):]
    section = section[:section.index("</section>")]
    assert "<form" not in section
    r = c.post(PAGE, data={"action": "retry", "intent_uuid": w.intent, "csrf_token": token}, headers=HTML)
    assert r.status == 403


def test_dashboard_links_the_page_and_shows_chain_figures(db, app):
    w = setup(db)
    chain_head(db, base_fee="150000000000", confirmations="finalized")
    payout(db, None, w.order, "escrow", "broadcast", 1000, kind="gas", replacements=1)
    c, _ = browser(app, "admin1")
    r = c.get("/staff/", headers=HTML)
    assert r.status == 200, r
    text = r.text
    assert 'href="/staff/payouts.php"' in text and 'id="payouts-attention">1<' in text
    assert 'id="chain-1"' in text and STATION in text and "0.04 ETH" in text and "finalized" in text
    assert "chain 1: gas station balance below 0.05 ETH" in text
    assert "chain 1: base fee above the max fee ceiling; payouts wait" in text
    assert "<script>alert" not in text
