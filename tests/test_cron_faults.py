"""Provider faults: an RPC endpoint that times out, answers 429 or 500, or returns garbage.
The run records the error, loses nothing, and the next run carries on (SPEC section 8)."""
import json

import pytest

from lib import intents
from lib import status_machine as sm
from tests.cron_support import (assert_native_escrow_emptied, Parties, cron_env, cron_subprocess, escrow, fees, intent_row, make_order, paid_order, payout_rows,
                                run_cron, settle, status)
from tests.fake_rpc import FaultyRpc

ETH = 10 ** 18


@pytest.fixture
def proxy(anvil):
    p = FaultyRpc(anvil.url, hang=1.5)
    yield p
    p.stop()


@pytest.fixture
def env(anvil, proxy, tmp_path):
    return cron_env(proxy.url, tmp_path, CRON_RPC_TIMEOUT="1")


@pytest.mark.parametrize("mode", ["timeout", "429", "500", "garbage", "rpc_error"])
def test_balance_poll_fault_is_recorded_and_the_next_run_completes(anvil, db, env, proxy, mode):
    p = Parties(db)
    amount = ETH // 7
    uuid = make_order(db, p.buyer, p.store, amount, refund=p.refund)
    assert run_cron(env, db)["ok"]
    anvil.send_eth(1, escrow(db, uuid), amount)
    anvil.mine(3)
    proxy.add("eth_getBalance", mode)
    proc = cron_subprocess(env, db)                 # the real process: its exit status counts
    assert proc.returncode == 1, proc.output
    assert "FAILED" in proc.output and "poll: chain 31337" in proc.output
    row = db.one("SELECT ok, errors, finished_at FROM cron_runs ORDER BY id DESC LIMIT 1")
    assert row["ok"] == 0 and row["finished_at"]
    errors = json.loads(row["errors"])
    assert any(e.startswith("poll: chain 31337") for e in errors), errors
    assert status(db, uuid) == sm.PENDING
    assert db.value("SELECT received_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,)) == "0"
    assert proxy.hits() >= (1 if mode == "rpc_error" else 2)     # transport faults are retried first
    proxy.clear()
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert status(db, uuid) == sm.COMPLETED


def test_broadcast_answer_lost_after_the_node_took_it(anvil, db, env, proxy):
    """The node accepted the transaction but the reply was garbage: the next run
    re-sends the same bytes and pays nobody twice."""
    p = Parties(db)
    amount = ETH // 3
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    proxy.add("eth_sendRawTransaction", "forward_garbage")
    r = run_cron(env, db)
    assert not r["ok"] and any("broadcast of" in e for e in r["errors"]), r["errors"]
    rows = payout_rows(db, uuid)
    assert [x["status"] for x in rows] == ["signed"] * 3
    assert anvil.nonce(addr, "latest") == 1          # the first leg did reach the chain
    proxy.clear()
    settle(anvil, env, db, uuid, sm.RELEASED)
    rows = payout_rows(db, uuid)
    assert len(rows) == 3 and anvil.nonce(addr, "latest") == 3
    assert anvil.balance(p.vendor_addr) == amount - amount // 5
    assert_native_escrow_emptied(anvil, db, uuid, addr)


@pytest.mark.parametrize("method", ["eth_gasPrice", "eth_getTransactionCount", "eth_sendRawTransaction",
                                    "eth_getTransactionReceipt"])
def test_payout_survives_a_failing_method(anvil, db, env, proxy, method):
    p = Parties(db)
    amount = ETH // 9
    uuid, addr = paid_order(anvil, db, env, p, amount)
    intents.open_intent(db, uuid, sm.CANCEL, p.vendor["uuid"])
    proxy.add(method, "500")
    r = run_cron(env, db)
    assert not r["ok"], "the fault must be recorded"
    assert status(db, uuid) == sm.COMPLETED
    if method in ("eth_gasPrice", "eth_getTransactionCount"):
        # Planning failed before anything was stored: the intent is still pending.
        assert intent_row(db, uuid)["status"] == "pending" and payout_rows(db, uuid) == []
    proxy.clear()
    settle(anvil, env, db, uuid, sm.CANCELLED)
    rows = payout_rows(db, uuid)
    assert len(rows) == 1
    assert anvil.balance(p.refund_addr) == amount - fees(rows)
    assert_native_escrow_emptied(anvil, db, uuid, addr)
