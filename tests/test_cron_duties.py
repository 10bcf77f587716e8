"""Cron duties beyond a single payout: expiry, dispatch timeouts and auto-release, late
payments, deposits, prices and token verification, the cron_runs record (SPEC section 6)."""
import json
import uuid as uuidlib

import pytest

from lib import intents
from lib import status_machine as sm
from lib.db import utc_now
from tests.chain import fresh_address
from tests.cron_support import (assert_native_escrow_emptied, paid_fees, retained, HOUR, Parties, cron_subprocess, escrow, fees, intent_row, make_order,
                                make_store, make_user, paid_order, payout_rows, run_cron, settle, status, wallet,
                                backdate)
from tests.fake_rpc import FakePrices

ETH = 10 ** 18


def order_with_escrow(db, env):
    """The parties and their ETH order, with the escrow address cron's first run gave it."""
    p = Parties(db)
    uuid = make_order(db, p.buyer, p.store, ETH, refund=p.refund)
    run_cron(env, db)
    return p, uuid


def pay_and_run_cron(anvil, db, env, addr, wei):
    """Send `wei` to `addr`, then three cron runs (each without an error) with blocks between."""
    anvil.send_eth(1, addr, wei)
    anvil.mine(3)
    cron_rounds(anvil, db, env)


def cron_rounds(anvil, db, env, rounds=3):
    """`rounds` cron runs, each without an error, with blocks mined after each."""
    for _ in range(rounds):
        r = run_cron(env, db)
        assert r["ok"], r["errors"]
        anvil.mine(3)


def test_unpaid_order_fails_after_pending_duration(anvil, db, env):
    p, uuid = order_with_escrow(db, env)
    backdate(db, uuid, 23 * HOUR)
    run_cron(env, db)
    assert status(db, uuid) == sm.PENDING
    backdate(db, uuid, 2 * HOUR)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert status(db, uuid) == sm.FAILED
    assert r["counts"]["expire"]["failed"] == 1


def test_partly_paid_order_is_refunded_after_pending_duration(anvil, db, env):
    p, uuid = order_with_escrow(db, env)
    addr = escrow(db, uuid)
    part = ETH // 4
    anvil.send_eth(1, addr, part)
    anvil.mine(3)
    run_cron(env, db)
    backdate(db, uuid, 25 * HOUR)
    settle(anvil, env, db, uuid, sm.CANCELLED)
    rows = payout_rows(db, uuid)
    assert intent_row(db, uuid)["action"] == "CANCEL" and intent_row(db, uuid)["requested_by"] is None
    assert anvil.balance(p.refund_addr) == part - fees(rows)
    assert_native_escrow_emptied(anvil, db, uuid, addr)


def test_expiry_waits_when_the_balance_could_not_be_read(anvil, db, env):
    p, uuid = order_with_escrow(db, env)
    backdate(db, uuid, 25 * HOUR)
    broken = dict(env, RPC_URL_31337="http://127.0.0.1:9")     # nothing listens there
    r = run_cron(broken, db)
    assert not r["ok"] and any(e.startswith("poll: chain 31337") for e in r["errors"])
    assert status(db, uuid) == sm.PENDING                       # not FAILED on a stale balance


def test_not_dispatched_in_time_is_frozen(anvil, db, env):
    p = Parties(db)
    uuid, _ = paid_order(anvil, db, env, p, ETH // 10)
    backdate(db, uuid, 71 * HOUR)
    run_cron(env, db)
    assert status(db, uuid) == sm.COMPLETED
    backdate(db, uuid, 2 * HOUR)
    r = run_cron(env, db)
    assert status(db, uuid) == sm.FROZEN
    assert "dispatch" in sm.current_status(db, uuid)["comment"]
    assert r["counts"]["timeouts"]["frozen"] == 1


def test_dispatched_order_is_released_after_completed_duration(anvil, db, env):
    p = Parties(db)
    amount = ETH // 10
    uuid, addr = paid_order(anvil, db, env, p, amount)
    sm.append_shipping(db, uuid, sm.DISPATCHED, p.vendor["uuid"])
    backdate(db, uuid, 335 * HOUR)
    run_cron(env, db)
    assert intent_row(db, uuid) is None
    backdate(db, uuid, 2 * HOUR)
    settle(anvil, env, db, uuid, sm.RELEASED)
    assert intent_row(db, uuid)["requested_by"] is None
    assert anvil.balance(p.vendor_addr) == amount - amount // 5


def test_disputed_order_is_not_auto_released_but_frozen_when_stuck(anvil, db, env):
    p = Parties(db)
    uuid, _ = paid_order(anvil, db, env, p, ETH // 10)
    sm.append_shipping(db, uuid, sm.DISPATCHED, p.vendor["uuid"])
    db.insert("disputes", {"uuid": str(uuidlib.uuid4()), "transaction_uuid": uuid, "opened_by": p.buyer["uuid"],
                           "status": "open", "created_at": utc_now()})
    backdate(db, uuid, 400 * HOUR)
    run_cron(env, db)
    assert intent_row(db, uuid) is None and status(db, uuid) == sm.COMPLETED
    backdate(db, uuid, 400 * HOUR)
    run_cron(env, db)
    assert status(db, uuid) == sm.FROZEN
    assert "stuck" in sm.current_status(db, uuid)["comment"]


def test_late_payment_to_failed_order_is_refunded(anvil, db, env):
    p, uuid = order_with_escrow(db, env)
    backdate(db, uuid, 25 * HOUR)
    run_cron(env, db)
    assert status(db, uuid) == sm.FAILED
    addr = escrow(db, uuid)
    late = ETH // 3
    pay_and_run_cron(anvil, db, env, addr, late)
    rows = payout_rows(db, uuid)
    assert [r["recipient_role"] for r in rows] == ["buyer"]
    assert anvil.balance(p.refund_addr) == late - fees(rows)
    assert_native_escrow_emptied(anvil, db, uuid, addr)
    assert status(db, uuid) == sm.FAILED                       # the final status stays
    assert intent_row(db, uuid)["action"] == "LATE_REFUND" and intent_row(db, uuid)["status"] == "completed"
    assert db.value("SELECT COUNT(*) FROM payment_receipts WHERE transaction_uuid = ?", (uuid,)) == 1


@pytest.mark.parametrize("final", [sm.RELEASED, sm.CANCELLED])
def test_late_payment_after_release_or_cancel_is_refunded(anvil, db, env, final):
    p = Parties(db)
    amount = ETH // 10
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intents.open_intent(db, uuid, sm.RELEASE if final == sm.RELEASED else sm.CANCEL, p.vendor["uuid"]
                   if final == sm.CANCELLED else p.buyer["uuid"])
    settle(anvil, env, db, uuid, final)
    assert_native_escrow_emptied(anvil, db, uuid, addr)
    refund_before = anvil.balance(p.refund_addr)
    vendor_before = anvil.balance(p.vendor_addr)
    first = len(payout_rows(db, uuid))
    late = ETH // 20 + 11
    pay_and_run_cron(anvil, db, env, addr, late)
    rows = payout_rows(db, uuid)[first:]
    assert [x["recipient_role"] for x in rows] == ["buyer"] and rows[0]["status"] == "confirmed"
    assert anvil.balance(p.refund_addr) - refund_before == late - fees(rows)
    assert anvil.balance(p.vendor_addr) == vendor_before      # nobody else is paid again
    assert_native_escrow_emptied(anvil, db, uuid, addr)
    assert status(db, uuid) == final                           # the final status stays
    assert [h["status"] for h in sm.history(db, uuid)].count(final) == 1
    assert intent_row(db, uuid)["action"] == "LATE_REFUND" and intent_row(db, uuid)["status"] == "completed"
    assert db.value("SELECT COUNT(*) FROM payment_receipts WHERE uuid = ?", (rows[0]["tx_hash"],)) == 1


def test_late_payment_without_refund_address_is_flagged_once(anvil, db, env):
    p = Parties(db, refund=False)
    amount = ETH // 10
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    settle(anvil, env, db, uuid, sm.RELEASED)
    anvil.send_eth(1, addr, ETH // 50)
    anvil.mine(3)
    run_cron(env, db)
    run_cron(env, db)
    flags = db.query("SELECT * FROM staff_flags WHERE transaction_uuid = ?", (uuid,))
    assert len(flags) == 1 and flags[0]["amount"] == str(ETH // 50)
    assert "no refund address" in flags[0]["reason"]
    assert anvil.balance(addr) == ETH // 50 + retained(db, uuid)[0]     # nothing was sent anywhere


def store_deposit(db, username, currency="ETH", token="", decimals=18, opened_by_vendor=False):
    """A vendor whose store pays out to a fresh address, and a deposit of that store (no
    address yet). Returns (vendor, payout address, deposit uuid)."""
    vendor_addr = fresh_address()
    vendor = make_user(db, username, role="vendor")
    store = make_store(db, vendor, payout=vendor_addr)
    dep_uuid = str(uuidlib.uuid4())
    now = utc_now()
    db.insert("deposits", {"uuid": dep_uuid, "store_uuid": store["uuid"], "chain_id": 31337, "currency": currency,
                           "token_contract": token, "decimals": decimals, "created_at": now, "updated_at": now,
                           "created_by": vendor["uuid"] if opened_by_vendor else None})
    return vendor, vendor_addr, dep_uuid


def ask_withdrawal(db, dep_uuid, to_address, requested_by=None):
    """A withdrawal of the whole deposit to `to_address`, as the deposit page asks for one."""
    now = utc_now()
    db.insert("deposit_withdraw_intents", {"uuid": str(uuidlib.uuid4()), "deposit_uuid": dep_uuid,
                                           "to_address": to_address, "status": "pending", "open_key": dep_uuid,
                                           "requested_by": requested_by, "created_at": now, "updated_at": now})


def test_deposit_address_balance_and_withdrawal(anvil, db, env):
    vendor, vendor_addr, dep_uuid = store_deposit(db, "dvendor", opened_by_vendor=True)
    run_cron(env, db)
    dep = db.one("SELECT * FROM deposits WHERE uuid = ?", (dep_uuid,))
    from cron.escrow import derivation_index
    assert int(dep["derivation_index"]) == derivation_index(dep_uuid)
    assert dep["address"] == wallet().deposit_address(int(dep["derivation_index"]))
    assert dep["address"] != wallet().escrow_address(int(dep["derivation_index"]))
    amount = ETH // 2 + 5
    anvil.send_eth(1, dep["address"], amount)
    anvil.mine(3)
    run_cron(env, db)
    assert db.value("SELECT balance FROM deposits WHERE uuid = ?", (dep_uuid,)) == str(amount)
    events = [h["event"] for h in db.query("SELECT event FROM deposit_history WHERE deposit_uuid = ? ORDER BY id",
                                           (dep_uuid,))]
    assert events == ["address", "balance"]
    ask_withdrawal(db, dep_uuid, vendor_addr, requested_by=vendor["uuid"])
    cron_rounds(anvil, db, env)
    rows = db.query("SELECT * FROM payouts WHERE deposit_uuid = ?", (dep_uuid,))
    assert len(rows) == 1 and rows[0]["status"] == "confirmed"
    assert anvil.balance(vendor_addr) == amount - int(rows[0]["fee"])
    # The fee headroom the network did not charge stays with the store's deposit.
    assert anvil.balance(dep["address"]) == int(rows[0]["fee"]) - paid_fees(rows)
    intent = db.one("SELECT * FROM deposit_withdraw_intents WHERE deposit_uuid = ?", (dep_uuid,))
    assert intent["status"] == "completed" and intent["open_key"] is None
    assert db.one("SELECT * FROM payment_receipts WHERE deposit_uuid = ?", (dep_uuid,))["uuid"] == rows[0]["tx_hash"]
    events = [h["event"] for h in db.query("SELECT event FROM deposit_history WHERE deposit_uuid = ? ORDER BY id",
                                           (dep_uuid,))]
    assert events == ["address", "balance", "withdrawn", "balance"]
    assert db.value("SELECT balance FROM deposits WHERE uuid = ?", (dep_uuid,)) == str(
        int(rows[0]["fee"]) - paid_fees(rows))


def _token(db, symbol, contract="", manual=None, chain=31337):
    now = utc_now()
    return db.insert("accepted_tokens", {"chain_id": chain, "symbol": symbol, "contract_address": contract,
                                         "manual_usd_price": manual, "created_at": now, "updated_at": now})


def test_prices_refresh_and_token_verification(anvil, db, env):
    good = anvil.deploy_token(symbol="TUSD", decimals=6)
    liar = anvil.deploy_token(symbol="XYZ", decimals=18)
    unpriced = anvil.deploy_token(symbol="NOPE", decimals=8)
    manual = anvil.deploy_token(symbol="MAN", decimals=2)
    ids = {"ETH": _token(db, "ETH"), "TUSD": _token(db, "TUSD", good), "LIAR": _token(db, "LIAR", liar),
           "NOPE": _token(db, "NOPE", unpriced), "EOA": _token(db, "EOA", fresh_address()),
           "MAN": _token(db, "MAN", manual, manual="0.5"), "ODD": _token(db, "ETH", chain=999)}
    prices = FakePrices(by_symbol={"ETH": "3012.55", "TUSD": "0.9998", "EOA": "1"})
    try:
        e = dict(env, ALCHEMY_PRICES_URL=prices.url)
        r = run_cron(e, db)
        assert r["ok"], r["errors"]
    finally:
        prices.stop()
    rows = {t["id"]: t for t in db.query("SELECT * FROM accepted_tokens")}
    assert rows[ids["ETH"]]["status"] == "active" and rows[ids["ETH"]]["decimals"] == 18
    assert rows[ids["TUSD"]]["status"] == "active" and rows[ids["TUSD"]]["decimals"] == 6
    assert rows[ids["MAN"]]["status"] == "active" and rows[ids["MAN"]]["decimals"] == 2
    assert rows[ids["LIAR"]]["status"] == "rejected" and "XYZ" in rows[ids["LIAR"]]["status_reason"]
    assert rows[ids["NOPE"]]["status"] == "rejected" and "no USD price" in rows[ids["NOPE"]]["status_reason"]
    assert rows[ids["EOA"]]["status"] == "rejected" and "not an ERC-20" in rows[ids["EOA"]]["status_reason"]
    assert rows[ids["ODD"]]["status"] == "rejected" and "not supported" in rows[ids["ODD"]]["status_reason"]
    got = {p["symbol"]: p["usd_price"] for p in db.query("SELECT * FROM prices WHERE chain_id = 31337")}
    assert got["ETH"] == "3012.55" and got["TUSD"] == "0.9998"
    assert "NOPE" not in got


def test_prices_api_down_keeps_tokens_unverified_and_records_the_error(anvil, db, env):
    token_id = _token(db, "ETH")
    prices = FakePrices(by_symbol={"ETH": "3000"})
    prices.fail = 503
    try:
        e = dict(env, ALCHEMY_PRICES_URL=prices.url)
        r = run_cron(e, db)
        assert not r["ok"] and any(x.startswith("prices: Prices API") for x in r["errors"])
        assert db.value("SELECT status FROM accepted_tokens WHERE id = ?", (token_id,)) == "unverified"
        prices.fail = None
        r = run_cron(e, db)
        assert r["ok"], r["errors"]
        assert db.value("SELECT status FROM accepted_tokens WHERE id = ?", (token_id,)) == "active"
    finally:
        prices.stop()


def test_cron_process_records_errors_and_exits_non_zero(anvil, db, env):
    p = Parties(db)
    make_order(db, p.buyer, p.store, ETH, refund=p.refund)
    bad = dict(env, RPC_URL_31337="http://127.0.0.1:9")
    proc = cron_subprocess(bad, db)
    assert proc.returncode == 1, proc.output
    assert "FAILED" in proc.output and "poll: chain 31337" in proc.output
    row = db.one("SELECT * FROM cron_runs ORDER BY id DESC LIMIT 1")
    assert row["ok"] == 0 and row["finished_at"]
    errors = json.loads(row["errors"])
    assert any(e.startswith("poll: chain 31337") for e in errors)
    assert "127.0.0.1:9/..." in " ".join(errors) or "connection" in " ".join(errors).lower()
    summary = json.loads(row["summary"])
    assert summary["escrow_addresses"]["assigned"] == 1       # the other duties still ran
    assert {"poll", "payouts", "prices"} <= set(summary["duty_ms"])   # each duty's time, for /metrics
    assert all(isinstance(ms, int) and ms >= 0 for ms in summary["duty_ms"].values())


def test_erc20_deposit_withdrawal_uses_the_gas_station(anvil, db, env):
    token = anvil.deploy_token(symbol="TUSD", decimals=6)
    anvil.mine(3)
    anvil.send_eth(5, wallet().gas_station_address(), ETH)
    _vendor, vendor_addr, dep_uuid = store_deposit(db, "tvendor", "TUSD", token, 6)
    run_cron(env, db)
    address = db.value("SELECT address FROM deposits WHERE uuid = ?", (dep_uuid,))
    anvil.token_transfer(token, 0, address, 4242)
    anvil.mine(3)
    run_cron(env, db)
    ask_withdrawal(db, dep_uuid, vendor_addr)
    cron_rounds(anvil, db, env)
    rows = db.query("SELECT * FROM payouts WHERE deposit_uuid = ? ORDER BY id", (dep_uuid,))
    assert [r["kind"] for r in rows] == ["gas", "payout"] and all(r["status"] == "confirmed" for r in rows)
    assert anvil.token_balance(token, vendor_addr) == 4242
    assert anvil.token_balance(token, address) == 0
    assert db.value("SELECT status FROM deposit_withdraw_intents WHERE deposit_uuid = ?", (dep_uuid,)) == "completed"


def test_escrow_index_collision_takes_the_next_free_index(anvil, db, env):
    """SPEC section 5: the index comes from the order uuid; when another order already holds
    it, the next free index is stored (UNIQUE), so no two orders share an escrow address."""
    from cron.escrow import derivation_index
    p = Parties(db)
    lone = make_order(db, p.buyer, p.store, ETH, refund=p.refund)
    run_cron(env, db)       # no collision: the stored index is the seed's scheme of the uuid itself
    assert int(db.value("SELECT derivation_index FROM evm_transactions WHERE transaction_uuid = ?", (lone,))) \
        == derivation_index(lone)
    first = make_order(db, p.buyer, p.store, ETH, refund=p.refund)
    second = make_order(db, p.buyer, p.store, ETH, refund=p.refund)
    taken = derivation_index(second)
    # The first order already sits on the second's index (as after a hash collision).
    db.execute("UPDATE evm_transactions SET derivation_index = ?, escrow_address = ? WHERE transaction_uuid = ?",
               (taken, wallet().escrow_address(taken), first))
    sm.append_status(db, first, sm.PENDING, "0")
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert r["counts"]["escrow_addresses"] == {"assigned": 1, "index_collisions": 1}
    idx = db.value("SELECT derivation_index FROM evm_transactions WHERE transaction_uuid = ?", (second,))
    assert int(idx) == (taken + 1) % 2 ** 31
    assert escrow(db, second) == wallet().escrow_address(int(idx)) != escrow(db, first)
    assert [h["status"] for h in sm.history(db, second)] == [sm.PENDING]


def test_prices_by_contract_address_and_verification_of_a_mainnet_token(anvil, db, env):
    """A token on a chain the Prices API knows (chain 1, served here by anvil) is priced by
    (network, contract address), verified by eth_call, and activated; one the API does not
    price is rejected."""
    priced = anvil.deploy_token(symbol="USDX", decimals=6)
    unpriced = anvil.deploy_token(symbol="NOPX", decimals=6)
    ids = {"USDX": _token(db, "USDX", priced, chain=1), "NOPX": _token(db, "NOPX", unpriced, chain=1)}
    prices = FakePrices(by_address={("eth-mainnet", priced.lower()): "1.0002"})
    try:
        e = dict(env, ALCHEMY_PRICES_URL=prices.url, RPC_URL_1=anvil.url)
        r = run_cron(e, db)
        assert r["ok"], r["errors"]
        assert any("/tokens/by-address" in path for path in prices.requests), prices.requests
    finally:
        prices.stop()
    row = db.one("SELECT * FROM prices WHERE chain_id = 1 AND symbol = 'USDX'")
    assert row["usd_price"] == "1.0002" and row["contract_address"].lower() == priced.lower()
    assert db.one("SELECT * FROM prices WHERE chain_id = 1 AND symbol = 'NOPX'") is None
    tokens = {t["id"]: t for t in db.query("SELECT * FROM accepted_tokens")}
    assert tokens[ids["USDX"]]["status"] == "active" and tokens[ids["USDX"]]["decimals"] == 6
    assert tokens[ids["NOPX"]]["status"] == "rejected" and "no USD price" in tokens[ids["NOPX"]]["status_reason"]


def test_loop_mode_repeats_runs_and_stops_on_sigterm(anvil, db, env):
    """`cron/cron.py --loop N` (what `make run` starts): a run every N seconds until SIGTERM."""
    import signal
    import time
    proc = cron_subprocess(env, db, wait=False, args=("--loop", "0.3"))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and db.value("SELECT COUNT(*) FROM cron_runs WHERE ok = 1") < 3:
            time.sleep(0.1)
        assert db.value("SELECT COUNT(*) FROM cron_runs WHERE ok = 1") >= 3
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "cron loop: a run every 0.3 s" in out and out.count("cron run ") >= 3
