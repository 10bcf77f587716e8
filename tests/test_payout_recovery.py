"""Payouts on harsh chains, on anvil, SQLite and MariaDB: misbehaving tokens,
failed legs recovered by staff through POST /api/payout-actions.php, stuck transactions
replaced, reorganisations, fee ceilings, several RPC endpoints. Every recipient is paid
exactly once, checked on chain to the base unit."""
import pytest

from lib import intents
from lib import status_machine as sm
from tests.chain import fresh_address
from tests.cron_support import (HOUR, Parties, assert_native_escrow_emptied, backdate, cron_subprocess, escrow,
                                fees, intent_row, make_order, paid_order, payout_rows, run_cron, settle, status,
                                wallet)
from tests.factories import make_user

ETH = 10 ** 18


@pytest.fixture
def station(anvil):
    address = wallet().gas_station_address()
    anvil.set_balance(address, 10 * ETH)
    return address


@pytest.fixture
def manual_mining(anvil):
    anvil.rpc("evm_setAutomine", False)
    yield
    anvil.rpc("evm_setAutomine", True)
    anvil.mine(1)


def release_shares(amount):
    commission = amount // 5
    referrer = commission // 2
    return amount - commission, referrer, commission - referrer


def payout_action(client, staff, **body):
    return client.post("/api/payout-actions.php", json_body=body, headers=staff["headers"])


def legs_by_role(db, uuid):
    """The live legs of the order's newest intent, by role."""
    intent = intent_row(db, uuid)
    return {leg["recipient_role"]: leg for leg in intents.legs(db, intent["uuid"])}


def token_order(anvil, db, env, p, kind, amount):
    token = anvil.deploy_odd_token(kind, symbol="ODD", decimals=6) if kind else anvil.deploy_token(decimals=6)
    anvil.mine(3)
    uuid, addr = paid_order(anvil, db, env, p, amount, token=token, decimals=6, currency="ODD")
    return token, uuid, addr


def wait_for_nonce(anvil, address, nonce, seconds=20):
    """anvil's automine mines a sent transaction shortly after the send returns (and now
    and then leaves one ready in its pool): wait until `address` has sent `nonce` of them."""
    import time
    deadline = time.monotonic() + seconds
    while anvil.nonce(address, "latest") < nonce and time.monotonic() < deadline:
        anvil.unstick()
        time.sleep(0.05)
    assert anvil.nonce(address, "latest") == nonce


def run_and_mine(anvil, env, db, rounds=3):
    for _ in range(rounds):
        run_cron(env, db)
        anvil.mine(3)


# -- 1. ERC-20 outcomes are verified, not assumed -------------------------------------

def test_usdt_style_token_without_return_value_is_paid(anvil, db, env, station):
    p = Parties(db)
    amount = 123456789
    token, uuid, addr = token_order(anvil, db, env, p, "noreturn", amount)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    settle(anvil, env, db, uuid, sm.RELEASED)
    vendor, referrer, commission = release_shares(amount)
    assert anvil.token_balance(token, p.vendor_addr) == vendor
    assert anvil.token_balance(token, p.referrer_addr) == referrer
    assert anvil.token_balance(token, env["COMMISSION_WALLET_DEV"]) == commission
    assert all(r["delivered_amount"] == r["amount"] for r in payout_rows(db, uuid) if r["kind"] == "payout")


def test_token_answering_false_on_chain_is_a_failed_leg_then_retried(anvil, db, env, station, client):
    """Signed while the token worked, mined after it started answering false: the receipt
    says success but no Transfer log: the legs failed, the order is not RELEASED."""
    p = Parties(db)
    amount = 50000001
    token, uuid, addr = token_order(anvil, db, env, p, "false", amount)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    proc = cron_subprocess(env, db, {"CRON_CRASH_AT": "after_commit"})      # signed, nothing sent
    assert proc.returncode != 0 and len(payout_rows(db, uuid)) == 4
    anvil.token_admin(token, "setFail(bool)", True)
    run_and_mine(anvil, env, db)
    assert status(db, uuid) == sm.COMPLETED
    intent = intent_row(db, uuid)
    assert intent["status"] == "needs_attention" and "nothing moved" in intent["error"]
    legs = legs_by_role(db, uuid)
    assert {r: leg["status"] for r, leg in legs.items()} == {"vendor": "failed", "referrer": "failed",
                                                              "commission": "failed"}
    assert anvil.token_balance(token, addr) == amount
    assert db.value("SELECT COUNT(*) FROM payment_receipts WHERE transaction_uuid = ?", (uuid,)) == 0
    flags = db.query("SELECT kind FROM staff_flags WHERE intent_uuid = ? AND resolved_at IS NULL", (intent["uuid"],))
    assert flags and all(f["kind"] == "leg_failed" for f in flags)
    # Staff retry once the token works again: only the unpaid legs are re-signed.
    anvil.token_admin(token, "setFail(bool)", False)
    staff = make_user(db, "staff7", role="staff")
    r = payout_action(client, staff, intent_uuid=intent["uuid"], action="retry")
    assert r.status == 200, r.text
    settle(anvil, env, db, uuid, sm.RELEASED)
    vendor, referrer, commission = release_shares(amount)
    assert anvil.token_balance(token, p.vendor_addr) == vendor
    assert anvil.token_balance(token, p.referrer_addr) == referrer
    assert anvil.token_balance(token, env["COMMISSION_WALLET_DEV"]) == commission
    assert anvil.token_balance(token, addr) == 0
    retries = [r for r in payout_rows(db, uuid) if r["kind"] == "payout" and r["retry_of"] is not None]
    assert len(retries) == 3 and all(r["status"] == "confirmed" for r in retries)
    assert db.value("SELECT COUNT(*) FROM payment_receipts WHERE transaction_uuid = ?", (uuid,)) == 3


def test_fee_on_transfer_token_short_delivery_is_flagged_and_abandoned(anvil, db, env, station, client):
    p = Parties(db)
    amount = 10 ** 8
    token, uuid, addr = token_order(anvil, db, env, p, "fee", amount)
    # The buyer paid 1% less than sent (the token's fee), still within the tolerance.
    intents.open_intent(db, uuid, sm.CANCEL, p.vendor["uuid"])
    run_and_mine(anvil, env, db)
    intent = intent_row(db, uuid)
    assert intent["status"] == "needs_attention" and "fee-on-transfer" in intent["error"]
    leg = legs_by_role(db, uuid)["buyer"]
    paid_in = int(db.value("SELECT received_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,)))
    assert leg["status"] == "failed" and int(leg["amount"]) == paid_in
    assert int(leg["delivered_amount"]) == anvil.token_balance(token, p.refund_addr) == paid_in - paid_in // 100
    assert db.value("SELECT kind FROM staff_flags WHERE intent_uuid = ?", (intent["uuid"],)) == "short_delivery"
    assert status(db, uuid) == sm.COMPLETED
    staff = make_user(db, "staff8", role="staff")
    r = payout_action(client, staff, intent_uuid=intent["uuid"], action="retry")
    assert r.status == 200
    run_cron(env, db)
    assert intent_row(db, uuid)["status"] == "needs_attention"        # paying it again is refused
    r = payout_action(client, staff, intent_uuid=intent["uuid"], action="abandon",
                      comment="the buyer accepts the token's 1% fee")
    assert r.status == 200, r.text
    settle(anvil, env, db, uuid, sm.CANCELLED)
    final = sm.current_status(db, uuid)
    assert "settled off-platform" in final["comment"]
    assert anvil.token_balance(token, p.refund_addr) == paid_in - paid_in // 100    # paid once
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'payout_abandon'") == 1


# -- 2. A failed leg never freezes an order -------------------------------------------

def test_blacklisted_vendor_is_redirected_by_staff_and_paid_once(anvil, db, env, station, client):
    p = Parties(db)
    amount = 987654321
    token, uuid, addr = token_order(anvil, db, env, p, "blacklist", amount)
    anvil.token_admin(token, "blacklist(address)", p.vendor_addr)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    run_and_mine(anvil, env, db)
    vendor, referrer, commission = release_shares(amount)
    intent = intent_row(db, uuid)
    assert intent["status"] == "needs_attention" and "blacklisted" in intent["error"]
    legs = legs_by_role(db, uuid)
    assert legs["vendor"]["status"] == "failed" and legs["vendor"]["tx_hash"].startswith("unsent-")
    assert legs["referrer"]["status"] == legs["commission"]["status"] == "confirmed"
    assert anvil.token_balance(token, p.referrer_addr) == referrer          # the others are not held back
    assert anvil.token_balance(token, env["COMMISSION_WALLET_DEV"]) == commission
    assert anvil.token_balance(token, addr) == vendor
    assert status(db, uuid) == sm.COMPLETED
    # The vendor gives a new address; staff redirect the leg through the API.
    staff = make_user(db, "staff9", role="staff")
    new_vendor = fresh_address()
    bad = payout_action(client, staff, intent_uuid=intent["uuid"], action="redirect",
                        payout_id=str(legs["vendor"]["id"]), to_address=new_vendor.lower())
    assert bad.status == 400 and "to_address" in bad.json()["error"]
    r = payout_action(client, staff, intent_uuid=intent["uuid"], action="redirect",
                      payout_id=str(legs["vendor"]["id"]), to_address=new_vendor)
    assert r.status == 200, r.text
    settle(anvil, env, db, uuid, sm.RELEASED)
    assert anvil.token_balance(token, new_vendor) == vendor
    assert anvil.token_balance(token, p.vendor_addr) == 0
    assert anvil.token_balance(token, p.referrer_addr) == referrer           # untouched: paid once
    assert anvil.token_balance(token, env["COMMISSION_WALLET_DEV"]) == commission
    assert anvil.token_balance(token, addr) == 0
    final = sm.current_status(db, uuid)
    receipts = {r["uuid"] for r in db.query("SELECT uuid FROM payment_receipts WHERE transaction_uuid = ?", (uuid,))}
    assert len(receipts) == 3 and final["payment_receipt_uuid"] in receipts
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'payout_redirect'") == 1
    assert db.value("SELECT COUNT(*) FROM staff_flags WHERE transaction_uuid = ? AND resolved_at IS NULL",
                    (uuid,)) == 0


def test_token_paused_after_signing_reverts_on_chain_then_retried(anvil, db, env, station):
    p = Parties(db)
    amount = 777777
    token, uuid, addr = token_order(anvil, db, env, p, "blacklist", amount)
    intents.open_intent(db, uuid, sm.CANCEL, p.vendor["uuid"])
    proc = cron_subprocess(env, db, {"CRON_CRASH_AT": "after_commit"})
    assert proc.returncode != 0
    anvil.token_admin(token, "pause()")
    run_and_mine(anvil, env, db)
    intent = intent_row(db, uuid)
    leg = legs_by_role(db, uuid)["buyer"]
    assert intent["status"] == "needs_attention" and leg["status"] == "failed" and "reverted" in leg["error"]
    assert leg["gas_used"] is not None                 # it was mined, and reverted
    anvil.token_admin(token, "unpause()")
    staff = make_user(db, "staffp", role="staff")
    intents.staff_action(db, staff, intent["uuid"], "retry")
    settle(anvil, env, db, uuid, sm.CANCELLED)
    assert anvil.token_balance(token, p.refund_addr) == amount
    assert anvil.token_balance(token, addr) == 0


def test_native_leg_to_a_contract_that_refuses_ether(anvil, db, env, client):
    p = Parties(db)
    contract = anvil.deploy_token(symbol="NOPAY", decimals=0)     # no payable fallback
    db.execute("UPDATE stores SET payout_address = ? WHERE uuid = ?", (contract, p.store["uuid"]))
    amount = ETH // 4
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    run_and_mine(anvil, env, db, 2)
    intent = intent_row(db, uuid)
    assert intent["status"] == "needs_attention" and "does not accept this transfer" in intent["error"]
    vendor, referrer, commission = release_shares(amount)
    assert anvil.balance(p.referrer_addr) == referrer
    staff = make_user(db, "staffn", role="staff")
    leg = legs_by_role(db, uuid)["vendor"]
    r = payout_action(client, staff, intent_uuid=intent["uuid"], action="redirect", payout_id=leg["id"],
                      to_address=p.vendor_addr)
    assert r.status == 200, r.text
    settle(anvil, env, db, uuid, sm.RELEASED)
    retry = legs_by_role(db, uuid)["vendor"]
    # The retried leg pays its own network fee: the commission's share was settled already.
    assert anvil.balance(p.vendor_addr) == vendor - int(retry["fee"]) == int(retry["amount"])
    assert anvil.balance(p.referrer_addr) == referrer
    assert_native_escrow_emptied(anvil, db, uuid, addr)


def test_failing_auto_release_backs_off_then_needs_attention_then_freezes(anvil, db, env):
    p = Parties(db, vendor_payout=False)
    env = dict(env, CRON_RETRY_BACKOFF_SECONDS="0")
    uuid, addr = paid_order(anvil, db, env, p, ETH // 8)
    db.execute("INSERT INTO shipping_statuses (transaction_uuid, time, status) VALUES (?, ?, 'DISPATCHED')",
               (uuid, "2020-01-01 00:00:00"))
    backdate(db, uuid, 15 * 24 * HOUR)          # dispatched, completed_duration passed
    run_cron(env, db)                            # opens the auto-release; refused once
    intent = intent_row(db, uuid)
    assert intent["requested_by"] is None and intent["status"] == "pending" and intent["failures"] == 1
    assert intent["error"] == "vendor has no payout address" and intent["next_attempt_at"]
    run_cron(env, db)
    run_cron(env, db)
    intent = intent_row(db, uuid)
    assert intent["status"] == "needs_attention" and intent["failures"] == 3
    assert db.value("SELECT kind FROM staff_flags WHERE intent_uuid = ?", (intent["uuid"],)) == "intent_refused"
    assert status(db, uuid) == sm.COMPLETED and anvil.balance(addr) == ETH // 8
    backdate(db, uuid, 16 * 24 * HOUR)          # past stuck_duration (720h)
    run_cron(env, db)
    assert status(db, uuid) == sm.FROZEN
    assert intent_row(db, uuid)["status"] == "failed" and "superseded" in intent_row(db, uuid)["error"]


# -- 3. Stuck transactions are replaced, never duplicated -------------------------------

def spike(anvil, gwei=100, blocks=1):
    for _ in range(blocks):
        anvil.rpc("anvil_setNextBlockBaseFeePerGas", hex(gwei * 10 ** 9))
        anvil.rpc("evm_mine")


def test_base_fee_spike_stuck_release_is_replaced_and_mined_once(anvil, db, env, manual_mining):
    p = Parties(db)
    amount = 2 * ETH + 5
    anvil.rpc("evm_setAutomine", True)
    uuid, addr = paid_order(anvil, db, env, p, amount)
    anvil.rpc("evm_setAutomine", False)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    run_cron(env, db)                          # signed at today's fees, in the pool
    first = {r["recipient_role"]: r for r in payout_rows(db, uuid)}
    assert all(r["tx_type"] == 2 and r["status"] == "broadcast" for r in first.values())
    sent_at = anvil.block_number()
    spike(anvil, 100, 3)                       # the pool drops them; they cannot be mined
    assert anvil.nonce(addr, "latest") == 0
    run_cron(env, db)                          # 3 blocks stuck: replaced, same nonces, higher fees
    rows = {r["recipient_role"]: r for r in payout_rows(db, uuid)}
    for role, r in rows.items():
        assert r["nonce"] == first[role]["nonce"] and r["replacements"] == 1 and r["tx_hash"] != first[role]["tx_hash"]
        assert int(r["max_fee_per_gas"]) >= int(first[role]["max_fee_per_gas"]) * 9 // 8
        assert int(r["max_priority_fee_per_gas"]) >= int(first[role]["max_priority_fee_per_gas"]) * 9 // 8
        attempts = db.query("SELECT * FROM payout_attempts WHERE payout_id = ? ORDER BY id", (r["id"],))
        assert [a["tx_hash"] for a in attempts] == [first[role]["tx_hash"], r["tx_hash"]]
    spike(anvil, 100, 1)
    mined_at = anvil.block_number()
    for _ in range(3):
        spike(anvil, 100, 1)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert status(db, uuid) == sm.RELEASED
    vendor, referrer, commission = release_shares(amount)
    rows = payout_rows(db, uuid)
    assert anvil.balance(p.vendor_addr) == vendor and anvil.balance(p.referrer_addr) == referrer
    assert anvil.balance(env["COMMISSION_WALLET_DEV"]) == commission - fees(rows)
    assert anvil.nonce(addr, "latest") == 3                    # three transactions ever left the escrow
    assert all(r["block_number"] == mined_at for r in rows)
    assert_native_escrow_emptied(anvil, db, uuid, addr)
    print("replacement latency: %d blocks from first broadcast to the replacement mined" % (mined_at - sent_at))


def test_sigkill_after_replacement_is_signed_mines_once(anvil, db, env, manual_mining):
    p = Parties(db)
    amount = ETH + 3
    anvil.rpc("evm_setAutomine", True)
    uuid, addr = paid_order(anvil, db, env, p, amount)
    anvil.rpc("evm_setAutomine", False)
    intents.open_intent(db, uuid, sm.CANCEL, p.vendor["uuid"])
    run_cron(env, db)
    spike(anvil, 100, 3)
    proc = cron_subprocess(env, db, {"CRON_CRASH_AT": "after_replace"})
    assert proc.returncode != 0
    row = payout_rows(db, uuid)[0]
    assert row["replacements"] == 1 and db.value("SELECT COUNT(*) FROM payout_attempts WHERE payout_id = ?",
                                                 (row["id"],)) == 2
    run_cron(env, db)                          # sends the stored replacement
    for _ in range(4):
        spike(anvil, 100, 1)
    run_cron(env, db)
    assert status(db, uuid) == sm.CANCELLED
    assert anvil.balance(p.refund_addr) == int(payout_rows(db, uuid)[0]["amount"])
    assert anvil.nonce(addr, "latest") == 1


def test_fee_above_the_ceiling_signs_nothing_and_says_why(anvil, db, env):
    p = Parties(db)
    uuid, addr = paid_order(anvil, db, env, p, ETH // 2)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    capped = dict(env, MAX_FEE_GWEI_31337="0.000000001")
    run_cron(capped, db)
    intent = intent_row(db, uuid)
    assert intent["status"] == "pending" and "above the ceiling" in intent["error"] and "MAX_FEE_GWEI_31337" in \
        intent["error"]
    assert payout_rows(db, uuid) == [] and anvil.balance(addr) == ETH // 2
    settle(anvil, env, db, uuid, sm.RELEASED)


# -- 4. Reorg-safe confirmations --------------------------------------------------------

def test_payout_reorged_out_is_rebroadcast_from_stored_bytes(anvil, db, env):
    from lib import config
    p = Parties(db)
    amount = ETH + 11
    uuid, addr = paid_order(anvil, db, env, p, amount)
    config.set_values(db, {"required_confirmations_31337": "6"})
    anvil.mine(3)                                  # the payment is 6 deep
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    run_cron(env, db)                              # signed, sent, mined in 3 blocks (automine)
    wait_for_nonce(anvil, addr, 3)
    rows = payout_rows(db, uuid)
    hashes = {r["tx_hash"] for r in rows}
    run_cron(env, db)                              # receipts seen, blocks recorded, not deep yet
    assert all(r["block_hash"] and r["status"] == "broadcast" for r in payout_rows(db, uuid))
    # the payout blocks leave the chain (with any block mined after them: a transaction an
    # earlier test left in anvil's pool can be mined there)
    first = min(int(anvil.rpc("eth_getTransactionReceipt", h)["blockNumber"], 16) for h in hashes)
    anvil.rpc("anvil_reorg", anvil.block_number() - first + 1, [])
    assert anvil.nonce(addr, "latest") == 0 and anvil.balance(p.vendor_addr) == 0
    anvil.mine(5)
    r = run_cron(env, db)                          # at depth: block hash differs: re-sent
    assert r["counts"]["payouts"].get("reorged") == 3, r["counts"]
    assert status(db, uuid) == sm.COMPLETED
    settle(anvil, env, db, uuid, sm.RELEASED)
    assert {r["tx_hash"] for r in payout_rows(db, uuid)} == hashes          # the same signed bytes
    vendor, referrer, commission = release_shares(amount)
    assert anvil.balance(p.vendor_addr) == vendor and anvil.balance(p.referrer_addr) == referrer
    assert anvil.nonce(addr, "latest") == 3
    assert [h["status"] for h in sm.history(db, uuid)].count(sm.RELEASED) == 1


def test_per_chain_confirmations_config(anvil, db, env):
    from lib import config
    config.set_values(db, {"required_confirmations_31337": "6"})
    p = Parties(db)
    uuid = make_order(db, p.buyer, p.store, ETH // 10, refund=p.refund)
    run_cron(env, db)
    anvil.send_eth(1, escrow(db, uuid), ETH // 10)
    anvil.mine(4)                                  # 5 confirmations
    run_cron(env, db)
    assert status(db, uuid) == sm.PENDING
    anvil.mine(1)
    run_cron(env, db)
    assert status(db, uuid) == sm.COMPLETED


# -- 5. Money in the wrong place is rescued ---------------------------------------------

def test_eth_sent_to_a_token_escrow_is_rescued_to_the_buyer(anvil, db, env, client):
    p = Parties(db)
    token = anvil.deploy_token(symbol="TUSD", decimals=6)
    anvil.mine(3)
    uuid = make_order(db, p.buyer, p.store, 10 ** 7, currency="TUSD", token=token, decimals=6, refund=p.refund)
    run_cron(env, db)
    addr = db.value("SELECT escrow_address FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))
    stray = ETH // 20
    anvil.send_eth(1, addr, stray)
    anvil.mine(3)
    run_cron(env, db)
    flag = db.one("SELECT * FROM staff_flags WHERE transaction_uuid = ? AND kind = 'wrong_asset'", (uuid,))
    assert flag and int(flag["amount"]) == stray and flag["token_contract"] == ""
    staff = make_user(db, "staffr", role="staff")
    r = payout_action(client, staff, action="rescue", flag_id=str(flag["id"]))
    assert r.status == 200, r.text
    rescue = intent_row(db, uuid)
    assert rescue["action"] == "RESCUE" and rescue["asset"] == ""
    for _ in range(3):
        run_cron(env, db)
        anvil.mine(3)
    assert intent_row(db, uuid)["status"] == "completed"
    leg = payout_rows(db, uuid)[0]
    assert leg["recipient_role"] == "buyer" and leg["to_address"] == p.refund_addr
    assert anvil.balance(p.refund_addr) == stray - int(leg["fee"])
    assert status(db, uuid) == sm.PENDING                # the order itself goes on
    assert db.value("SELECT resolved_at FROM staff_flags WHERE id = ?", (flag["id"],))
    run_cron(env, db)
    assert db.value("SELECT COUNT(*) FROM staff_flags WHERE transaction_uuid = ? AND resolved_at IS NULL",
                    (uuid,)) == 0                       # the fee headroom left is not flagged again


# -- 6. Several RPC endpoints ---------------------------------------------------------

def test_first_rpc_endpoint_down_second_works(anvil, db, env):
    from tests.chain import free_port
    env = dict(env, RPC_URL_31337="http://127.0.0.1:%d,%s" % (free_port(), anvil.url), CRON_RPC_TIMEOUT="1")
    p = Parties(db)
    uuid, addr = paid_order(anvil, db, env, p, ETH // 3)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    settle(anvil, env, db, uuid, sm.RELEASED)
    vendor, referrer, commission = release_shares(ETH // 3)
    assert anvil.balance(p.vendor_addr) == vendor
    assert anvil.nonce(addr, "latest") == 3


def test_stuck_gas_station_top_up_is_replaced_and_the_token_legs_follow(anvil, db, env, station, manual_mining):
    """The top-up an ERC-20 escrow waits for is stuck: it is replaced (the station's own
    nonce, higher fees), and the legs go out once it is mined; nothing is sent twice."""
    p = Parties(db)
    amount = 31415926
    anvil.rpc("evm_setAutomine", True)
    token, uuid, addr = token_order(anvil, db, env, p, None, amount)
    anvil.rpc("evm_setAutomine", False)
    station_nonce = anvil.nonce(station, "latest")
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    run_cron(env, db)                                    # top-up sent; the legs wait for it
    gas = [r for r in payout_rows(db, uuid) if r["kind"] == "gas"]
    assert len(gas) == 1 and gas[0]["status"] == "broadcast"
    assert all(r["status"] == "signed" for r in payout_rows(db, uuid) if r["kind"] == "payout")
    spike(anvil, 100, 3)
    run_cron(env, db)                                    # the top-up is replaced
    gas = [r for r in payout_rows(db, uuid) if r["kind"] == "gas"][0]
    assert gas["replacements"] == 1 and gas["nonce"] == station_nonce
    spike(anvil, 100, 1)                                 # the replacement is mined
    run_cron(env, db)                                    # the legs go out at today's (high) fees
    for _ in range(8):                                   # legs re-priced (more gas first), mined, confirmed
        spike(anvil, 100, 1)
        run_cron(env, db)
        if status(db, uuid) == sm.RELEASED:
            break
    assert status(db, uuid) == sm.RELEASED, intent_row(db, uuid)
    vendor, referrer, commission = release_shares(amount)
    assert anvil.token_balance(token, p.vendor_addr) == vendor
    assert anvil.token_balance(token, p.referrer_addr) == referrer
    assert anvil.token_balance(token, env["COMMISSION_WALLET_DEV"]) == commission
    assert anvil.nonce(station, "latest") - station_nonce == len(
        [r for r in payout_rows(db, uuid) if r["kind"] == "gas"])      # every top-up mined once
