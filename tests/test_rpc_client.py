"""cron/rpc_client.py and cron/prices_client.py against a real anvil node, and against a scripted
local HTTP server for the failure modes a real provider shows (timeouts, 429,
5xx, garbage, JSON-RPC errors) and for the Prices API."""
import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from eth_account import Account

from cron.prices_client import PricesClient
from cron.rpc_client import (ConfigError, RpcCallError, RpcClient, RpcError, RpcTransportError,
                             decode_string_or_bytes32, rpc_url_for, tx_hash_of)
from tests.chain import fresh_address

# ---------------------------------------------------------------- anvil ----


@pytest.fixture(scope="module")
def rpc(anvil):
    client = RpcClient(anvil.url, timeout=10, retries=2, backoff=0.05)
    yield client
    client.close()


@pytest.fixture(scope="module")
def tokens(anvil):
    """A 6-decimal and an 18-decimal TestToken, minted to dev account 0."""
    return {
        6: anvil.deploy_token("USD Coin", "USDC", 6, 10 ** 15),
        18: anvil.deploy_token("Dai Stablecoin", "DAI", 18, 10 ** 27),
    }


def test_chain_basics(rpc, anvil):
    assert rpc.chain_id() == 31337
    before = rpc.block_number()
    anvil.mine(2)
    assert rpc.block_number() == before + 2
    assert rpc.gas_price() > 0
    fees = rpc.fee_data()
    assert fees.eip1559 and fees.base_fee_per_gas > 0
    assert fees.max_fee_per_gas == 2 * fees.base_fee_per_gas + fees.max_priority_fee_per_gas
    assert isinstance(fees.max_fee_per_gas, int)


def test_eth_balances_single_and_batched(rpc, anvil):
    addrs = [fresh_address() for _ in range(7)]
    amounts = [10 ** 18, 1, 123456789 * 10 ** 9, 0, 5 * 10 ** 17, 0, 42]
    start_block = rpc.block_number()
    for a, amount in zip(addrs, amounts):
        if amount:
            anvil.send_eth(1, a, amount)
    anvil.mine(3)
    for a, amount in zip(addrs, amounts):
        assert rpc.get_balance(a) == amount
        assert rpc.get_balance(a.lower()) == amount
    sent_before = rpc.requests_sent
    got = rpc.get_balances(addrs)
    assert got == dict(zip(addrs, amounts))
    assert rpc.requests_sent == sent_before + 1  # one batch
    # chunked batches, and balances at an older block (confirmation depth)
    small = RpcClient(anvil.url, batch_size=3, retries=0)
    assert small.get_balances(addrs) == dict(zip(addrs, amounts))
    assert small.requests_sent == 3
    assert small.get_balances(addrs, start_block) == {a: 0 for a in addrs}
    assert small.get_balances([]) == {}


@pytest.mark.parametrize("decimals", [6, 18])
def test_erc20_balances(rpc, anvil, tokens, decimals):
    token = tokens[decimals]
    holders = [fresh_address() for _ in range(5)]
    amounts = [10 ** decimals, 1, 0, 25 * 10 ** decimals + 3, 7]
    for h, amount in zip(holders, amounts):
        if amount:
            anvil.token_transfer(token, 0, h, amount)
    for h, amount in zip(holders, amounts):
        assert rpc.erc20_balance(token, h) == amount == anvil.token_balance(token, h)
    assert rpc.erc20_balances(token, holders) == dict(zip(holders, amounts))
    assert rpc.erc20_decimals(token) == decimals
    assert rpc.erc20_symbol(token) == ("USDC" if decimals == 6 else "DAI")
    assert rpc.erc20_name(token) in ("USD Coin", "Dai Stablecoin")


def test_erc20_on_non_contract_is_an_error(rpc):
    eoa = fresh_address()
    with pytest.raises(RpcError):
        rpc.erc20_decimals(eoa)
    with pytest.raises(RpcError):
        rpc.erc20_symbol(eoa)
    with pytest.raises(RpcError):
        rpc.erc20_balance(eoa, fresh_address())


def _signed_transfer(rpc, anvil, key_index, to, value, nonce=None):
    acct = Account.from_key(anvil.dev_key(key_index))
    fees = rpc.fee_data()
    tx = {"to": to, "value": value, "gas": 21000, "chainId": rpc.chain_id(),
          "nonce": rpc.get_transaction_count(acct.address) if nonce is None else nonce,
          "maxFeePerGas": fees.max_fee_per_gas, "maxPriorityFeePerGas": fees.max_priority_fee_per_gas}
    return acct, Account.sign_transaction(tx, acct.key), tx["nonce"]


def test_send_raw_transaction_and_receipt(rpc, anvil):
    to = fresh_address()
    acct, signed, nonce = _signed_transfer(rpc, anvil, 3, to, 12345)
    expected = "0x" + signed.hash.hex().removeprefix("0x")
    assert tx_hash_of(signed.raw_transaction) == expected
    tx_hash = rpc.send_raw_transaction(signed.raw_transaction)
    assert tx_hash == expected
    receipt = None
    for _ in range(100):
        receipt = rpc.get_transaction_receipt(tx_hash)
        if receipt:
            break
        time.sleep(0.02)
    assert receipt["status"] == 1 and isinstance(receipt["blockNumber"], int)
    assert receipt["gasUsed"] == 21000
    assert rpc.get_balance(to) == 12345
    # Re-sending the very same bytes (crash recovery) is success, not a new payment.
    assert rpc.send_raw_transaction("0x" + signed.raw_transaction.hex()) == tx_hash
    assert rpc.send_raw_transaction(signed.raw_transaction.hex()) == tx_hash
    assert rpc.get_balance(to) == 12345
    # A *different* transaction reusing the nonce is a real error.
    _, other, _ = _signed_transfer(rpc, anvil, 3, to, 999, nonce=nonce)
    with pytest.raises(RpcCallError) as e:
        rpc.send_raw_transaction(other.raw_transaction)
    assert "nonce" in str(e.value).lower()
    assert rpc.get_transaction_receipt("0x" + "00" * 32) is None


def test_already_known_in_mempool(rpc, anvil):
    # With automine off the tx waits in the pool; re-sending it is "already known".
    anvil.rpc("evm_setAutomine", False)
    try:
        to = fresh_address()
        _, signed, _ = _signed_transfer(rpc, anvil, 4, to, 777)
        h = rpc.send_raw_transaction(signed.raw_transaction)
        assert rpc.send_raw_transaction(signed.raw_transaction) == h
        assert rpc.get_transaction_receipt(h) is None
        anvil.mine(1)
    finally:
        anvil.rpc("evm_setAutomine", True)
    assert rpc.get_transaction_receipt(h)["status"] == 1
    assert rpc.get_balance(to) == 777


def test_batch_item_errors(rpc):
    calls = [("eth_chainId", []), ("eth_noSuchMethod", []), ("eth_blockNumber", None)]
    res = rpc.batch(calls, raise_errors=False)
    assert res[0] == hex(31337)
    assert isinstance(res[1], RpcCallError) and res[1].method == "eth_noSuchMethod"
    assert res[2].startswith("0x")
    with pytest.raises(RpcCallError):
        rpc.batch(calls)
    with pytest.raises(RpcCallError) as e:
        rpc.call("eth_noSuchMethod")
    assert e.value.code is not None


# ---------------------------------------------------------- fake server ----


class FakeServer:
    """Scripted HTTP server: each request takes the next step of the script
    (the last step repeats). A step is a dict: status, body (bytes, or a
    callable(request_json) -> JSON-able), headers, delay (seconds)."""

    def __init__(self):
        self.steps = []
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    req = json.loads(raw) if raw else None
                except ValueError:
                    req = None
                outer.requests.append({"method": self.command, "path": self.path, "json": req})
                i = min(len(outer.requests), len(outer.steps)) - 1
                step = outer.steps[i]
                if step.get("delay"):
                    time.sleep(step["delay"])
                body = step.get("body", b"")
                if callable(body):
                    body = json.dumps(body(req)).encode()
                try:
                    self.send_response(step.get("status", 200))
                    for k, v in step.get("headers", {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # client gave up (timeout test)

            do_GET = do_POST = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def script(self, *steps):
        self.steps = list(steps)
        self.requests = []

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def ok(result):
    def build(req):
        if isinstance(req, list):
            return [{"jsonrpc": "2.0", "id": r["id"], "result": result} for r in req]
        return {"jsonrpc": "2.0", "id": req["id"], "result": result}
    return build


def rpc_error(code, message):
    return lambda req: {"jsonrpc": "2.0", "id": req["id"], "error": {"code": code, "message": message}}


@pytest.fixture
def fake():
    server = FakeServer()
    yield server
    server.stop()


def client_for(fake, **kw):
    kw.setdefault("retries", 3)
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 2)
    return RpcClient(fake.url + "/v2/SECRETKEY", **kw)


def test_timeout_then_success(fake):
    fake.script({"delay": 0.6, "body": ok("0x1")}, {"body": ok("0x2")})
    c = client_for(fake, timeout=0.2)
    assert c.block_number() == 2
    assert c.retries_done == 1 and len(fake.requests) == 2


def test_timeout_forever(fake):
    fake.script({"delay": 0.4, "body": ok("0x1")})
    c = client_for(fake, timeout=0.1, retries=2)
    with pytest.raises(RpcTransportError) as e:
        c.block_number()
    assert "timed out" in str(e.value)
    assert c.requests_sent == 3 and c.retries_done == 2


def test_429_then_success_honours_retry_after(fake):
    fake.script({"status": 429, "headers": {"Retry-After": "0.3"}, "body": b"slow down"},
                {"body": ok("0x10")})
    slept = []
    c = client_for(fake, sleep=lambda s: slept.append(s))
    assert c.block_number() == 16
    assert slept == [0.3] and len(fake.requests) == 2


def test_429_with_long_retry_after_gives_up_at_once(fake):
    fake.script({"status": 429, "headers": {"Retry-After": "3600"}, "body": b"{}"})
    c = client_for(fake)
    with pytest.raises(RpcTransportError) as e:
        c.block_number()
    assert e.value.http_status == 429 and "Retry-After" in str(e.value)
    assert len(fake.requests) == 1


def test_500_then_success(fake):
    fake.script({"status": 500, "body": b"oops"}, {"status": 503, "body": b""}, {"body": ok("0x7a69")})
    c = client_for(fake)
    assert c.chain_id() == 31337
    assert c.retries_done == 2 and len(fake.requests) == 3


def test_5xx_forever(fake):
    fake.script({"status": 502, "body": b"<html>bad gateway</html>"})
    c = client_for(fake, retries=2)
    with pytest.raises(RpcTransportError) as e:
        c.chain_id()
    assert e.value.http_status == 502 and "502" in str(e.value)
    assert len(fake.requests) == 3
    assert "SECRETKEY" not in str(e.value)


def test_garbage_body(fake):
    fake.script({"body": b"<html>not json</html>"})
    c = client_for(fake, retries=2)
    with pytest.raises(RpcTransportError) as e:
        c.block_number()
    assert "non-JSON" in str(e.value)
    assert len(fake.requests) == 3
    fake.script({"body": b"\xff\xfe garbage"}, {"body": ok("0x5")})
    assert c.block_number() == 5


def test_malformed_jsonrpc_reply(fake):
    fake.script({"body": lambda req: {"hello": "world"}})
    c = client_for(fake, retries=1)
    with pytest.raises(RpcTransportError):
        c.block_number()
    fake.script({"body": ok("not-hex")})
    with pytest.raises(RpcError):
        c.block_number()


def test_jsonrpc_error_is_not_retried(fake):
    fake.script({"body": rpc_error(-32000, "execution reverted")})
    c = client_for(fake)
    with pytest.raises(RpcCallError) as e:
        c.call("eth_call", [{}, "latest"])
    assert e.value.code == -32000 and "execution reverted" in str(e.value)
    assert e.value.method == "eth_call"
    assert len(fake.requests) == 1


def test_jsonrpc_rate_limit_is_retried(fake):
    fake.script({"body": rpc_error(429, "Your app has exceeded its compute units per second capacity")},
                {"body": ok("0x3")})
    c = client_for(fake)
    assert c.block_number() == 3 and len(fake.requests) == 2


def test_http_4xx_not_retried(fake):
    fake.script({"status": 401, "body": b'{"error":"invalid api key"}'})
    c = client_for(fake)
    with pytest.raises(RpcTransportError) as e:
        c.block_number()
    assert e.value.http_status == 401 and len(fake.requests) == 1


def test_connection_refused():
    from tests.chain import free_port
    c = RpcClient("http://127.0.0.1:%d/" % free_port(), retries=2, backoff=0.01, timeout=1)
    with pytest.raises(RpcTransportError):
        c.block_number()
    assert c.requests_sent == 3


def test_batch_retries_only_rate_limited_items_and_matches_ids(fake):
    def first(req):
        out = []
        for r in reversed(req):  # out of order on purpose
            if r["params"] and r["params"][0] == "0x" + "bb" * 20:
                out.append({"jsonrpc": "2.0", "id": r["id"], "error": {"code": 429, "message": "rate limit"}})
            else:
                out.append({"jsonrpc": "2.0", "id": r["id"], "result": hex(int(r["params"][0][-2:], 16))})
        return out
    fake.script({"body": first}, {"body": ok("0xbb")})
    c = client_for(fake)
    addrs = ["0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20]
    assert c.get_balances(addrs) == {addrs[0]: 0xaa, addrs[1]: 0xbb, addrs[2]: 0xcc}
    assert len(fake.requests) == 2
    assert len(fake.requests[1]["json"]) == 1  # only the rate-limited item again


def test_batch_whole_error_and_missing_answers(fake):
    fake.script({"body": lambda req: {"jsonrpc": "2.0", "id": None,
                                      "error": {"code": -32600, "message": "batch too large"}}})
    c = client_for(fake, retries=1)
    res = c.batch([("eth_chainId", []), ("eth_blockNumber", [])], raise_errors=False)
    assert all(isinstance(r, RpcCallError) for r in res)
    fake.script({"body": lambda req: []})
    with pytest.raises(RpcTransportError):
        c.batch([("eth_chainId", [])])


def test_send_raw_transaction_already_known_is_success(fake):
    raw = "0x02f86b827a6980843b9aca00847735940082520894" + "11" * 20 + "0180c0"
    fake.script({"body": rpc_error(-32000, "already known")})
    c = client_for(fake)
    assert c.send_raw_transaction(raw) == tx_hash_of(raw)
    # "nonce too low" for a hash the node does not know is a real error
    fake.script({"body": rpc_error(-32000, "nonce too low")}, {"body": ok(None)})
    with pytest.raises(RpcCallError):
        c.send_raw_transaction(raw)
    # node returning a different hash is refused
    fake.script({"body": ok("0x" + "00" * 32)})
    with pytest.raises(RpcError):
        c.send_raw_transaction(raw)


def test_fee_data_falls_back_to_legacy(fake):
    def legacy(req):
        out = []
        for r in req:
            if r["method"] == "eth_gasPrice":
                out.append({"jsonrpc": "2.0", "id": r["id"], "result": hex(7 * 10 ** 9)})
            else:
                out.append({"jsonrpc": "2.0", "id": r["id"],
                            "error": {"code": -32601, "message": "method not found"}})
        return out
    fake.script({"body": legacy})
    fees = client_for(fake).fee_data()
    assert not fees.eip1559 and fees.gas_price == 7 * 10 ** 9

    def no_priority_method(req):
        out = []
        for r in req:
            res = {"eth_gasPrice": hex(30), "eth_feeHistory": {
                "baseFeePerGas": ["0xa", "0xa", "0xa", "0xa", "0xa", "0x14"],
                "reward": [["0x1"], ["0x2"], ["0x3"], ["0x4"], ["0x5"]]}}.get(r["method"])
            if res is None:
                out.append({"jsonrpc": "2.0", "id": r["id"], "error": {"code": -32601, "message": "nope"}})
            else:
                out.append({"jsonrpc": "2.0", "id": r["id"], "result": res})
        return out
    fake.script({"body": no_priority_method})
    fees = client_for(fake).fee_data()
    assert fees.base_fee_per_gas == 20 and fees.max_priority_fee_per_gas == 3
    assert fees.max_fee_per_gas == 43


def test_bad_addresses_rejected_before_any_request(fake):
    fake.script({"body": ok("0x1")})
    c = client_for(fake)
    for bad in ("0x" + "1_" * 20, "0x" + "g" * 40, "0x123", None, "1" * 42):
        with pytest.raises(ValueError):
            c.get_balance(bad)
        with pytest.raises(ValueError):
            c.erc20_balance("0x" + "aa" * 20, bad)
    assert fake.requests == []


def test_decoders():
    sym = "0x" + b"MKR".ljust(32, b"\0").hex()
    assert decode_string_or_bytes32(sym) == "MKR"
    abi = "0x" + (32).to_bytes(32, "big").hex() + (4).to_bytes(32, "big").hex() + b"USDC".ljust(32, b"\0").hex()
    assert decode_string_or_bytes32(abi) == "USDC"
    for bad in ("0x", "0x1234", "0x" + (999).to_bytes(32, "big").hex() * 2, None, "zz"):
        with pytest.raises(RpcError):
            decode_string_or_bytes32(bad)


def test_rpc_url_for():
    env = {"ALCHEMY_API_KEY": "k3y"}
    assert rpc_url_for(1, env) == "https://eth-mainnet.g.alchemy.com/v2/k3y"
    assert rpc_url_for(11155111, env) == "https://eth-sepolia.g.alchemy.com/v2/k3y"
    assert rpc_url_for(8453, env) == "https://base-mainnet.g.alchemy.com/v2/k3y"
    assert rpc_url_for(137, env) == "https://polygon-mainnet.g.alchemy.com/v2/k3y"
    assert rpc_url_for(1, dict(env, RPC_URL_1="http://node:8545")) == "http://node:8545"
    with pytest.raises(ConfigError, match="RPC_URL_1 or ALCHEMY_API_KEY"):
        rpc_url_for(1, {})
    with pytest.raises(ConfigError, match="ALLOW_DEV_CHAIN"):
        rpc_url_for(31337, env)
    assert rpc_url_for(31337, {"ALLOW_DEV_CHAIN": "1"}) == "http://127.0.0.1:8545"
    assert rpc_url_for(31337, {"ALLOW_DEV_CHAIN": "1", "RPC_URL_31337": "http://x:1"}) == "http://x:1"
    with pytest.raises(ConfigError):
        rpc_url_for(56, env)
    with pytest.raises(ConfigError):
        RpcClient("ftp://nope")
    assert "k3y" not in repr(RpcClient(rpc_url_for(1, env)))


# ------------------------------------------------------------ prices API ----


def prices_reply(req_symbols):
    data = []
    for s in req_symbols:
        if s == "NOPE":
            data.append({"symbol": s, "prices": [], "error": {"message": "Token not found"}})
        else:
            data.append({"symbol": s, "prices": [{"currency": "usd",
                                                  "value": {"ETH": "3456.789012345678", "USDC": "0.9998"}.get(s, "1.5"),
                                                  "lastUpdatedAt": "2025-01-01T00:00:00Z"}],
                         "error": None})
    return {"data": data}


def test_prices_by_symbols(fake):
    from urllib.parse import parse_qs, urlsplit
    seen = []

    def handler(req):
        q = parse_qs(urlsplit(fake.requests[-1]["path"]).query)
        seen.append(q["symbols"])
        return prices_reply(q["symbols"])
    fake.script({"status": 503, "body": b""}, {"body": handler})
    p = PricesClient("unused", base_url=fake.url + "/prices/v1/KEY", backoff=0.01)
    got = p.by_symbols(["ETH", "USDC", "NOPE"])
    assert got == {"ETH": Decimal("3456.789012345678"), "USDC": Decimal("0.9998"), "NOPE": None}
    assert all(isinstance(v, Decimal) for v in got.values() if v is not None)
    assert fake.requests[-1]["method"] == "GET"
    assert fake.requests[-1]["path"].startswith("/prices/v1/KEY/tokens/by-symbol?symbols=ETH&symbols=USDC")
    assert len(fake.requests) == 2  # one retry after the 503
    q = p.quotes_by_symbols(["ETH", "NOPE"])
    assert q["ETH"].last_updated_at == "2025-01-01T00:00:00Z"
    assert q["NOPE"].usd is None and q["NOPE"].error == "Token not found"
    # more than 25 symbols are split across requests
    many = ["T%d" % i for i in range(30)]
    fake.script({"body": handler})
    seen.clear()
    assert set(p.by_symbols(many)) == set(many)
    assert [len(x) for x in seen] == [25, 5]


def test_prices_by_addresses(fake):
    usdc = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"

    def handler(req):
        return {"data": [
            {"network": a["network"], "address": a["address"].lower(),
             "prices": [] if a["network"] == "base-mainnet" else
             [{"currency": "usd", "value": "1.0001", "lastUpdatedAt": "2025-01-01T00:00:00Z"}],
             "error": "no price" if a["network"] == "base-mainnet" else None}
            for a in req["addresses"]]}
    fake.script({"body": handler})
    p = PricesClient("unused", base_url=fake.url + "/base")
    got = p.by_addresses([("eth-mainnet", usdc), ("base-mainnet", usdc)])
    assert got == {("eth-mainnet", usdc): Decimal("1.0001"), ("base-mainnet", usdc): None}
    r = fake.requests[-1]
    assert r["method"] == "POST" and r["path"] == "/base/tokens/by-address"
    assert r["json"] == {"addresses": [{"network": "eth-mainnet", "address": usdc},
                                       {"network": "base-mainnet", "address": usdc}]}


def test_prices_bad_replies(fake):
    p = PricesClient("unused", base_url=fake.url, retries=1, backoff=0.01)
    fake.script({"body": b"<html>"})
    with pytest.raises(RpcTransportError):
        p.by_symbols(["ETH"])
    fake.script({"body": lambda req: {"unexpected": True}})
    with pytest.raises(RpcTransportError):
        p.by_symbols(["ETH"])
    fake.script({"body": lambda req: {"data": [{"symbol": "ETH", "prices": [
        {"currency": "usd", "value": "NaN"}]}, {"symbol": "BTC", "prices": [
            {"currency": "usd", "value": "-1"}]}]}})
    assert p.by_symbols(["ETH", "BTC"]) == {"ETH": None, "BTC": None}
    env = {"ALCHEMY_API_KEY": "abc", "ALCHEMY_PRICES_URL": fake.url + "/x"}
    assert PricesClient.from_env(env)._base_path == "/x"
    assert PricesClient.from_env({"ALCHEMY_API_KEY": "abc"})._base_path == "/prices/v1/abc"
    with pytest.raises(ConfigError):
        PricesClient.from_env({})
