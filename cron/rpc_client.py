"""An Ethereum JSON-RPC client (standard library only); the Prices API client over the same
HTTP layer is cron/prices_client.py.

Used only by the cron layer: the web process never talks to a provider.

Error model
-----------
RpcError                base class; ``str(e)`` is a one-line message that never
                        contains the provider URL (Alchemy puts the API key in it).
  RpcTransportError     no usable reply after all retries: timeout, connection
                        error, HTTP 429/5xx, other HTTP status, non-JSON body.
                        ``http_status`` is set when known.
  RpcCallError          the node answered with a JSON-RPC error object
                        (``code``, ``data``, ``method``).

Retries: timeouts, connection errors, HTTP 429, HTTP 5xx, garbage (non-JSON)
replies and JSON-RPC rate-limit errors are retried ``retries`` times with
exponential backoff (``backoff * 2**attempt`` plus a little jitter). A
Retry-After header up to ``max_retry_after`` seconds is honoured; a longer one
ends the retries at once (the provider asked us to stay away; the next cron
run tries again). Other HTTP 4xx (bad key, bad request) are not retried.

Several endpoints: RpcClient takes one URL, a comma-separated string of URLs
(RPC_URL_<CHAIN_ID>=https://a/...,https://b/...) or a list. Reads (call, batch
and everything built on them) go to the current endpoint; a transport failure
there after its retries (timeout, connection error, HTTP 429/5xx/other status,
garbage, a JSON-RPC rate limit) moves on to the next endpoint, which then stays
the current one for later calls (sticky). With several endpoints each gets
min(retries, 1) retries, so a dead one costs little; RpcTransportError is raised
only when every endpoint failed, naming how many. JSON-RPC error replies
(RpcCallError: reverted, unknown method, ...) are answers and never fail over.
send_raw_transaction broadcasts to every endpoint (see there). With a single
URL everything behaves exactly as a one-endpoint client always did.

Connections are kept alive between requests; a client is meant for one thread.
"""
import http.client
import json
import random
import re
import ssl
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from itertools import count
from typing import Optional

from lib.chains import CHAINS, DEV_CHAIN_ID, allow_dev_from_env, keccak256

USER_AGENT = "escrow-marketplace-cron/1"
DEFAULT_DEV_RPC_URL = "http://127.0.0.1:8545"


class RpcError(Exception):
    def __init__(self, message, code=None, data=None, method=None, http_status=None):
        super().__init__(message)
        self.code = code
        self.data = data
        self.method = method
        self.http_status = http_status


class RpcTransportError(RpcError):
    pass


class RpcCallError(RpcError):
    pass


class ConfigError(ValueError):
    """Missing or invalid provider settings."""


class _Retry(Exception):
    """One attempt failed in a retryable way; ``final`` is raised when retries run out."""

    def __init__(self, final, retry_after=None):
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after


def redact_url(url):
    """scheme://host[:port] only: paths and queries may carry API keys."""
    try:
        p = urllib.parse.urlsplit(url)
        return "%s://%s/..." % (p.scheme, p.hostname + (":%d" % p.port if p.port else ""))
    except Exception:
        return "<url>"


def snippet(body, n=200):
    text = body[:n].decode("utf-8", "replace") if isinstance(body, bytes) else str(body)[:n]
    return " ".join(text.split())


def _parse_retry_after(value):
    # Only the delta-seconds form; an HTTP-date falls back to our own backoff.
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None


class HttpJson:
    """Keep-alive HTTP(S) transport with the retry policy described above."""

    def __init__(self, url, timeout=10, retries=4, backoff=0.5, max_retry_after=10.0,
                 sleep=time.sleep):
        p = urllib.parse.urlsplit(url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise ConfigError("provider URL must be http(s)://host/...: %s" % redact_url(url))
        self._scheme = p.scheme
        self._host = p.hostname
        self._port = p.port
        self._base_path = p.path or "/"
        self._base_query = p.query
        self.safe_url = redact_url(url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._conn = None
        self.requests_sent = 0   # HTTP requests attempted (tests and stats)
        self.retries_done = 0    # retries after a failed attempt

    def __repr__(self):
        return "<%s %s>" % (type(self).__name__, self.safe_url)

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _connection(self):
        if self._conn is None:
            if self._scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout,
                    context=ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        return self._conn

    def _path(self, suffix="", query=None):
        path = self._base_path
        if suffix:
            path = path.rstrip("/") + suffix
        q = "&".join(x for x in (self._base_query, query) if x)
        return path + ("?" + q if q else "")

    def _exchange(self, method, path, body):
        """One HTTP exchange -> (status, headers, bytes). Reconnects once on a stale keep-alive."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for fresh_try in (0, 1):
            reused = self._conn is not None
            conn = self._connection()
            try:
                self.requests_sent += 1
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self.close()
                if reused and not fresh_try:
                    continue  # server closed an idle keep-alive connection: not a real failure
                raise _Retry(RpcTransportError("connection to %s failed: %s"
                                               % (self.safe_url, type(e).__name__)))
            except (OSError, http.client.HTTPException) as e:
                self.close()
                kind = "timed out" if isinstance(e, TimeoutError) else "failed"
                raise _Retry(RpcTransportError("request to %s %s after %ss: %s"
                                               % (self.safe_url, kind, self.timeout,
                                                  type(e).__name__ if kind == "failed" else "timeout")))
            if resp.will_close:
                self.close()
            return resp.status, resp.headers, data
        raise AssertionError("unreachable")

    def _attempt_json(self, method, path, payload):
        """One attempt: HTTP exchange + status/JSON checks. Raises _Retry or RpcTransportError."""
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        status, headers, data = self._exchange(method, path, body)
        if status == 429 or status >= 500:
            err = RpcTransportError("%s answered HTTP %d: %s" % (self.safe_url, status, snippet(data)),
                                    http_status=status)
            raise _Retry(err, _parse_retry_after(headers.get("Retry-After")))
        if status != 200:
            raise RpcTransportError("%s answered HTTP %d: %s" % (self.safe_url, status, snippet(data)),
                                    http_status=status)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _Retry(RpcTransportError("%s sent a non-JSON reply: %r"
                                           % (self.safe_url, snippet(data, 80)), http_status=status))

    def _with_retries(self, attempt):
        """Run attempt() until it returns, retrying on _Retry per the policy."""
        n = 0
        while True:
            try:
                return attempt()
            except _Retry as r:
                if n >= self.retries:
                    raise r.final from None
                if r.retry_after is not None:
                    if r.retry_after > self.max_retry_after:
                        r.final.args = ("%s (Retry-After %ss; not waiting)" % (r.final, r.retry_after),)
                        raise r.final from None
                    delay = r.retry_after
                else:
                    delay = self.backoff * (2 ** n)
                    delay += random.uniform(0, delay * 0.1)
                n += 1
                self.retries_done += 1
                self._sleep(delay)


def _is_rate_limit_error(err):
    if not isinstance(err, dict):
        return False
    msg = str(err.get("message", "")).lower()
    return err.get("code") == 429 or "rate limit" in msg or "compute units" in msg \
        or "too many requests" in msg


def _limit_error(err, method):
    """RpcCallError for a JSON-RPC rate-limit reply: the endpoint failed, not the call."""
    e = _call_error(err, method)
    e.rate_limited = True
    return e


def _endpoint_failed(exc):
    """True when exc means "this endpoint gave no usable answer" (fail over)."""
    return isinstance(exc, RpcTransportError) or getattr(exc, "rate_limited", False)


def split_urls(urls):
    """List of URLs from "u1, u2" or an iterable of such strings: blanks stripped and
    dropped, duplicates removed (order kept)."""
    items = [urls] if isinstance(urls, str) else list(urls or [])
    out = []
    for item in items:
        for u in str(item).split(","):
            u = u.strip()
            if u and u not in out:
                out.append(u)
    return out


def _call_error(err, method):
    if not isinstance(err, dict):
        return RpcCallError("%s failed: malformed error %r" % (method, err), method=method)
    return RpcCallError("%s failed: %s (code %s)" % (method, err.get("message"), err.get("code")),
                        code=err.get("code"), data=err.get("data"), method=method)


# --- value helpers -----------------------------------------------------------

_BLOCK_TAGS = ("latest", "pending", "safe", "finalized", "earliest")


def block_param(block):
    """int -> hex quantity; tags and hex strings pass through."""
    if isinstance(block, bool):
        raise ValueError("bad block: %r" % (block,))
    if isinstance(block, int):
        if block < 0:
            raise ValueError("negative block number")
        return hex(block)
    if isinstance(block, str) and (block in _BLOCK_TAGS or block.startswith("0x")):
        return block
    raise ValueError("bad block: %r" % (block,))


def hex_to_int(value, what="quantity"):
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RpcError("expected a hex %s, got %r" % (what, value))
    try:
        return int(value, 16) if value != "0x" else 0
    except ValueError:
        raise RpcError("expected a hex %s, got %r" % (what, value)) from None


_ADDR_RE = re.compile(r"0x[0-9a-fA-F]{40}")


def _addr(addr):
    # Any case accepted: callers pass stored, already validated addresses.
    if not (isinstance(addr, str) and _ADDR_RE.fullmatch(addr)):
        raise ValueError("not an address: %r" % (addr,))
    return addr.lower()


def _word(addr):
    return _addr(addr)[2:].rjust(64, "0")


def _hexbytes(value, what):
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise RpcError("expected hex data from %s, got %r" % (what, value))
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise RpcError("expected hex data from %s, got %r" % (what, value)) from None


def decode_uint256(value, what="eth_call"):
    data = _hexbytes(value, what)
    if len(data) < 32:
        raise RpcError("%s returned %d bytes, expected a uint256 (not a contract?)" % (what, len(data)))
    return int.from_bytes(data[:32], "big")


def decode_string_or_bytes32(value, what="eth_call"):
    """ABI string, or the bytes32 some old tokens (MKR, SAI) return for symbol()/name()."""
    data = _hexbytes(value, what)
    if len(data) == 32:
        return data.rstrip(b"\x00").decode("utf-8", "replace")
    if len(data) >= 64:
        offset = int.from_bytes(data[:32], "big")
        if offset + 32 <= len(data):
            length = int.from_bytes(data[offset:offset + 32], "big")
            if offset + 32 + length <= len(data):
                return data[offset + 32:offset + 32 + length].decode("utf-8", "replace")
    raise RpcError("%s returned %d bytes that are neither an ABI string nor bytes32" % (what, len(data)))


def tx_hash_of(raw_tx):
    """Hash of a signed raw transaction (keccak of the bytes as broadcast)."""
    raw = raw_tx if isinstance(raw_tx, (bytes, bytearray)) else bytes.fromhex(
        raw_tx[2:] if raw_tx.startswith("0x") else raw_tx)
    return "0x" + keccak256(bytes(raw)).hex()


# selectors
SEL_BALANCE_OF = "0x70a08231"
SEL_DECIMALS = "0x313ce567"
SEL_SYMBOL = "0x95d89b41"
SEL_NAME = "0x06fdde03"

TRANSFER_TOPIC = "0x" + keccak256(b"Transfer(address,address,uint256)").hex()


@dataclass(frozen=True)
class FeeData:
    """Fee suggestion in wei. eip1559 False -> use gas_price (legacy type-0 tx)."""
    gas_price: int
    base_fee_per_gas: Optional[int] = None
    max_priority_fee_per_gas: Optional[int] = None
    max_fee_per_gas: Optional[int] = None

    @property
    def eip1559(self):
        return self.base_fee_per_gas is not None


_RECEIPT_INT_FIELDS = ("status", "blockNumber", "gasUsed", "effectiveGasPrice",
                       "cumulativeGasUsed", "transactionIndex", "type")

_BLOCK_INT_FIELDS = ("number", "timestamp", "baseFeePerGas", "gasLimit", "gasUsed")

_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown",
                  "already exists", "already in mempool")
_NONCE_TOO_LOW = ("nonce too low", "nonce is too low", "oldnonce", "invalid nonce")


class RpcClient:
    """JSON-RPC over HTTP(S) to one or several endpoints of one chain.

    Quantities come back as int, amounts in base units. ``url``: one URL, a
    comma-separated string of URLs, or a list (see the module docstring for
    failover). ``requests_sent`` / ``retries_done`` are summed over endpoints;
    ``failovers`` counts moves to another endpoint after a failure.

    What a hosted provider bills: ``calls`` counts the JSON-RPC calls sent per method
    (every item of a batch is a call, and a retried attempt is sent, so billed, again);
    ``batch_sizes`` counts the HTTP requests per number of calls they carried (1 for a
    single call). ``provider_usage()`` sums them up.
    """

    def __init__(self, url, timeout=10, retries=4, backoff=0.5, max_retry_after=10.0,
                 batch_size=100, sleep=time.sleep):
        urls = split_urls(url)
        if not urls:
            raise ConfigError("no RPC URL given")
        per_endpoint = retries if len(urls) == 1 else min(retries, 1)
        self._endpoints = [HttpJson(u, timeout, per_endpoint, backoff, max_retry_after, sleep)
                           for u in urls]
        self._current = 0
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.batch_size = batch_size
        self._ids = count(1)
        self.failovers = 0
        self.calls = Counter()
        self.batch_sizes = Counter()
        self.last_broadcast = None   # several endpoints: (accepted count, [errors]) of the last broadcast

    def __repr__(self):
        more = len(self._endpoints) - 1
        return "<%s %s%s>" % (type(self).__name__, self._endpoints[0].safe_url,
                              " (+%d more)" % more if more else "")

    # --- endpoints ---

    @property
    def urls_count(self):
        return len(self._endpoints)

    @property
    def safe_urls(self):
        """The endpoints as scheme://host[:port]/... (no paths, no keys)."""
        return [ep.safe_url for ep in self._endpoints]

    @property
    def safe_url(self):
        """The current (sticky) endpoint, redacted."""
        return self._endpoints[self._current].safe_url

    @property
    def current_index(self):
        return self._current

    @property
    def requests_sent(self):
        return sum(ep.requests_sent for ep in self._endpoints)

    @property
    def retries_done(self):
        return sum(ep.retries_done for ep in self._endpoints)

    def provider_usage(self):
        """{'requests': HTTP requests, 'calls': JSON-RPC calls, 'largest_batch': n,
        'by_method': {method: calls}} sent by this client so far."""
        return {"requests": sum(self.batch_sizes.values()), "calls": sum(self.calls.values()),
                "largest_batch": max(self.batch_sizes, default=0), "by_method": dict(self.calls)}

    def _sent(self, methods):
        self.calls.update(methods)
        self.batch_sizes[len(methods)] += 1

    def close(self):
        for ep in self._endpoints:
            ep.close()

    def _read(self, on_endpoint, what):
        """on_endpoint(ep) on the current endpoint, failing over to the next ones."""
        eps = self._endpoints
        if len(eps) == 1:
            return on_endpoint(eps[0])
        failures = []
        for k in range(len(eps)):
            i = (self._current + k) % len(eps)
            if failures:
                self.failovers += 1
            try:
                result = on_endpoint(eps[i])
            except RpcError as e:
                if not _endpoint_failed(e):
                    raise
                failures.append(e)
                continue
            self._current = i
            return result
        raise self._all_failed(what, failures)

    @staticmethod
    def _all_failed(what, failures):
        status = next((f.http_status for f in reversed(failures) if f.http_status), None)
        return RpcTransportError("%s failed on all %d RPC endpoints; last error: %s"
                                 % (what, len(failures), failures[-1]),
                                 method=getattr(failures[-1], "method", None), http_status=status)

    # --- core ---

    def call(self, method, params=None):
        """Result of one call; raises RpcCallError / RpcTransportError."""
        params = list(params) if params is not None else []
        return self._read(lambda ep: self._call_on(ep, method, params), method)

    def _call_on(self, ep, method, params):
        """One call on one endpoint, with that endpoint's retries."""
        def attempt():
            rid = next(self._ids)
            self._sent([method])
            reply = ep._attempt_json("POST", ep._path(), {
                "jsonrpc": "2.0", "id": rid, "method": method, "params": params})
            if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
                raise _Retry(RpcTransportError("%s: malformed JSON-RPC reply to %s: %r"
                                               % (ep.safe_url, method, snippet(json.dumps(reply), 80))))
            if reply.get("error") is not None:
                if _is_rate_limit_error(reply["error"]):
                    raise _Retry(_limit_error(reply["error"], method))
                raise _call_error(reply["error"], method)
            return reply["result"]

        return ep._with_retries(attempt)

    def batch(self, calls, raise_errors=True, batch_size=None):
        """Results of [(method, params), ...] in the same order.

        Sent as JSON-RPC batches of ``batch_size`` (default self.batch_size).
        Items that hit a rate limit are retried alone; items the node answers
        with an error become RpcCallError. With raise_errors=True (default)
        the first such error is raised; with False the exception objects are
        returned in place of results so the caller can handle items one by one.
        Transport failures (after retries, on every endpoint) always raise; on
        failover only the items still unanswered go to the next endpoint.
        """
        calls = [(m, list(p) if p is not None else []) for m, p in calls]
        results = [None] * len(calls)
        size = batch_size or self.batch_size
        for start in range(0, len(calls), size):
            self._batch_chunk(calls, start, min(start + size, len(calls)), results)
        if raise_errors:
            for r in results:
                if isinstance(r, RpcError):
                    raise r
        return results

    def _batch_chunk(self, calls, start, end, results):
        pending = set(range(start, end))
        try:
            self._read(lambda ep: self._batch_on(ep, calls, pending, results), "batch")
        except RpcCallError as e:
            # One endpoint: the rate limit outlasted the retries; the remaining items carry that error.
            for i in pending:
                results[i] = RpcCallError(str(e), code=e.code, data=e.data, method=calls[i][0])

    def _batch_on(self, ep, calls, pending, results):
        def attempt():
            ids = {}
            payload = []
            for i in sorted(pending):
                rid = next(self._ids)
                ids[rid] = i
                payload.append({"jsonrpc": "2.0", "id": rid, "method": calls[i][0], "params": calls[i][1]})
            self._sent([item["method"] for item in payload])
            reply = ep._attempt_json("POST", ep._path(), payload)
            if isinstance(reply, dict) and reply.get("error") is not None:
                # The whole batch was refused (e.g. rate limit or batch too large).
                if _is_rate_limit_error(reply["error"]):
                    raise _Retry(_limit_error(reply["error"], "batch"))
                for i in pending:
                    results[i] = _call_error(reply["error"], calls[i][0])
                pending.clear()
                return
            if not isinstance(reply, list):
                raise _Retry(RpcTransportError("%s: malformed JSON-RPC batch reply: %r"
                                               % (ep.safe_url, snippet(json.dumps(reply), 80))))
            limited = None
            for item in reply:
                i = ids.get(item.get("id")) if isinstance(item, dict) else None
                if i is None or i not in pending:
                    continue
                if item.get("error") is not None:
                    if _is_rate_limit_error(item["error"]):
                        limited = _limit_error(item["error"], calls[i][0])
                        continue
                    results[i] = _call_error(item["error"], calls[i][0])
                elif "result" in item:
                    results[i] = item["result"]
                else:
                    continue
                pending.discard(i)
            if pending:
                raise _Retry(limited or RpcTransportError(
                    "%s: batch reply lacked %d of %d answers" % (ep.safe_url, len(pending), len(ids))))

        if pending:
            ep._with_retries(attempt)

    # --- chain state ---

    def chain_id(self):
        return hex_to_int(self.call("eth_chainId"))

    def block_number(self):
        return hex_to_int(self.call("eth_blockNumber"))

    def get_balance(self, addr, block="latest"):
        return hex_to_int(self.call("eth_getBalance", [_addr(addr), block_param(block)]), "balance")

    def get_balances(self, addrs, block="latest"):
        """{addr: wei} for many addresses, batched. Keys are the addresses as given."""
        blk = block_param(block)
        addrs = list(addrs)
        res = self.batch([("eth_getBalance", [_addr(a), blk]) for a in addrs])
        return {a: hex_to_int(r, "balance") for a, r in zip(addrs, res)}

    def get_transaction_count(self, addr, block="pending"):
        return hex_to_int(self.call("eth_getTransactionCount", [_addr(addr), block_param(block)]), "nonce")

    def eth_call(self, to, data, block="latest"):
        return self.call("eth_call", [{"to": _addr(to), "data": data}, block_param(block)])

    def estimate_gas(self, tx):
        return hex_to_int(self.call("eth_estimateGas", [tx]), "gas")

    # --- ERC-20 ---

    def erc20_balance(self, token, addr, block="latest"):
        what = "balanceOf on %s" % token
        return decode_uint256(self.eth_call(token, SEL_BALANCE_OF + _word(addr), block), what)

    def erc20_balances(self, token, addrs, block="latest"):
        """{addr: base units} for many holders of one token, batched."""
        blk = block_param(block)
        to = _addr(token)
        addrs = list(addrs)
        res = self.batch([("eth_call", [{"to": to, "data": SEL_BALANCE_OF + _word(a)}, blk]) for a in addrs])
        what = "balanceOf on %s" % token
        return {a: decode_uint256(r, what) for a, r in zip(addrs, res)}

    def erc20_decimals(self, token):
        d = decode_uint256(self.eth_call(token, SEL_DECIMALS), "decimals() on %s" % token)
        if d > 77:  # 10**78 > 2**256: no real token
            raise RpcError("decimals() on %s returned %d" % (token, d))
        return d

    def erc20_symbol(self, token):
        return decode_string_or_bytes32(self.eth_call(token, SEL_SYMBOL), "symbol() on %s" % token)

    def erc20_name(self, token):
        return decode_string_or_bytes32(self.eth_call(token, SEL_NAME), "name() on %s" % token)

    # --- fees ---

    def gas_price(self):
        return hex_to_int(self.call("eth_gasPrice"), "gas price")

    def fee_data(self, reward_percentile=50):
        """EIP-1559 fees when the chain has a base fee, else legacy gas price.

        max_fee = 2 * next base fee + priority fee: survives several full blocks
        of base-fee growth while the unused part is never charged.
        """
        res = self.batch([
            ("eth_gasPrice", []),
            ("eth_feeHistory", [hex(5), "latest", [reward_percentile]]),
            ("eth_maxPriorityFeePerGas", []),
        ], raise_errors=False)
        if isinstance(res[0], RpcError):
            raise res[0]
        gas_price = hex_to_int(res[0], "gas price")
        hist = res[1] if isinstance(res[1], dict) else {}
        base_fees = hist.get("baseFeePerGas") or []
        if not base_fees or base_fees[-1] in (None, "0x0"):
            return FeeData(gas_price=gas_price)
        base_fee = hex_to_int(base_fees[-1], "base fee")
        if not isinstance(res[2], RpcError):
            priority = hex_to_int(res[2], "priority fee")
        else:
            rewards = sorted(hex_to_int(r[0]) for r in (hist.get("reward") or []) if r)
            priority = rewards[len(rewards) // 2] if rewards else max(gas_price - base_fee, 0)
        return FeeData(gas_price=gas_price, base_fee_per_gas=base_fee,
                       max_priority_fee_per_gas=priority, max_fee_per_gas=2 * base_fee + priority)

    def fee_history(self, block_count, newest="latest", percentiles=(25, 50, 75)):
        """eth_feeHistory as the node sent it (dict of hex quantities: oldestBlock,
        baseFeePerGas, gasUsedRatio, reward when percentiles were asked)."""
        res = self.call("eth_feeHistory", [hex(int(block_count)), block_param(newest),
                                           [p for p in (percentiles or ())]])
        if not isinstance(res, dict):
            raise RpcError("malformed eth_feeHistory reply: %r" % (res,))
        return res

    def max_priority_fee(self):
        """eth_maxPriorityFeePerGas in wei (RpcCallError on chains without it)."""
        return hex_to_int(self.call("eth_maxPriorityFeePerGas"), "priority fee")

    # --- blocks and logs ---

    def get_block(self, block="latest", full=False):
        """Block dict, or None when the node has no such block. number, timestamp,
        baseFeePerGas, gasLimit and gasUsed are int where present; hash stays a string;
        with full=True transactions are objects (as sent), else hashes."""
        b = self.call("eth_getBlockByNumber", [block_param(block), bool(full)])
        return _with_ints(b, _BLOCK_INT_FIELDS, "block %s" % (block,))

    def get_logs(self, filter_dict):
        """eth_getLogs: the raw list of log objects. Int fromBlock/toBlock become hex."""
        flt = dict(filter_dict)
        for k in ("fromBlock", "toBlock"):
            if k in flt and flt[k] is not None:
                flt[k] = block_param(flt[k])
        res = self.call("eth_getLogs", [flt])
        if not isinstance(res, list):
            raise RpcError("malformed eth_getLogs reply: %r" % (snippet(json.dumps(res), 80),))
        return res

    def erc20_transfers(self, token, from_block, to_block, block_range=2000):
        """[(recipient, value, block number)] of every Transfer log of the token in the
        blocks from_block..to_block (recipient lower-case; logs marked removed left out).

        The range goes out in pieces of `block_range` blocks, all in one batch; a piece the
        node refuses (too many results, range too large) is asked again in halves, down to
        single blocks, whose refusal is raised.
        """
        topics = [TRANSFER_TOPIC]
        pieces = [(a, min(a + block_range - 1, to_block)) for a in range(from_block, to_block + 1, block_range)]
        out = []
        while pieces:
            replies = self.batch([("eth_getLogs", [{"address": _addr(token), "fromBlock": hex(a), "toBlock": hex(b),
                                                    "topics": topics}]) for a, b in pieces], raise_errors=False)
            again = []
            for (a, b), reply in zip(pieces, replies):
                if isinstance(reply, RpcError):
                    if a == b:
                        raise reply
                    mid = (a + b) // 2
                    again += [(a, mid), (mid + 1, b)]
                    continue
                if not isinstance(reply, list):
                    raise RpcError("malformed eth_getLogs reply: %r" % (snippet(json.dumps(reply), 80),))
                for log in reply:
                    t = log.get("topics") or []
                    if log.get("removed") or len(t) < 3 or str(t[0]).lower() != TRANSFER_TOPIC:
                        continue
                    out.append(("0x" + str(t[2])[-40:].lower(), hex_to_int(log.get("data") or "0x", "value"),
                                hex_to_int(log.get("blockNumber"), "block number")))
            pieces = again
        return out

    # --- transactions ---

    def send_raw_transaction(self, raw_tx):
        """Broadcast signed bytes (hex str or bytes) to every endpoint; returns the tx hash.

        Re-sending is safe and expected (cron re-sends the stored bytes after a
        crash), so these count as success and return the hash of *these* bytes:
        - "already known"/"already imported": the node has this very tx;
        - "nonce too low" when the node knows a tx with this hash (it was mined).
        "nonce too low" for an unknown hash means a *different* tx used the
        nonce: that is raised (RpcCallError) for the payout code to flag.

        With several endpoints the bytes go to each of them (the current one
        first) and one acceptance is success. When none accepted, a node's
        RpcCallError (underpriced, nonce too low, ...) is raised in preference to
        a wrong-hash RpcError, and that to RpcTransportError (every endpoint
        unreachable). ``last_broadcast`` holds (accepted count, errors) of the
        latest multi-endpoint broadcast.
        """
        raw_hex = raw_tx if isinstance(raw_tx, str) else "0x" + bytes(raw_tx).hex()
        if not raw_hex.startswith("0x"):
            raw_hex = "0x" + raw_hex
        expected = tx_hash_of(raw_hex)
        eps = self._endpoints
        if len(eps) == 1:
            return self._send_on(eps[0], raw_hex, expected)
        order = [self._current] + [i for i in range(len(eps)) if i != self._current]
        accepted, errors = [], []
        for i in order:
            try:
                self._send_on(eps[i], raw_hex, expected)
            except RpcError as e:
                errors.append((i, e))
                continue
            accepted.append(i)
        self.last_broadcast = (len(accepted), [e for _, e in errors])
        if accepted:
            if any(i == self._current and _endpoint_failed(e) for i, e in errors):
                self._current = accepted[0]   # the current endpoint is down: move on
            return expected
        failures = [e for _, e in errors]
        answers = [e for e in failures if isinstance(e, RpcCallError) and not _endpoint_failed(e)]
        if answers:
            raise answers[0]
        others = [e for e in failures if not _endpoint_failed(e)]
        if others:
            raise others[0]
        raise self._all_failed("eth_sendRawTransaction", failures)

    def _send_on(self, ep, raw_hex, expected):
        """Broadcast on one endpoint (its retries); the hash, or raises."""
        try:
            got = self._call_on(ep, "eth_sendRawTransaction", [raw_hex])
        except RpcCallError as e:
            if _endpoint_failed(e):
                raise
            msg = str(e).lower()
            if any(s in msg for s in _ALREADY_KNOWN):
                return expected
            if any(s in msg for s in _NONCE_TOO_LOW) and \
                    self._call_on(ep, "eth_getTransactionByHash", [expected]) is not None:
                return expected
            raise
        if not isinstance(got, str) or got.lower() != expected:
            raise RpcError("node returned hash %r for a transaction hashing to %s" % (got, expected))
        return expected

    def get_transaction(self, tx_hash):
        return self.call("eth_getTransactionByHash", [tx_hash])

    def get_transaction_receipt(self, tx_hash):
        """None while pending/unknown; else the receipt dict with the numeric
        fields (status, blockNumber, gasUsed, effectiveGasPrice, ...) as int."""
        r = self.call("eth_getTransactionReceipt", [tx_hash])
        return _with_ints(r, _RECEIPT_INT_FIELDS, "receipt for %s" % (tx_hash,))


def _with_ints(obj, fields, what):
    """A copy of the node's object `obj` with its hex `fields` as int; None stays None."""
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise RpcError("malformed %s: %r" % (what, obj))
    obj = dict(obj)
    for f in fields:
        if isinstance(obj.get(f), str):
            obj[f] = hex_to_int(obj[f], f)
    return obj


def rpc_url_for(chain_id, env):
    """RPC URL for a chain from a settings mapping (os.environ or the cron env dict).

    RPC_URL_<CHAIN_ID> wins (several comma-separated URLs allowed: returned as one
    string "u1,u2" with blanks stripped, which RpcClient takes as is); else Alchemy's URL with ALCHEMY_API_KEY; the dev
    chain (31337) needs ALLOW_DEV_CHAIN=1 and defaults to http://127.0.0.1:8545.
    """
    chain = CHAINS.get(chain_id)
    if chain is None:
        raise ConfigError("chain %r is not supported" % (chain_id,))
    if chain.dev and not allow_dev_from_env(env):
        raise ConfigError("chain %d is the local development chain; set ALLOW_DEV_CHAIN=1 to use it"
                          % chain_id)
    urls = split_urls(env.get("RPC_URL_%d" % chain_id) or "")
    if urls:
        return ",".join(urls)
    if chain.chain_id == DEV_CHAIN_ID:
        return DEFAULT_DEV_RPC_URL
    key = (env.get("ALCHEMY_API_KEY") or "").strip()
    if key and chain.alchemy_network:
        return "https://%s.g.alchemy.com/v2/%s" % (chain.alchemy_network, urllib.parse.quote(key, safe=""))
    raise ConfigError("no RPC URL for chain %d (%s): set RPC_URL_%d or ALCHEMY_API_KEY"
                      % (chain_id, chain.name, chain_id))
