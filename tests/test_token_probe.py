"""Fee-on-transfer detection at token verification (cron/token_probe.py, duty 8 in
cron/prices.py): a simulated probe transfer by eth_call with a state override, on anvil."""
import json

import pytest

from cron import token_probe
from cron.rpc_client import RpcCallError, RpcClient, RpcTransportError
from cron.token_probe import PROBE_RECIPIENT, ProbeResult, probe_transfer
from lib.chains import keccak256
from lib.db import utc_now
from tests.chain import REPO_ROOT, fresh_address
from tests.cron_support import cron_env, run_cron
from tests.fake_rpc import FaultyRpc

PROBE_JSON = REPO_ROOT / "tests" / "contracts" / "TransferProbe.json"


@pytest.fixture
def rpc(anvil):
    client = RpcClient(anvil.url, timeout=5, retries=1, backoff=0.05)
    yield client
    client.close()


# --- the probe contract ------------------------------------------------------------

def test_runtime_constant_is_the_compiled_probe():
    art = json.loads(PROBE_JSON.read_text())
    assert token_probe.PROBE_RUNTIME == art["deployedBytecode"], \
        "rebuild (node tests/contracts/build.js) and copy deployedBytecode into cron/token_probe.py"
    assert art["bytecode"].endswith(art["deployedBytecode"][2:])
    assert token_probe.SEL_PROBE[2:] in art["deployedBytecode"]
    assert token_probe.PROBE_MAGIC.hex() in art["deployedBytecode"]
    assert [f["name"] for f in art["abi"] if f["type"] == "function"] == ["probe"]


def test_probe_contract_deployed_for_real_reports_like_the_override(anvil):
    """The same code deployed (test only) and funded: probe() moves tokens for real, and
    the reply it returns through eth_call has the documented shape."""
    token = anvil.deploy_odd_token("fee", symbol="FEE")
    probe = anvil.deploy_contract("TransferProbe", [], [])
    anvil.token_transfer(token, 0, probe, 10 ** 6)              # probe gets 990000
    to = fresh_address()
    reply = anvil.eth_call_raw(probe, token_probe.encode_probe_call(token, to, 5000))
    status, to_before, to_after, from_before, from_after, revert = token_probe.decode_probe_reply(reply)
    assert (status, to_before, to_after, from_before, from_after, revert) == (0, 0, 4950, 990000, 985000, b"")


# --- probe_transfer against anvil ---------------------------------------------------

def test_fee_on_transfer_token_is_detected(anvil, rpc):
    token = anvil.deploy_odd_token("fee", symbol="FEE", decimals=6)
    res = probe_transfer(rpc, token, 6)
    assert res.fee_on_transfer and not res.skipped
    assert res.holder == anvil.dev_account(0)
    assert (res.amount, res.delivered) == (10 ** 6, 990000)
    assert res.reason == "fee-on-transfer token: a transfer of 1000000 delivered 990000"
    # nothing was spent: eth_call only
    assert anvil.token_balance(token, PROBE_RECIPIENT) == 0
    assert anvil.token_balance(token, anvil.dev_account(0)) == 10 ** 15


def test_fee_is_seen_from_a_holder_that_is_not_the_fee_collector(anvil, rpc):
    token = anvil.deploy_odd_token("fee", symbol="FEE", decimals=18, supply=10 ** 24)
    holder = fresh_address()
    anvil.token_admin(token, "setFeeBps(uint256)", 0)           # no fee event to the deployer:
    anvil.token_transfer(token, 0, holder, 3 * 10 ** 18)        # the holder is the newest recipient
    anvil.token_admin(token, "setFeeBps(uint256)", 100)
    res = probe_transfer(rpc, token, 18)
    assert res.fee_on_transfer and res.holder == holder
    assert (res.amount, res.delivered, res.debited) == (10 ** 18, 99 * 10 ** 16, 10 ** 18)


def test_amount_is_capped_by_the_holders_balance(anvil, rpc):
    token = anvil.deploy_odd_token("fee", symbol="FEE", decimals=6, supply=500)
    res = probe_transfer(rpc, token, 6)
    assert res.fee_on_transfer and (res.amount, res.delivered) == (500, 495)


@pytest.mark.parametrize("kind", ["plain", "noreturn", "false", "blacklist"])
def test_tokens_without_a_fee_pass(anvil, rpc, kind):
    token = anvil.deploy_token(symbol="TUSD") if kind == "plain" else anvil.deploy_odd_token(kind)
    res = probe_transfer(rpc, token, 6)
    assert res.outcome == "ok", res
    assert (res.amount, res.delivered, res.debited) == (10 ** 6, 10 ** 6, 10 ** 6)
    expected = token_probe.STATUS_NO_RETURN if kind == "noreturn" else token_probe.STATUS_TRUE
    assert res.status == expected


def test_transfer_returning_false_is_not_a_fee(anvil, rpc):
    token = anvil.deploy_odd_token("false")
    anvil.token_admin(token, "setFail(bool)", True)
    res = probe_transfer(rpc, token, 6)
    assert res.outcome == "transfer_failed" and res.skipped and not res.fee_on_transfer
    assert "returned false" in res.detail


def test_blacklisted_holder_is_skipped_for_the_next_one(anvil, rpc):
    token = anvil.deploy_odd_token("blacklist")
    holder = fresh_address()
    anvil.token_transfer(token, 0, holder, 10 ** 7)
    anvil.token_admin(token, "blacklist(address)", holder)
    res = probe_transfer(rpc, token, 6)
    assert res.outcome == "ok" and res.holder == anvil.dev_account(0)
    anvil.token_admin(token, "pause()")
    res = probe_transfer(rpc, token, 6)
    assert res.outcome == "transfer_failed"
    assert res.detail.count("reverted: Pausable: paused") == 2   # both holders tried


def test_no_holder_in_the_logs(anvil, rpc, monkeypatch):
    empty = anvil.deploy_token(symbol="NIL", supply=0)          # Transfer(0, deployer, 0): nobody holds it
    res = probe_transfer(rpc, empty, 6)
    assert res.outcome == "no_holder" and res.skipped
    old = anvil.deploy_odd_token("fee")
    monkeypatch.setattr(token_probe, "LOG_BLOCKS", 5)
    anvil.mine(6)                                               # its only Transfer is now out of range
    assert probe_transfer(rpc, old, 6).outcome == "no_holder"
    # given holders are used as they are
    assert probe_transfer(rpc, old, 6, holders=[anvil.dev_account(0)]).fee_on_transfer


def test_log_ranges_a_node_refuses_are_split_newest_first(anvil, rpc):
    token = anvil.deploy_odd_token("fee")
    holder = fresh_address()
    anvil.token_admin(token, "setFeeBps(uint256)", 0)
    anvil.token_transfer(token, 0, holder, 10 ** 7)
    anvil.token_admin(token, "setFeeBps(uint256)", 100)
    anvil.mine(3)

    class Picky(RpcClient):
        ranges = []

        def get_logs(self, flt):
            self.ranges.append((flt["fromBlock"], flt["toBlock"]))
            if flt["toBlock"] - flt["fromBlock"] >= 10:
                raise RpcCallError("eth_getLogs failed: block range too large (code -32600)")
            return super().get_logs(flt)

    picky = Picky(anvil.url, retries=0)
    res = probe_transfer(picky, token, 6)
    assert res.fee_on_transfer and res.holder == holder
    assert len(picky.ranges) <= token_probe.MAX_LOG_CALLS
    answered = [r for r in picky.ranges if r[1] - r[0] < 10]
    assert answered[0][1] == anvil.block_number()               # the newest blocks first
    picky.close()


class IgnoresOverride(RpcClient):
    def call(self, method, params=None):
        if method == "eth_call" and params and len(params) > 2:
            params = params[:2]
        return super().call(method, params)


class RefusesOverride(RpcClient):
    def call(self, method, params=None):
        if method == "eth_call" and params and len(params) > 2:
            raise RpcCallError("eth_call failed: too many arguments, want at most 2 (code -32602)")
        return super().call(method, params)


class NoLogs(RpcClient):
    def call(self, method, params=None):
        if method == "eth_getLogs":
            raise RpcCallError("eth_getLogs failed: the method eth_getLogs does not exist (code -32601)")
        return super().call(method, params)


@pytest.mark.parametrize("client,outcome", [(IgnoresOverride, "override_unsupported"),
                                            (RefusesOverride, "override_unsupported"),
                                            (NoLogs, "no_logs")])
def test_nodes_without_overrides_or_logs_skip_the_probe(anvil, client, outcome):
    token = anvil.deploy_odd_token("fee")
    c = client(anvil.url, retries=0)
    try:
        res = probe_transfer(c, token, 6)
    finally:
        c.close()
    assert res.outcome == outcome and res.skipped and not res.fee_on_transfer
    assert res.reason.startswith("probe skipped (%s)" % outcome)


def test_transport_errors_are_raised(anvil):
    token = anvil.deploy_odd_token("fee")
    proxy = FaultyRpc(anvil.url)
    c = RpcClient(proxy.url, timeout=2, retries=0)
    try:
        proxy.add("eth_getLogs", "502")
        with pytest.raises(RpcTransportError):
            probe_transfer(c, token, 6)
        proxy.clear()
        assert probe_transfer(c, token, 6).fee_on_transfer
    finally:
        c.close()
        proxy.stop()


def test_reply_of_another_contract_is_not_taken_for_the_probes():
    assert token_probe.decode_probe_reply("0x") is None
    assert token_probe.decode_probe_reply("0x" + "00" * 256) is None
    fake = keccak256(b"x") + b"\x00" * 224
    assert token_probe.decode_probe_reply("0x" + fake.hex()) is None
    assert ProbeResult("no_holder", detail="d").reason == "probe skipped (no_holder): d"


# --- verification (duty 8) -----------------------------------------------------------

def _token(db, symbol, contract, manual="1", chain=31337):
    now = utc_now()
    return db.insert("accepted_tokens", {"chain_id": chain, "symbol": symbol, "contract_address": contract,
                                         "manual_usd_price": manual, "created_at": now, "updated_at": now})


def _rows(db):
    return {t["id"]: t for t in db.query("SELECT * FROM accepted_tokens")}


def test_verification_rejects_a_fee_on_transfer_token(anvil, db, tmp_path):
    fee = anvil.deploy_odd_token("fee", symbol="FEE", decimals=6)
    anvil.token_transfer(fee, 0, fresh_address(), 5 * 10 ** 6)
    plain = anvil.deploy_token(symbol="TUSD", decimals=6)
    noreturn = anvil.deploy_odd_token("noreturn", symbol="USDT", decimals=6)
    nobody = anvil.deploy_token(symbol="NIL", decimals=6, supply=0)
    ids = {"FEE": _token(db, "FEE", fee), "TUSD": _token(db, "TUSD", plain),
           "USDT": _token(db, "USDT", noreturn), "NIL": _token(db, "NIL", nobody), "ETH": _token(db, "ETH", "")}
    r = run_cron(cron_env(anvil.url, tmp_path), db)
    assert not [e for e in r["errors"] if e.startswith(("tokens", "prices"))], r["errors"]
    rows = _rows(db)
    assert rows[ids["FEE"]]["status"] == "rejected"
    assert rows[ids["FEE"]]["status_reason"] == "fee-on-transfer token: a transfer of 1000000 delivered 990000"
    for s in ("TUSD", "USDT", "ETH"):
        assert (rows[ids[s]]["status"], rows[ids[s]]["status_reason"], rows[ids[s]]["decimals"]) == \
            ("active", None, 6 if s != "ETH" else 18), s
    assert rows[ids["NIL"]]["status"] == "active"
    assert rows[ids["NIL"]]["status_reason"].startswith("fee-on-transfer check skipped: no holder")
    counts = r["counts"]["tokens"]
    assert counts["fee_on_transfer"] == 1 and counts["probe_skipped"] == 1
    assert counts["activated"] == 4 and counts["rejected"] == 1


def test_verification_accepts_when_the_node_refuses_overrides(anvil, db, tmp_path, monkeypatch):
    from cron import tasks
    token = anvil.deploy_odd_token("fee", symbol="FEE")
    tid = _token(db, "FEE", token)
    monkeypatch.setattr(tasks, "RpcClient", RefusesOverride)
    r = run_cron(cron_env(anvil.url, tmp_path), db)
    assert not [e for e in r["errors"] if e.startswith("tokens")], r["errors"]
    row = _rows(db)[tid]
    assert row["status"] == "active" and "override_unsupported" not in row["status_reason"]
    assert row["status_reason"].startswith("fee-on-transfer check skipped: the node refused the probe eth_call")
    assert r["counts"]["tokens"]["probe_skipped"] == 1


def test_verification_probe_transport_error_leaves_the_token_unverified(anvil, db, tmp_path):
    token = anvil.deploy_odd_token("fee", symbol="FEE")
    tid = _token(db, "FEE", token)
    proxy = FaultyRpc(anvil.url)
    try:
        env = cron_env(proxy.url, tmp_path)
        proxy.add("eth_getLogs", "502")
        r = run_cron(env, db)
        assert any(e.startswith("tokens: token FEE on chain 31337") for e in r["errors"]), r["errors"]
        assert _rows(db)[tid]["status"] == "unverified"
        proxy.clear()
        r = run_cron(env, db)
        assert not [e for e in r["errors"] if e.startswith("tokens")], r["errors"]
        assert _rows(db)[tid]["status"] == "rejected"
        assert "delivered 990000" in _rows(db)[tid]["status_reason"]
    finally:
        proxy.stop()
