"""Cron against anvil: payments watched at depth, releases, refunds and partial refunds
paid on chain to the wei (SPEC sections 6 and 7). Every test runs on SQLite and MariaDB."""
from fractions import Fraction

import pytest

from lib import intents
from lib import status_machine as sm
from tests.chain import fresh_address
from tests.cron_support import (Parties, assert_native_escrow_emptied, escrow, fees, intent_row, make_order,
                                paid_fees, paid_order, payout_rows, retained, run_cron, settle, status, wallet,
                                cron_env)

ETH = 10 ** 18


@pytest.fixture
def env(anvil, tmp_path):
    return cron_env(anvil.url, tmp_path)


def shares_release(balance, c=Fraction(1, 5), rp=Fraction(1, 2)):
    commission = balance * c.numerator // c.denominator
    referrer = commission * rp.numerator // rp.denominator
    return balance - commission, referrer, commission - referrer


def test_eth_order_paid_confirmed_and_released_to_the_wei(anvil, db, env):
    p = Parties(db)
    amount = ETH + 123456789
    uuid = make_order(db, p.buyer, p.store, amount, refund=p.refund)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    addr = escrow(db, uuid)
    idx = db.value("SELECT derivation_index FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))
    assert addr == wallet().escrow_address(int(idx))
    assert status(db, uuid) == sm.PENDING
    row = db.one("SELECT block_number FROM chain_heads WHERE chain_id = 31337")
    assert row and row["block_number"] == anvil.block_number()

    anvil.send_eth(1, addr, amount)           # mined in one block: 1 confirmation of 3
    run_cron(env, db)
    assert status(db, uuid) == sm.PENDING
    anvil.mine(1)                              # 2 confirmations
    run_cron(env, db)
    assert status(db, uuid) == sm.PENDING
    anvil.mine(1)                              # 3 confirmations
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert status(db, uuid) == sm.COMPLETED
    assert db.value("SELECT received_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,)) == str(amount)
    assert sm.current_shipping(db, uuid)["status"] == sm.DISPATCH_PENDING

    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    commission_wallet = env["COMMISSION_WALLET_DEV"]
    settle(anvil, env, db, uuid, sm.RELEASED)

    rows = payout_rows(db, uuid)
    assert sorted(r["recipient_role"] for r in rows) == ["commission", "referrer", "vendor"]
    assert all(r["status"] == "confirmed" for r in rows)
    vendor, referrer, commission = shares_release(amount)
    fee = fees(rows)
    gas_price = int(rows[0]["fee"]) // 21000
    assert fee == 3 * 21000 * gas_price
    assert anvil.balance(p.vendor_addr) == vendor
    assert anvil.balance(p.referrer_addr) == referrer
    assert anvil.balance(commission_wallet) == commission - fee
    assert_native_escrow_emptied(anvil, db, uuid, addr)     # only the uncharged fee headroom is left
    assert all(r["tx_type"] == 2 for r in rows)
    # receipts, referral payment, status row linked to the vendor's receipt
    receipts = db.query("SELECT * FROM payment_receipts WHERE transaction_uuid = ? ORDER BY id", (uuid,))
    assert {r["uuid"] for r in receipts} == {r["tx_hash"] for r in rows}
    ref = db.one("SELECT * FROM referral_payments WHERE transaction_uuid = ?", (uuid,))
    assert ref["referrer_uuid"] == p.referrer["uuid"] and int(ref["amount"]) == referrer
    final = sm.current_status(db, uuid)
    vendor_tx = next(r["tx_hash"] for r in rows if r["recipient_role"] == "vendor")
    assert final["status"] == sm.RELEASED and final["payment_receipt_uuid"] == vendor_tx
    assert int(final["amount"]) == amount - fee
    assert intent_row(db, uuid)["status"] == "completed"
    # A further run changes nothing and pays nobody again.
    anvil.mine(3)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert anvil.balance(p.vendor_addr) == vendor
    assert len(payout_rows(db, uuid)) == 3


def test_partial_payments_then_completed_within_tolerance(anvil, db, env):
    p = Parties(db)
    required = 2 * ETH
    uuid = make_order(db, p.buyer, p.store, required, refund=p.refund)
    run_cron(env, db)
    addr = escrow(db, uuid)
    anvil.send_eth(1, addr, ETH // 2)
    anvil.mine(3)
    run_cron(env, db)
    assert status(db, uuid) == sm.PENDING
    hist = sm.history(db, uuid)
    assert [h["status"] for h in hist] == ["PENDING", "PENDING"]
    assert hist[-1]["amount"] == str(ETH // 2)
    run_cron(env, db)                          # no change: no new row
    assert len(sm.history(db, uuid)) == 2
    # 95% exactly is enough with completion_tolerance 0.05; one wei less is not.
    anvil.send_eth(1, addr, required * 95 // 100 - ETH // 2 - 1)
    anvil.mine(3)
    run_cron(env, db)
    assert status(db, uuid) == sm.PENDING
    assert len(sm.history(db, uuid)) == 3
    anvil.send_eth(1, addr, 1)
    anvil.mine(3)
    run_cron(env, db)
    assert status(db, uuid) == sm.COMPLETED
    assert sm.current_status(db, uuid)["amount"] == str(required * 95 // 100)


def test_cancel_refunds_the_buyer_minus_the_fee(anvil, db, env):
    p = Parties(db)
    amount = 3 * ETH // 7
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intents.open_intent(db, uuid, sm.CANCEL, p.vendor["uuid"])
    settle(anvil, env, db, uuid, sm.CANCELLED)
    rows = payout_rows(db, uuid)
    assert [r["recipient_role"] for r in rows] == ["buyer"]
    assert anvil.balance(p.refund_addr) == amount - fees(rows)
    assert_native_escrow_emptied(anvil, db, uuid, addr)
    assert anvil.balance(p.vendor_addr) == 0
    final = sm.current_status(db, uuid)
    assert final["payment_receipt_uuid"] == rows[0]["tx_hash"]


def test_buyer_cancel_of_unpaid_order_moves_nothing(anvil, db, env):
    p = Parties(db)
    uuid = make_order(db, p.buyer, p.store, ETH, refund=p.refund)
    run_cron(env, db)
    intents.open_intent(db, uuid, sm.CANCEL, p.buyer["uuid"])
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert status(db, uuid) == sm.CANCELLED
    assert payout_rows(db, uuid) == []
    assert intent_row(db, uuid)["status"] == "completed"


def test_partial_refund_splits_resolver_buyer_vendor(anvil, db, env):
    from tests.cron_support import make_user
    p = Parties(db)
    resolver_addr = fresh_address()
    staff = make_user(db, "staff1", role="staff", payout=resolver_addr)
    amount = ETH + 7
    uuid, addr = paid_order(anvil, db, env, p, amount)
    sm.append_status(db, uuid, sm.FROZEN, str(amount), comment="dispute")
    db.insert("disputes", {"uuid": "d-" + uuid[:30], "transaction_uuid": uuid, "opened_by": p.buyer["uuid"],
                           "status": "open", "created_at": "2024-01-01 00:00:00"})
    intents.open_intent(db, uuid, sm.PARTIAL_REFUND, staff["uuid"], refund_percent=30)
    settle(anvil, env, db, uuid, sm.CANCELLED)
    rows = payout_rows(db, uuid)
    resolver = amount // 10
    buyer = (amount - resolver) * 30 // 100
    vendor = amount - resolver - buyer
    fee = fees(rows)
    assert anvil.balance(resolver_addr) == resolver
    assert anvil.balance(p.refund_addr) == buyer - fee      # the refunded amount bears the fee
    assert anvil.balance(p.vendor_addr) == vendor
    assert_native_escrow_emptied(anvil, db, uuid, addr)
    assert "partial refund" in sm.current_status(db, uuid)["comment"]


def test_release_without_vendor_payout_address_fails_then_retries(anvil, db, env):
    p = Parties(db, vendor_payout=False)
    amount = ETH // 3
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intent = intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    row = intent_row(db, uuid)
    assert row["status"] == "failed" and row["error"] == "vendor has no payout address"
    assert payout_rows(db, uuid) == [] and anvil.balance(addr) == amount
    assert status(db, uuid) == sm.COMPLETED
    # The owner's own payout address is the fallback; then the buyer asks again.
    db.execute("UPDATE users SET payout_address = ? WHERE uuid = ?", (p.vendor_addr, p.vendor["uuid"]))
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    settle(anvil, env, db, uuid, sm.RELEASED)
    vendor, referrer, _ = shares_release(amount)
    assert anvil.balance(p.vendor_addr) == vendor
    assert anvil.balance(p.referrer_addr) == referrer


def test_release_without_commission_wallet_pays_nobody(anvil, db, env):
    p = Parties(db)
    amount = ETH // 5
    uuid, addr = paid_order(anvil, db, env, p, amount)
    env = dict(env)
    env.pop("COMMISSION_WALLET_DEV")
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    run_cron(env, db)
    row = intent_row(db, uuid)
    assert row["status"] == "failed"
    assert "no commission wallet for chain 31337" in row["error"]
    assert anvil.balance(addr) == amount and anvil.balance(p.vendor_addr) == 0


def test_referrer_without_payout_address_leaves_share_to_commission(anvil, db, env):
    p = Parties(db, tier="gold", referrer_payout=False)
    amount = ETH
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    settle(anvil, env, db, uuid, sm.RELEASED)
    rows = payout_rows(db, uuid)
    assert sorted(r["recipient_role"] for r in rows) == ["commission", "vendor"]
    commission = amount * 2 // 100           # gold: 0.02
    assert anvil.balance(p.vendor_addr) == amount - commission
    assert anvil.balance(env["COMMISSION_WALLET_DEV"]) == commission - fees(rows)
    assert db.query("SELECT * FROM referral_payments") == []


def test_erc20_release_with_gas_station_top_up(anvil, db, env):
    token = anvil.deploy_token(symbol="TUSD", decimals=6)
    anvil.mine(3)
    station = wallet().gas_station_address()
    anvil.send_eth(2, station, ETH)
    station_before = anvil.balance(station)
    p = Parties(db)
    amount = 1234567891
    uuid, addr = paid_order(anvil, db, env, p, amount, token=token, decimals=6, currency="TUSD")
    assert anvil.balance(addr) == 0
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    settle(anvil, env, db, uuid, sm.RELEASED)
    rows = payout_rows(db, uuid)
    gas = [r for r in rows if r["kind"] == "gas"]
    legs = [r for r in rows if r["kind"] == "payout"]
    assert len(gas) == 1 and gas[0]["from_address"] == station and gas[0]["to_address"] == addr
    assert int(gas[0]["amount"]) == sum(int(r["fee"]) for r in legs)     # exactly the legs' gas
    vendor, referrer, commission = shares_release(amount)
    assert anvil.token_balance(token, p.vendor_addr) == vendor
    assert anvil.token_balance(token, p.referrer_addr) == referrer
    assert anvil.token_balance(token, env["COMMISSION_WALLET_DEV"]) == commission
    assert anvil.token_balance(token, addr) == 0
    # The station paid the top-up and its own transfer fee, nothing more.
    assert station_before - anvil.balance(station) == int(gas[0]["amount"]) + paid_fees(gas)
    # What the escrow keeps is the part of the reserved gas the network did not charge,
    # recorded as the gas station's (retained_native), so it is never taken for the buyer's.
    for r in legs:
        receipt = anvil.rpc("eth_getTransactionReceipt", r["tx_hash"])
        assert int(receipt["gasUsed"], 16) == r["gas_used"] and int(receipt["effectiveGasPrice"], 16) == int(
            r["effective_gas_price"])
    assert anvil.balance(addr) == int(gas[0]["amount"]) - paid_fees(legs) == retained(db, uuid)[1]
    assert {r["uuid"] for r in db.query("SELECT uuid FROM payment_receipts WHERE transaction_uuid = ?", (uuid,))} \
        == {r["tx_hash"] for r in legs}


def test_erc20_payout_refused_when_gas_station_is_empty(anvil, db, env):
    token = anvil.deploy_token(symbol="TUSD", decimals=6)
    anvil.mine(3)
    p = Parties(db)
    amount = 5000000
    uuid, addr = paid_order(anvil, db, env, p, amount, token=token, decimals=6, currency="TUSD")
    station = wallet().gas_station_address()
    anvil.set_balance(station, 0)
    intents.open_intent(db, uuid, sm.CANCEL, p.vendor["uuid"])
    run_cron(env, db)
    row = intent_row(db, uuid)
    assert row["status"] == "failed" and "gas station" in row["error"] and "fund it" in row["error"]
    assert anvil.token_balance(token, addr) == amount
    anvil.set_balance(station, ETH)
    intents.open_intent(db, uuid, sm.CANCEL, p.vendor["uuid"])
    settle(anvil, env, db, uuid, sm.CANCELLED)
    assert anvil.token_balance(token, p.refund_addr) == amount


def test_erc20_payment_is_read_by_balance_of_at_confirmation_depth(anvil, db, env):
    token = anvil.deploy_token(symbol="TUSD", decimals=6)
    anvil.mine(3)
    p = Parties(db)
    required = 25 * 10 ** 6
    uuid = make_order(db, p.buyer, p.store, required, currency="TUSD", token=token, decimals=6, refund=p.refund)
    assert run_cron(env, db)["ok"]
    addr = escrow(db, uuid)
    anvil.token_transfer(token, 0, addr, required // 2)    # partial, 1 confirmation of 3
    anvil.mine(2)                                            # 3 confirmations
    run_cron(env, db)
    assert status(db, uuid) == sm.PENDING and sm.current_status(db, uuid)["amount"] == str(required // 2)
    anvil.token_transfer(token, 0, addr, required - required // 2)
    run_cron(env, db)
    assert status(db, uuid) == sm.PENDING                   # 1 confirmation
    anvil.mine(1)
    run_cron(env, db)
    assert status(db, uuid) == sm.PENDING                   # 2 confirmations
    anvil.mine(1)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert status(db, uuid) == sm.COMPLETED
    assert db.value("SELECT received_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,)) == str(required)
    assert [h["status"] for h in sm.history(db, uuid)] == ["PENDING", "PENDING", "COMPLETED"]
