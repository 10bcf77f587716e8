"""Several RPC endpoints per chain (cron/rpc_client.py): reads fail over on
timeouts, connection errors, 429, 5xx and garbage and stick to the endpoint that
works; JSON-RPC errors are answers (no failover); broadcasts go to every endpoint.

Real anvil node behind FaultyRpc proxies; a dead endpoint is a closed port."""
import json
from http.server import BaseHTTPRequestHandler

import pytest
from eth_account import Account

from cron.rpc_client import (ConfigError, RpcCallError, RpcClient, RpcTransportError, rpc_url_for,
                             split_urls, tx_hash_of)
from tests.chain import free_port, fresh_address
from tests.fake_rpc import FaultyRpc, serve_in_background

FAST = dict(timeout=0.5, retries=3, backoff=0.01)
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def dead_url(path="/v2/SECRETKEY"):
    return "http://127.0.0.1:%d%s" % (free_port(), path)


@pytest.fixture(scope="module")
def _proxy_pool(anvil):
    pool = []
    yield pool
    for p in pool:
        p.stop()


@pytest.fixture
def proxies(anvil, _proxy_pool):
    """make(hang) -> a FaultyRpc in front of anvil with no faults and nothing seen.
    Proxies are reused across the module's tests (stopping one takes half a second)."""
    free = list(_proxy_pool)

    def make(hang=2.0):
        if free:
            p = free.pop(0)
            p.clear()
            p.seen.clear()
        else:
            p = FaultyRpc(anvil.url)
            _proxy_pool.append(p)
        p.hang = hang
        return p
    yield make


def methods_seen(proxy):
    return [m for req in proxy.seen for m in req]


# ------------------------------------------------------------------ config ---


def test_urls_parsing_and_rpc_url_for():
    assert split_urls(" http://a:1 , ,http://b:2,, http://a:1 ") == ["http://a:1", "http://b:2"]
    assert split_urls(["http://a:1,http://b:2", " http://c:3 "]) == ["http://a:1", "http://b:2", "http://c:3"]
    env = {"ALCHEMY_API_KEY": "k3y", "RPC_URL_1": " https://x.example/v2/K1 , https://y.example/K2 ,"}
    assert rpc_url_for(1, env) == "https://x.example/v2/K1,https://y.example/K2"
    # only blanks: as if unset
    assert rpc_url_for(1, dict(env, RPC_URL_1=" , ")) == "https://eth-mainnet.g.alchemy.com/v2/k3y"
    c = RpcClient(rpc_url_for(1, env))
    assert c.urls_count == 2 and c.current_index == 0
    assert c.safe_urls == ["https://x.example/...", "https://y.example/..."]
    assert "K1" not in repr(c) and "K2" not in repr(c) and "+1 more" in repr(c)
    assert RpcClient(["http://a:1", "http://b:2"]).urls_count == 2
    assert RpcClient("http://a:1").urls_count == 1
    with pytest.raises(ConfigError):
        RpcClient(" , ")
    with pytest.raises(ConfigError):
        RpcClient([])
    with pytest.raises(ConfigError):
        RpcClient("http://a:1,ftp://nope")


# ------------------------------------------------------------------- reads ---


def test_dead_first_endpoint_fails_over_and_sticks(anvil, proxies):
    good = proxies()
    c = RpcClient([dead_url(), good.url], **FAST)
    assert c.block_number() == anvil.block_number()
    assert c.current_index == 1 and c.failovers == 1
    # the dead endpoint got 1 try + min(retries, 1) retry, the good one answered at once
    assert c.requests_sent == 3 and c.retries_done == 1
    assert methods_seen(good) == ["eth_blockNumber"]
    # sticky: later calls (single and batched) go straight to the working endpoint
    addrs = [fresh_address() for _ in range(3)]
    assert c.chain_id() == 31337
    assert c.get_balances(addrs) == {a: 0 for a in addrs}
    assert c.requests_sent == 5 and c.failovers == 1
    assert methods_seen(good) == ["eth_blockNumber", "eth_chainId"] + ["eth_getBalance"] * 3


@pytest.mark.parametrize("mode", ["500", "502", "429", "garbage", "timeout"])
def test_failing_first_endpoint_fails_over(anvil, proxies, mode):
    bad, good = proxies(hang=1.0), proxies()
    bad.add("*", mode)
    c = RpcClient([bad.url, good.url], **FAST)
    assert c.chain_id() == 31337
    assert len(bad.seen) == 2          # one retry on the failing endpoint, then the next
    assert methods_seen(good) == ["eth_chainId"]
    assert c.current_index == 1
    # a batch on the now-current endpoint
    to = fresh_address()
    anvil.send_eth(1, to, 4321)
    assert c.get_balances([to, fresh_address()])[to] == 4321
    assert len(bad.seen) == 2


def test_batch_fails_over(anvil, proxies):
    bad, good = proxies(), proxies()
    bad.add("eth_getBalance", "500")
    c = RpcClient([bad.url, good.url], **FAST)
    to = fresh_address()
    anvil.send_eth(1, to, 777)
    other = fresh_address()
    assert c.get_balances([to, other]) == {to: 777, other: 0}
    assert len(bad.seen) == 2 and good.seen == [["eth_getBalance", "eth_getBalance"]]
    assert c.get_balance(to) == 777 and c.current_index == 1 and len(bad.seen) == 2


def test_sticky_endpoint_failing_moves_on_round_robin(anvil, proxies):
    a, b = proxies(), proxies()
    a.add("*", "500")
    c = RpcClient([a.url, b.url], **FAST)
    assert c.chain_id() == 31337 and c.current_index == 1
    a.clear()
    b.add("*", "502")
    assert c.block_number() == anvil.block_number()
    assert c.current_index == 0 and c.failovers == 2


def test_every_endpoint_down_raises_transport_error(proxies):
    c = RpcClient([dead_url(), dead_url("/KEY2")], **FAST)
    with pytest.raises(RpcTransportError) as e:
        c.block_number()
    msg = str(e.value)
    assert "all 2 RPC endpoints" in msg
    assert "SECRETKEY" not in msg and "KEY2" not in msg
    assert c.requests_sent == 4      # 2 tries per endpoint
    with pytest.raises(RpcTransportError):
        c.batch([("eth_chainId", []), ("eth_blockNumber", [])], raise_errors=False)

    bad = proxies()
    bad.add("*", "500")
    c = RpcClient([dead_url(), bad.url + "/v2/SECRETKEY"], **FAST)
    with pytest.raises(RpcTransportError) as e:
        c.chain_id()
    assert e.value.http_status == 500 and "SECRETKEY" not in str(e.value)
    assert "all 2 RPC endpoints" in str(e.value)


def test_retries_per_endpoint_are_capped_but_single_url_keeps_them():
    c = RpcClient([dead_url(), dead_url(), dead_url()], timeout=0.5, retries=0, backoff=0.01)
    with pytest.raises(RpcTransportError, match="all 3 RPC endpoints"):
        c.chain_id()
    assert c.requests_sent == 3 and c.retries_done == 0
    one = RpcClient(dead_url(), timeout=0.5, retries=3, backoff=0.01)
    with pytest.raises(RpcTransportError) as e:
        one.chain_id()
    assert one.requests_sent == 4 and one.retries_done == 3
    assert "RPC endpoints" not in str(e.value)   # the one-endpoint message, as before


@pytest.fixture(scope="module")
def token(anvil):
    return anvil.deploy_token("Failover Token", "FOT", 6, 10 ** 12)


def test_rpc_call_errors_do_not_fail_over(anvil, proxies, token):
    first, second = proxies(), proxies()
    c = RpcClient([first.url, second.url], **FAST)
    # execution reverted (unknown selector, no fallback): an answer, not a failure
    with pytest.raises(RpcCallError):
        c.call("eth_call", [{"to": token.lower(), "data": "0xdeadbeef"}, "latest"])
    with pytest.raises(RpcCallError) as e:
        c.call("eth_noSuchMethod")
    assert e.value.code is not None
    first.add("eth_chainId", "rpc_error")
    with pytest.raises(RpcCallError, match="injected failure"):
        c.chain_id()
    res = c.batch([("eth_chainId", []), ("eth_noSuchMethod", [])], raise_errors=False)
    assert all(isinstance(r, RpcCallError) for r in res)   # whole-batch error object from `first`
    assert second.seen == [] and c.current_index == 0 and c.failovers == 0


class RateLimited:
    """Answers every JSON-RPC request with an Alchemy-style rate-limit error."""

    def __init__(self):
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                outer.requests += 1
                err = {"code": 429, "message": "Your app has exceeded its compute units per second capacity"}
                body = ([{"jsonrpc": "2.0", "id": r["id"], "error": err} for r in req] if isinstance(req, list)
                        else {"jsonrpc": "2.0", "id": req["id"], "error": err})
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd, self.url = serve_in_background(Handler)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_jsonrpc_rate_limit_fails_over(anvil, proxies):
    limited, good = RateLimited(), proxies()
    try:
        c = RpcClient([limited.url, good.url], **FAST)
        assert c.chain_id() == 31337 and limited.requests == 2 and c.current_index == 1
        c = RpcClient([limited.url, good.url], **FAST)
        to = fresh_address()
        assert c.get_balances([to]) == {to: 0} and limited.requests == 4
        c = RpcClient([limited.url, limited.url + "/other"], **FAST)
        with pytest.raises(RpcTransportError, match="all 2 RPC endpoints"):
            c.block_number()
    finally:
        limited.stop()


# -------------------------------------------------------------- broadcasts ---


def _signed(anvil, rpc, key_index, to, value, nonce=None, legacy=False):
    acct = Account.from_key(anvil.dev_key(key_index))
    tx = {"to": to, "value": value, "gas": 21000, "chainId": 31337,
          "nonce": rpc.get_transaction_count(acct.address) if nonce is None else nonce}
    if legacy:
        tx["gasPrice"] = rpc.gas_price() * 2
    else:
        fees = rpc.fee_data()
        tx.update(maxFeePerGas=fees.max_fee_per_gas, maxPriorityFeePerGas=fees.max_priority_fee_per_gas)
    return acct, Account.sign_transaction(tx, acct.key), tx["nonce"]


def _mined_once(anvil, rpc, tx_hash, sender, nonce_before):
    receipt = anvil.wait_receipt(tx_hash)
    assert int(receipt["status"], 16) == 1
    block = rpc.get_block(int(receipt["blockNumber"], 16))
    assert block["transactions"].count(tx_hash) == 1
    assert anvil.nonce(sender, "latest") == nonce_before + 1


@pytest.mark.parametrize("legacy", [False, True])
def test_broadcast_reaches_every_endpoint_and_is_mined_once(anvil, proxies, legacy):
    a, b = proxies(), proxies()
    c = RpcClient([a.url, b.url], **FAST)
    to = fresh_address()
    acct, signed, nonce = _signed(anvil, c, 7, to, 12345, legacy=legacy)
    expected = tx_hash_of(signed.raw_transaction)
    assert c.send_raw_transaction(signed.raw_transaction) == expected
    assert "eth_sendRawTransaction" in methods_seen(a)
    assert "eth_sendRawTransaction" in methods_seen(b)
    assert c.last_broadcast == (2, [])   # b answered "already known"/"nonce too low" for the same hash
    _mined_once(anvil, c, expected, acct.address, nonce)
    assert c.get_balance(to) == 12345
    # re-sending the same bytes (crash recovery) is success everywhere, no second payment
    assert c.send_raw_transaction("0x" + signed.raw_transaction.hex()) == expected
    assert c.last_broadcast == (2, [])
    assert c.get_balance(to) == 12345 and anvil.nonce(acct.address, "latest") == nonce + 1


@pytest.mark.parametrize("dead_first", [True, False])
def test_broadcast_succeeds_with_one_endpoint_down(anvil, proxies, dead_first):
    live = proxies()
    urls = [dead_url(), live.url] if dead_first else [live.url, dead_url()]
    c = RpcClient(urls, **FAST)
    to = fresh_address()
    acct, signed, nonce = _signed(anvil, RpcClient(anvil.url), 8, to, 999)
    h = c.send_raw_transaction(signed.raw_transaction)
    assert h == tx_hash_of(signed.raw_transaction)
    accepted, errors = c.last_broadcast
    assert accepted == 1 and len(errors) == 1 and isinstance(errors[0], RpcTransportError)
    assert methods_seen(live).count("eth_sendRawTransaction") == 1
    assert c.current_index == urls.index(live.url)   # a dead current endpoint is left
    _mined_once(anvil, c, h, acct.address, nonce)
    assert c.get_balance(to) == 999


def test_broadcast_garbage_reply_after_forwarding(anvil, proxies):
    a, b = proxies(), proxies()
    a.add("eth_sendRawTransaction", "forward_garbage", times=1)
    c = RpcClient([a.url, b.url], **FAST)
    to = fresh_address()
    acct, signed, nonce = _signed(anvil, c, 7, to, 31337)
    h = c.send_raw_transaction(signed.raw_transaction)
    assert c.last_broadcast == (2, [])
    _mined_once(anvil, c, h, acct.address, nonce)
    assert c.get_balance(to) == 31337


def test_broadcast_refused_everywhere_raises_the_node_error(anvil, proxies):
    a = proxies()
    direct = RpcClient(anvil.url)
    to = fresh_address()
    acct, signed, nonce = _signed(anvil, direct, 8, to, 5)
    direct.send_raw_transaction(signed.raw_transaction)
    anvil.wait_receipt(tx_hash_of(signed.raw_transaction))
    # a *different* tx reusing the mined nonce: the node's "nonce too low" wins over
    # the dead endpoint's transport error, whatever the order
    _, other, _ = _signed(anvil, direct, 8, to, 6, nonce=nonce)
    for urls in ([dead_url(), a.url], [a.url, dead_url()]):
        c = RpcClient(urls, **FAST)
        with pytest.raises(RpcCallError) as e:
            c.send_raw_transaction(other.raw_transaction)
        assert "nonce" in str(e.value).lower() and e.value.method == "eth_sendRawTransaction"
    # nobody reachable: transport error naming the count, no keys
    c = RpcClient([dead_url(), dead_url("/KEY2")], **FAST)
    with pytest.raises(RpcTransportError) as e:
        c.send_raw_transaction(other.raw_transaction)
    assert "all 2 RPC endpoints" in str(e.value) and "SECRETKEY" not in str(e.value)
    assert anvil.nonce(acct.address, "latest") == nonce + 1
    # any node's JSON-RPC error is preferred over transport errors
    a.add("eth_sendRawTransaction", "rpc_error")
    with pytest.raises(RpcCallError, match="injected failure"):
        RpcClient([dead_url(), a.url], **FAST).send_raw_transaction(other.raw_transaction)


def test_single_url_broadcast_unchanged(anvil, proxies):
    a = proxies()
    c = RpcClient(a.url, **FAST)
    to = fresh_address()
    acct, signed, nonce = _signed(anvil, c, 7, to, 42)
    h = c.send_raw_transaction(signed.raw_transaction)
    assert c.last_broadcast is None
    _mined_once(anvil, c, h, acct.address, nonce)
    assert c.send_raw_transaction(signed.raw_transaction) == h


# ----------------------------------------------------------- read helpers ---


def test_read_helpers(anvil, proxies, token):
    bad, good = proxies(), proxies()
    bad.add("*", "500")
    c = RpcClient([bad.url, good.url], **FAST)
    anvil.mine(3)
    hist = c.fee_history(3, "latest", (10, 50))
    assert isinstance(hist, dict) and len(hist["baseFeePerGas"]) == 4
    assert len(hist["reward"]) == 3 and len(hist["reward"][0]) == 2
    assert "baseFeePerGas" in c.fee_history(2, percentiles=())
    assert isinstance(c.max_priority_fee(), int)

    head = c.block_number()
    latest = c.get_block("latest")
    assert latest["number"] >= head and isinstance(latest["timestamp"], int)
    assert isinstance(latest["baseFeePerGas"], int) and isinstance(latest["hash"], str)
    assert latest["hash"].startswith("0x") and all(isinstance(t, str) for t in latest["transactions"])
    b = c.get_block(head)
    assert b["number"] == head and c.get_block(hex(head))["hash"] == b["hash"]
    assert c.get_block(head + 10 ** 6) is None

    holder = fresh_address()
    tx_hash = anvil.token_transfer(token, 0, holder, 55)
    receipt = c.get_transaction_receipt(tx_hash)
    n = receipt["blockNumber"]
    full = c.get_block(n, full=True)
    assert any(isinstance(t, dict) and t["hash"] == tx_hash for t in full["transactions"])
    logs = c.get_logs({"address": token, "fromBlock": n, "toBlock": n,
                       "topics": [TRANSFER_TOPIC, None, "0x" + holder.lower()[2:].rjust(64, "0")]})
    assert len(logs) == 1 and logs[0]["transactionHash"] == tx_hash
    assert int(logs[0]["data"], 16) == 55
    assert c.get_logs({"address": token, "fromBlock": hex(max(n - 5, 0)), "toBlock": n - 1,
                       "topics": [TRANSFER_TOPIC, None, "0x" + holder.lower()[2:].rjust(64, "0")]}) == []
    assert c.current_index == 1 and len(bad.seen) == 2   # failed over once, then sticky
    with pytest.raises(ValueError):
        c.get_block(-1)
