"""/health.php and the payout engine: per-chain counts, the gas station, warnings;
public, so no order ids and no amounts of orders; a few indexed queries. SQLite and MariaDB."""
import uuid as uuidlib

from lib import openapi, staff
from lib.db import utc_now
from tests import market
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)
from tests.test_openapi import check
from tests.test_payout_actions import SCRIPT, STATION, attention_intent, payout, staff_flag

MIN = "50000000000000000"          # 0.05 ETH


def head(db, chain_id, balance, minimum=MIN, base_fee="12000000000", ceiling="100000000000", block=19000000):
    db.insert("chain_heads", {"chain_id": chain_id, "block_number": block, "seen_at": "2026-01-01 00:00:00",
                              "gas_station_address": STATION, "gas_station_balance": balance,
                              "gas_station_min_balance": minimum, "base_fee_per_gas": base_fee,
                              "max_fee_ceiling": ceiling, "confirmations": "3"})


def busy_world(db):
    """Chain 1: a low gas station, payouts signed / broadcast / mined / replaced, a RELEASE that
    needs attention (one failed leg, retried once), a pending CANCEL held back by the fee
    ceiling, a withdrawal needing attention, open and resolved flags. Chain 8453: healthy."""
    w = market.world(db)
    market.add_token(db, 8453, "ETH")
    market.set_rate(db, 8453, "ETH", "2000")
    head(db, 1, "40000000000000000")
    head(db, 8453, "900000000000000000", block=123)
    stuck = market.order(db, w, "COMPLETED")
    intent = attention_intent(db, stuck, error="commission leg failed: " + SCRIPT)
    payout(db, intent, stuck, "vendor", "confirmed", 47500000000000000, block_hash="0x" + "b" * 64)
    first = payout(db, intent, stuck, "commission", "failed", 2500000000000000)
    payout(db, intent, stuck, "commission", "failed", 2500000000000000, retry_of=first)
    waiting = market.order(db, w, "COMPLETED")
    moving = attention_intent(db, waiting, status="processing", error="")
    db.execute("UPDATE transaction_intents SET error = NULL WHERE uuid = ?", (moving,))
    payout(db, moving, waiting, "vendor", "signed", 777000000000000001)
    payout(db, moving, waiting, "commission", "broadcast", 777000000000000002, replacements=2)
    payout(db, moving, waiting, "referrer", "broadcast", 777000000000000003, block_hash="0x" + "c" * 64)
    payout(db, None, waiting, "escrow", "broadcast", 5000, kind="gas")
    held = market.order(db, w, "PENDING")
    now = utc_now()
    db.insert("transaction_intents", {
        "uuid": str(uuidlib.uuid4()), "transaction_uuid": held, "action": "CANCEL", "status": "pending",
        "open_key": held, "requested_by": w.buyer["uuid"], "error": "network fee above the ceiling",
        "attempts": 0, "created_at": now, "updated_at": now, "failures": 0})
    from tests.test_payout_actions import withdrawal_needing_attention
    withdrawal_needing_attention(db, w)
    staff_flag(db, "leg_failed", "commission leg failed", stuck, intent, amount="2500000000000000",
               token_contract="")
    staff_flag(db, "wrong_asset", "USDT at an ETH escrow", stuck, amount="31337000", token_contract=market.USDC)
    staff_flag(db, "dust", "old dust", stuck, amount="1", token_contract="", resolved=True)
    base = market.order(db, w, "RELEASED", chain_id=8453)
    staff_flag(db, "late_funds", "late on base", base, amount="99", token_contract="", chain_id=8453)
    w.update(stuck=stuck, waiting=waiting, held=held, base=base, intent=intent)
    return w


def test_health_without_payouts_keeps_its_shape(client, db):
    body = client.get("/health.php").json()
    assert body["ok"] is True and body["database"] == "reachable" and body["chains"] == []
    assert body["payouts"] == {"totals": dict.fromkeys(staff.COUNTS, 0), "chains": []}
    assert body["warnings"] == []
    head(db, 1, "1000000000000000000")
    body = client.get("/health.php").json()
    assert body["chains"] == [{"chain_id": 1, "head_block": 19000000, "seen_at": "2026-01-01 00:00:00"}]
    (chain,) = body["payouts"]["chains"]
    assert chain["gas_station_address"] == STATION and chain["gas_station_balance"] == "1"
    assert chain["gas_station_low"] is False and body["warnings"] == []
    staff_flag(db, None, "an old flag of no order", chain_id=None, address=None)   # an older flag: no chain, no address
    body = client.get("/health.php").json()
    assert body["payouts"]["totals"]["open_flags"] == 1 and body["warnings"] == ["1 open staff flag"]


def test_health_shows_the_figures_and_warnings(client, db):
    w = busy_world(db)
    r = client.get("/health.php")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    body = r.json()
    assert body["payouts"]["totals"] == {
        "waiting": 4, "mined_waiting": 1, "replaced": 1, "failed_legs": 2, "intents_needing_attention": 2,
        "intents_pending_with_note": 1, "open_flags": 3}
    chains = {c["chain_id"]: c for c in body["payouts"]["chains"]}
    assert set(chains) == {1, 8453}
    one = chains[1]
    assert one["gas_station_address"] == STATION and one["gas_station_balance"] == "0.04"
    assert one["gas_station_min_balance"] == "0.05" and one["gas_station_low"] is True
    assert one["native_symbol"] == "ETH"
    assert (one["waiting"], one["mined_waiting"], one["replaced"], one["failed_legs"]) == (4, 1, 1, 2)
    assert (one["intents_needing_attention"], one["intents_pending_with_note"], one["open_flags"]) == (2, 1, 2)
    assert chains[8453]["gas_station_low"] is False and chains[8453]["open_flags"] == 1
    assert chains[8453]["waiting"] == 0
    assert body["warnings"] == [
        "chain 1: gas station balance below 0.05 ETH",
        "chain 1: 2 intents need staff attention",
        "chain 1: 1 pending intent is held back",
        "3 open staff flags",
    ]
    doc = openapi.document()
    schema = doc["paths"]["/health.php"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert check(schema, body, doc) == []


def test_health_tells_nothing_about_orders(client, db):
    w = busy_world(db)
    text = client.get("/health.php").text
    uuids = [w.stuck, w.waiting, w.held, w.base, w.intent] + [
        r["uuid"] for r in db.query("SELECT uuid FROM transaction_intents")] + [
        r["uuid"] for r in db.query("SELECT uuid FROM deposits")]
    for secret in uuids:
        assert secret not in text and secret[:8] not in text
    for amount in ("777000000000000001", "0.777000000000000001", "2500000000000000", "0.0025", "31337000",
                   "47500000000000000", "0.0475", "999979000000000000"):
        assert amount not in text, amount
    for leak in ("<script>", "alert(1)", "network fee above the ceiling", "USDT", market.ADDR_C, market.ADDR_D,
                 "raw_tx", "tx_hash", "0x" + "b" * 64):
        assert leak not in text, leak
    body = client.get("/health.php").json()
    assert "base_fee_gwei" not in body["payouts"]["chains"][0]


def test_fee_above_the_ceiling_is_a_warning(client, db):
    head(db, 137, "5000000000000000000", minimum="1000000000000000000", base_fee="600000000000",
         ceiling="500000000000")
    body = client.get("/health.php").json()
    assert body["warnings"] == ["chain 137: base fee above the max fee ceiling; payouts wait"]
    # junk or missing figures from cron are shown as unknown, never a 500
    db.execute("UPDATE chain_heads SET gas_station_balance = 'lots', gas_station_min_balance = NULL, "
               "base_fee_per_gas = NULL")
    r = client.get("/health.php")
    assert r.status == 200 and r.json()["warnings"] == []
    assert r.json()["payouts"]["chains"][0]["gas_station_balance"] is None


def test_health_stays_cheap(client, db, monkeypatch):
    """A handful of queries whatever the number of orders, legs and flags."""
    busy_world(db)
    client.get("/health.php")
    seen = []
    original = db._run

    def counting(sql, params=(), retry=True):
        seen.append(sql)
        return original(sql, params, retry)
    monkeypatch.setattr(db, "_run", counting)
    client.get("/health.php")
    health_queries = [q for q in seen if "api_key" not in q and "sessions" not in q]
    assert len(health_queries) <= 10, health_queries
