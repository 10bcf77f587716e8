"""ERC-20 payments found through the tokens' Transfer logs.

The poll asks eth_getLogs for the blocks since the last scan and reads balanceOf only for
the escrows a log names (plus those partly paid, or whose order has had an intent); the
balance read at the confirmed block is what counts, so odd tokens are judged by what they
moved. token_log_scans remembers how far each token was scanned and the hash of that
block; a reorganisation that reaches scanned blocks makes the scan go back over them.
Every test runs on SQLite and MariaDB against anvil; the duties are called directly.
"""
import pytest

from cron import tasks
from lib import intents
from lib import status_machine as sm
from lib.db import utc_now
from tests.cron_support import CHAIN, Parties, escrow, make_order, status
from tests.duties import duty

UNIT = 10 ** 6                      # the test tokens have 6 decimals
PRICE = 25 * UNIT


@pytest.fixture
def token(anvil):
    contract = anvil.deploy_token(symbol="TUSD", decimals=6)
    anvil.mine(3)                       # the contract exists at the confirmed block
    return contract


def poll(env, db):
    return duty(env, db, tasks.poll_pending)


def counts(ctx):
    return ctx.counts.get("poll", {})


def balance_of_calls(ctx):
    """balanceOf calls this run sent (every eth_call of the poll is one)."""
    return ctx.rpc(CHAIN).calls.get("eth_call", 0)


def token_order(anvil, db, env, p, token, required=PRICE):
    uuid = make_order(db, p.buyer, p.store, required, currency="TUSD", token=token, decimals=6, refund=p.refund)
    duty(env, db, tasks.fill_escrow_addresses)
    return uuid, escrow(db, uuid)


def received(db, uuid):
    return db.value("SELECT received_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))


def scan_row(db, token):
    return db.one("SELECT * FROM token_log_scans WHERE chain_id = ? AND token_contract = ?", (CHAIN, token.lower()))


def started(anvil, db, env, p, token, n=3):
    """n unpaid token orders, polled once (the first poll reads every balance and starts the scan)."""
    orders = [token_order(anvil, db, env, p, token) for _ in range(n)]
    ctx = poll(env, db)
    assert counts(ctx)["balance_scans"] == 1 and counts(ctx)["token_balances_read"] == n
    assert balance_of_calls(ctx) == n
    assert scan_row(db, token)["scanned_block"] == anvil.block_number() - 2      # 3 confirmations
    return orders


def test_an_exact_payment_is_found_by_its_log_and_only_that_escrow_is_read(anvil, db, env, token):
    p = Parties(db)
    (paid, addr), (other, _), _ = started(anvil, db, env, p, token)
    anvil.mine(2)
    ctx = poll(env, db)                                  # nothing sent: no balanceOf at all
    assert "balance_scans" not in counts(ctx) and counts(ctx)["token_balances_read"] == 0
    assert balance_of_calls(ctx) == 0 and ctx.rpc(CHAIN).calls["eth_getLogs"] == 1
    assert ctx.polled >= {paid, other}                   # their balances are known: expire may act

    anvil.token_transfer(token, 0, addr, PRICE)
    anvil.mine(1)
    poll(env, db)                                        # 2 confirmations only: not yet
    assert status(db, paid) == sm.PENDING and received(db, paid) in (None, "0")
    anvil.mine(1)
    ctx = poll(env, db)
    assert counts(ctx)["token_balances_read"] == 1 and balance_of_calls(ctx) == 1
    assert status(db, paid) == sm.COMPLETED and received(db, paid) == str(PRICE)
    assert sm.current_status(db, paid)["comment"] == "paid: 25 of 25 received"
    assert status(db, other) == sm.PENDING
    assert scan_row(db, token)["scanned_block"] == anvil.block_number() - 2


def test_partial_then_full_payment_and_an_over_payment(anvil, db, env, token):
    p = Parties(db)
    (part, part_addr), (over, over_addr), _ = started(anvil, db, env, p, token)
    anvil.token_transfer(token, 0, part_addr, 10 * UNIT)
    anvil.token_transfer(token, 0, over_addr, PRICE + 7)
    anvil.mine(3)
    ctx = poll(env, db)
    assert counts(ctx)["token_balances_read"] == 2
    assert status(db, part) == sm.PENDING and received(db, part) == str(10 * UNIT)
    assert sm.current_status(db, part)["comment"] == "partial payment: 10 of 25 received"
    assert status(db, over) == sm.COMPLETED and received(db, over) == str(PRICE + 7)
    assert sm.current_status(db, over)["amount"] == str(PRICE + 7)

    anvil.mine(2)
    ctx = poll(env, db)                  # the partly paid escrow is read every run, nothing changes
    assert counts(ctx)["token_balances_read"] == 1
    assert [h["status"] for h in sm.history(db, part)] == [sm.PENDING, sm.PENDING]

    anvil.token_transfer(token, 0, part_addr, 15 * UNIT)
    anvil.mine(3)
    poll(env, db)
    assert status(db, part) == sm.COMPLETED and received(db, part) == str(PRICE)


def test_two_payments_to_one_escrow_in_one_scan_add_up(anvil, db, env, token):
    p = Parties(db)
    (uuid, addr), _, _ = started(anvil, db, env, p, token)
    anvil.token_transfer(token, 0, addr, 12 * UNIT)
    anvil.token_transfer(token, 0, addr, 13 * UNIT)
    anvil.mine(3)
    ctx = poll(env, db)
    assert counts(ctx)["token_balances_read"] == 1 and balance_of_calls(ctx) == 1
    assert status(db, uuid) == sm.COMPLETED and received(db, uuid) == str(PRICE)
    assert [h["status"] for h in sm.history(db, uuid)] == [sm.PENDING, sm.COMPLETED]


def test_one_log_request_per_token_whatever_the_escrows_and_other_recipients_are_left_alone(
        anvil, db, env, token):
    p = Parties(db)
    (uuid, addr), (other, _), _ = started(anvil, db, env, p, token, n=30)[:3]
    anvil.token_transfer(token, 0, p.refund_addr, 5 * UNIT)          # not an escrow
    anvil.token_transfer(token, 0, addr, PRICE)
    anvil.mine(3)
    ctx = poll(env, db)
    assert counts(ctx)["token_balances_read"] == 1 and ctx.rpc(CHAIN).calls["eth_getLogs"] == 1
    assert balance_of_calls(ctx) == 1
    assert status(db, uuid) == sm.COMPLETED and status(db, other) == sm.PENDING


def test_a_payment_reorganised_away_before_it_was_confirmed_never_counts(anvil, db, env, token):
    p = Parties(db)
    (uuid, addr), _, _ = started(anvil, db, env, p, token)
    anvil.token_transfer(token, 0, addr, PRICE)
    anvil.mine(1)                                        # 2 confirmations
    poll(env, db)
    assert status(db, uuid) == sm.PENDING
    anvil.rpc("anvil_reorg", 3, [])                      # the payment's block and the two after it
    assert anvil.token_balance(token, addr) == 0
    anvil.mine(3)
    poll(env, db)
    assert status(db, uuid) == sm.PENDING and received(db, uuid) in (None, "0")
    assert [h["status"] for h in sm.history(db, uuid)] == [sm.PENDING]


def test_a_counted_payment_reorganised_away_returns_the_order_to_pending(anvil, db, env, token):
    p = Parties(db)
    (uuid, addr), _, _ = started(anvil, db, env, p, token)
    anvil.token_transfer(token, 0, addr, PRICE)
    block = anvil.block_number()
    anvil.mine(3)
    poll(env, db)
    assert status(db, uuid) == sm.COMPLETED
    head = anvil.block_number()
    anvil.rpc("anvil_reorg", head - block + 1, [])
    ctx = poll(env, db)
    assert counts(ctx)["reorged"] == 1 and counts(ctx)["log_rescans"] == 1
    row = sm.current_status(db, uuid)
    assert row["status"] == sm.PENDING and row["amount"] == "0"
    assert "no longer on chain (chain reorganisation)" in row["comment"]


def test_a_partial_payment_reorganised_away_is_taken_back(anvil, db, env, token):
    p = Parties(db)
    (uuid, addr), _, _ = started(anvil, db, env, p, token)
    anvil.token_transfer(token, 0, addr, 10 * UNIT)
    block = anvil.block_number()
    anvil.mine(3)
    poll(env, db)
    assert received(db, uuid) == str(10 * UNIT)
    anvil.rpc("anvil_reorg", anvil.block_number() - block + 1, [])
    poll(env, db)
    assert received(db, uuid) == "0" and status(db, uuid) == sm.PENDING


def test_a_payment_moved_into_a_block_already_scanned_is_found_again(anvil, db, env, token):
    """A reorganisation replaces blocks the scan has passed, and the new ones carry a payment:
    the stored hash no longer matches, so the scan goes back over them."""
    p = Parties(db)
    (uuid, addr), _, _ = started(anvil, db, env, p, token)
    anvil.mine(4)
    poll(env, db)
    scanned = scan_row(db, token)["scanned_block"]
    head = anvil.block_number()
    data = "0xa9059cbb" + addr.lower()[2:].rjust(64, "0") + hex(PRICE)[2:].rjust(64, "0")
    tx = {"from": anvil.dev_account(0), "to": token, "data": data, "gas": hex(200_000)}
    anvil.rpc("anvil_reorg", 5, [[tx, 0]])               # into block head - 4, below the scanned one
    paid_in = head - 4
    assert paid_in < scanned and anvil.token_balance(token, addr) == PRICE
    ctx = poll(env, db)
    assert counts(ctx)["log_rescans"] == 1 and counts(ctx)["token_balances_read"] == 1
    assert status(db, uuid) == sm.COMPLETED and received(db, uuid) == str(PRICE)


def test_a_payment_while_an_intent_was_open_is_seen_once_it_closes(anvil, db, env, token):
    p = Parties(db)
    (uuid, addr), _, _ = started(anvil, db, env, p, token)
    intent = intents.open_intent(db, uuid, sm.CANCEL, None)
    anvil.token_transfer(token, 0, addr, PRICE)
    anvil.mine(3)
    poll(env, db)                                        # the order is the intent's: left alone
    assert status(db, uuid) == sm.PENDING
    db.execute("UPDATE transaction_intents SET status = 'failed', open_key = NULL WHERE id = ?", (intent["id"],))
    anvil.mine(2)
    ctx = poll(env, db)                                  # no new log, but the order has had an intent
    assert counts(ctx)["token_balances_read"] == 1
    assert status(db, uuid) == sm.COMPLETED and received(db, uuid) == str(PRICE)


def test_a_fee_on_transfer_token_counts_what_arrived_not_what_was_sent(anvil, db, env):
    fee_token = anvil.deploy_odd_token("fee", symbol="FEE", decimals=6)
    anvil.mine(3)
    p = Parties(db)
    (short, short_addr), (gone, gone_addr), _ = started(anvil, db, env, p, fee_token)
    anvil.token_admin(fee_token, "setFeeBps(uint256)", 1000)
    anvil.token_transfer(fee_token, 0, short_addr, PRICE)                # 10% fee: 22.5 arrive
    anvil.token_admin(fee_token, "setFeeBps(uint256)", 10000)            # all of it to the collector
    anvil.token_transfer(fee_token, 0, gone_addr, PRICE)                 # a log to the escrow, 0 arrives
    anvil.token_admin(fee_token, "setFeeBps(uint256)", 100)
    anvil.mine(3)
    ctx = poll(env, db)
    assert counts(ctx)["token_balances_read"] == 2
    net = PRICE - PRICE // 10
    assert anvil.token_balance(fee_token, short_addr) == net
    assert status(db, short) == sm.PENDING and received(db, short) == str(net)
    assert sm.current_status(db, short)["comment"] == "partial payment: 22.5 of 25 received"
    assert status(db, gone) == sm.PENDING and received(db, gone) in (None, "0")
    assert [h["status"] for h in sm.history(db, gone)] == [sm.PENDING]


def test_a_scan_too_far_behind_reads_every_balance_again(anvil, db, env, token, monkeypatch):
    p = Parties(db)
    (uuid, addr), _, _ = started(anvil, db, env, p, token)
    monkeypatch.setattr(tasks, "LOG_SCAN_MAX_GAP", 4)
    anvil.token_transfer(token, 0, addr, PRICE)
    anvil.mine(6)
    ctx = poll(env, db)
    assert counts(ctx)["balance_scans"] == 1 and counts(ctx)["token_balances_read"] == 3
    assert "eth_getLogs" not in ctx.rpc(CHAIN).calls
    assert status(db, uuid) == sm.COMPLETED
    assert scan_row(db, token)["scanned_block"] == anvil.block_number() - 2


def test_eth_escrows_are_still_read_with_batched_get_balance(anvil, db, env, token):
    p = Parties(db)
    eth = [make_order(db, p.buyer, p.store, 10 ** 17, refund=p.refund) for _ in range(3)]
    started(anvil, db, env, p, token, n=1)
    anvil.send_eth(1, escrow(db, eth[0]), 10 ** 17)
    anvil.mine(3)
    ctx = poll(env, db)
    rpc = ctx.rpc(CHAIN)
    assert rpc.calls["eth_getBalance"] == 3 and "eth_call" not in rpc.calls
    usage = rpc.provider_usage()
    assert usage["calls"] == sum(rpc.calls.values()) and usage["largest_batch"] >= 3
    assert status(db, eth[0]) == sm.COMPLETED and status(db, eth[1]) == sm.PENDING


def run_poll_and_reconcile(ctx):
    tasks.poll_pending(ctx)
    tasks.reconcile(ctx)


def test_an_accepted_token_sent_to_an_open_eth_escrow_is_flagged_from_its_log(anvil, db, env, token, monkeypatch):
    """reconcile reads another accepted token in open escrows only where this run's log scan
    named them (the hourly rotation reads them all: here no escrow is in the slot)."""
    monkeypatch.setattr(tasks, "RECONCILE_SLOTS", 10 ** 9)
    now = utc_now()
    db.insert("accepted_tokens", {"chain_id": CHAIN, "symbol": "TUSD", "contract_address": token, "decimals": 6,
                                  "status": "active", "manual_usd_price": "1", "created_at": now, "updated_at": now})
    p = Parties(db)
    eth = [make_order(db, p.buyer, p.store, 10 ** 17, refund=p.refund) for _ in range(3)]
    duty(env, db, tasks.fill_escrow_addresses)
    ctx = duty(env, db, run_poll_and_reconcile)          # no scan yet: every escrow read, the scan starts
    assert balance_of_calls(ctx) == 3 and scan_row(db, token) is not None
    anvil.mine(2)
    ctx = duty(env, db, run_poll_and_reconcile)
    assert balance_of_calls(ctx) == 0
    addr = escrow(db, eth[1])
    anvil.token_transfer(token, 0, addr, 3 * UNIT)
    anvil.mine(3)
    ctx = duty(env, db, run_poll_and_reconcile)
    assert balance_of_calls(ctx) == 1
    got = db.query("SELECT transaction_uuid, kind, token_contract, amount FROM staff_flags ORDER BY id")
    assert got == [{"transaction_uuid": eth[1], "kind": "wrong_asset", "token_contract": token,
                    "amount": str(3 * UNIT)}]
    assert all(status(db, u) == sm.PENDING for u in eth)


def refuse_log_ranges_over(monkeypatch, blocks):
    """The node refuses eth_getLogs over more than `blocks` blocks, as providers cap them."""
    from cron.rpc_client import RpcCallError, RpcClient
    real = RpcClient.batch

    def batch(self, calls, raise_errors=True, batch_size=None):
        calls = list(calls)
        too_wide = [m == "eth_getLogs" and int(p[0]["toBlock"], 16) - int(p[0]["fromBlock"], 16) + 1 > blocks
                    for m, p in calls]
        asked = real(self, [c for c, wide in zip(calls, too_wide) if not wide], raise_errors, batch_size) \
            if not all(too_wide) else []
        answers = iter(asked)
        return [RpcCallError("eth_getLogs failed: query exceeds max block range (code -32600)")
                if wide else next(answers) for wide in too_wide]
    monkeypatch.setattr(RpcClient, "batch", batch)


def paid_and_polled_with_log_ranges_refused(anvil, db, env, token, monkeypatch, blocks, widest):
    """A token order paid in full, `blocks` mined, then a poll by a node that refuses
    eth_getLogs over more than `widest` blocks; returns (order uuid, the poll's context)."""
    (uuid, addr), _, _ = started(anvil, db, env, Parties(db), token)
    anvil.token_transfer(token, 0, addr, PRICE)
    anvil.mine(blocks)
    refuse_log_ranges_over(monkeypatch, widest)
    return uuid, poll(env, db)


def test_a_range_the_node_refuses_is_asked_again_in_halves(anvil, db, env, token, monkeypatch):
    uuid, ctx = paid_and_polled_with_log_ranges_refused(anvil, db, env, token, monkeypatch, 8, 2)
    assert "balance_scans" not in counts(ctx) and counts(ctx)["token_balances_read"] == 1
    assert ctx.rpc(CHAIN).calls["eth_getLogs"] > 4          # 9 blocks: refused, then halves down to 2
    assert status(db, uuid) == sm.COMPLETED


def test_logs_refused_even_for_one_block_read_every_balance(anvil, db, env, token, monkeypatch):
    uuid, ctx = paid_and_polled_with_log_ranges_refused(anvil, db, env, token, monkeypatch, 3, 0)
    assert counts(ctx)["balance_scans"] == 1 and counts(ctx)["token_balances_read"] == 3
    assert status(db, uuid) == sm.COMPLETED
    assert scan_row(db, token)["scanned_block"] == anvil.block_number() - 2


def test_the_client_counts_requests_calls_and_batch_sizes(anvil):
    from cron.rpc_client import RpcClient
    from tests.chain import fresh_address
    rpc = RpcClient(anvil.url, batch_size=100)
    try:
        rpc.get_balances([fresh_address() for _ in range(250)])
        rpc.block_number()
        assert dict(rpc.batch_sizes) == {100: 2, 50: 1, 1: 1}
        assert rpc.provider_usage() == {"requests": 4, "calls": 251, "largest_batch": 100,
                                        "by_method": {"eth_getBalance": 250, "eth_blockNumber": 1}}
        assert rpc.requests_sent == 4
    finally:
        rpc.close()
