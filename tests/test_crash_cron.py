"""Crash safety (SPEC section 7): cron killed with SIGKILL at each point of a payout and
run again pays every recipient exactly once; two cron processes pay once.

The hook: CRON_CRASH_AT=<point> in the cron process's environment (tests only).
"""
import signal
import time

import pytest

from lib import intents
from lib import status_machine as sm
from tests.cron_support import (assert_native_escrow_emptied, paid_fees, Parties, cron_env, cron_subprocess, fees, intent_row, paid_order, payout_rows,
                                run_cron, settle, status, wallet)

ETH = 10 ** 18


@pytest.fixture
def env(anvil, tmp_path):
    return cron_env(anvil.url, tmp_path)


def expected_release(amount):
    commission = amount // 5
    referrer = commission // 2
    return amount - commission, referrer, commission - referrer


def assert_paid_once(anvil, db, env, p, uuid, addr, amount):
    rows = payout_rows(db, uuid)
    assert len(rows) == 3, rows
    assert len({r["tx_hash"] for r in rows}) == 3
    vendor, referrer, commission = expected_release(amount)
    assert anvil.balance(p.vendor_addr) == vendor
    assert anvil.balance(p.referrer_addr) == referrer
    assert anvil.balance(env["COMMISSION_WALLET_DEV"]) == commission - fees(rows)
    assert_native_escrow_emptied(anvil, db, uuid, addr)
    assert anvil.nonce(addr, "latest") == 3          # exactly three transactions ever left the escrow
    assert status(db, uuid) == sm.RELEASED
    assert [h["status"] for h in sm.history(db, uuid)].count(sm.RELEASED) == 1
    assert db.value("SELECT COUNT(*) FROM payment_receipts WHERE transaction_uuid = ?", (uuid,)) == 3
    assert db.value("SELECT COUNT(*) FROM referral_payments WHERE transaction_uuid = ?", (uuid,)) == 1
    assert intent_row(db, uuid)["status"] == "completed"


@pytest.mark.parametrize("point", ["after_sign", "after_commit", "after_broadcast", "before_status"])
def test_sigkill_during_release_then_rerun_pays_each_recipient_once(anvil, db, env, point):
    p = Parties(db)
    amount = ETH + 99
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    if point == "before_status":
        run_cron(env, db)                  # signs and broadcasts; not yet deep enough
        anvil.mine(3)
    proc = cron_subprocess(env, db, {"CRON_CRASH_AT": point})
    assert proc.returncode == -signal.SIGKILL, proc.output
    rows = payout_rows(db, uuid)
    intent = intent_row(db, uuid)
    if point == "after_sign":
        # Killed inside the claim+store transaction: nothing persisted, nothing sent.
        assert rows == [] and intent["status"] == "pending"
        assert anvil.balance(addr) == amount
    elif point == "after_commit":
        assert [r["status"] for r in rows] == ["signed"] * 3 and intent["status"] == "processing"
        assert anvil.balance(addr) == amount
    elif point == "after_broadcast":
        # The node took the first leg; the database still says 'signed'.
        assert [r["status"] for r in rows] == ["signed"] * 3
        assert anvil.balance(addr) < amount
        assert anvil.nonce(addr, "latest") == 1
    else:
        assert [r["status"] for r in rows] == ["confirmed"] * 3
        assert status(db, uuid) == sm.COMPLETED and intent["status"] == "processing"
    settle(anvil, env, db, uuid, sm.RELEASED)
    assert_paid_once(anvil, db, env, p, uuid, addr, amount)
    if point != "after_sign":
        assert {r["tx_hash"] for r in payout_rows(db, uuid)} == {r["tx_hash"] for r in rows}   # same bytes


def test_sigkill_after_gas_top_up_of_erc20_escrow(anvil, db, env):
    token = anvil.deploy_token(symbol="TUSD", decimals=6)
    anvil.mine(3)
    station = wallet().gas_station_address()
    anvil.send_eth(3, station, ETH)
    p = Parties(db)
    amount = 777000001
    uuid, addr = paid_order(anvil, db, env, p, amount, token=token, decimals=6, currency="TUSD")
    before = anvil.balance(station)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    proc = cron_subprocess(env, db, {"CRON_CRASH_AT": "after_gas"})
    assert proc.returncode == -signal.SIGKILL, proc.output
    assert anvil.token_balance(token, addr) == amount         # legs not sent yet
    settle(anvil, env, db, uuid, sm.RELEASED)
    rows = payout_rows(db, uuid)
    gas = [r for r in rows if r["kind"] == "gas"]
    assert len(gas) == 1 and len(rows) == 4
    assert before - anvil.balance(station) == int(gas[0]["amount"]) + paid_fees(gas)   # topped up once
    vendor, referrer, commission = expected_release(amount)
    assert anvil.token_balance(token, p.vendor_addr) == vendor
    assert anvil.token_balance(token, p.referrer_addr) == referrer
    assert anvil.token_balance(token, env["COMMISSION_WALLET_DEV"]) == commission
    assert anvil.token_balance(token, addr) == 0


def test_two_cron_processes_started_together_pay_once(anvil, db, env, tmp_path):
    """Two hosts: one takes the payouts lease and signs, the other skips the duty."""
    p = Parties(db)
    amount = 2 * ETH + 1
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    procs = []
    for _host in ("a", "b"):
        procs.append(cron_subprocess(env, db, {"CRON_TEST_PAUSE_BEFORE_CLAIM": "1.5"}, wait=False))
    outs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outs
    assert sum("signed 3 transaction(s)" in o for o in outs) == 1, outs     # one claim won
    settle(anvil, env, db, uuid, sm.RELEASED)
    assert_paid_once(anvil, db, env, p, uuid, addr, amount)
    assert intent_row(db, uuid)["attempts"] == 1


def test_a_run_skips_the_duties_another_process_holds(anvil, db, env):
    from cron import leases
    other = leases.Leases(db, "other-host:1", 60)
    assert other.acquire("payouts", 31337) and other.acquire("timeouts")
    try:
        t0 = time.monotonic()
        proc = cron_subprocess(env, db)
        assert proc.returncode == 0, proc.output
        assert "leased elsewhere: timeouts, payouts/31337, deposits/31337" in proc.output
        assert time.monotonic() - t0 < 30
        row = db.one("SELECT * FROM cron_runs ORDER BY id DESC LIMIT 1")
        assert row["ok"] == 1 and '"leased_elsewhere": {"duties": 3}' in row["summary"]
    finally:
        other.release_all()
    proc = cron_subprocess(env, db)
    assert proc.returncode == 0, proc.output
    assert "cron run" in proc.output and "ok" in proc.output and "leased elsewhere" not in proc.output
    row = db.one("SELECT * FROM cron_runs ORDER BY id DESC LIMIT 1")
    assert row["ok"] == 1 and row["finished_at"] and row["duration_ms"] is not None
