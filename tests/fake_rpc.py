"""A JSON-RPC proxy in front of a real node (anvil) that injects provider faults.

    proxy = FaultyRpc(anvil.url)
    proxy.add("eth_getBalance", "500", times=3)      # the next 3 requests containing it
    proxy.add("eth_sendRawTransaction", "forward_garbage")
    ... point RPC_URL_31337 at proxy.url ...
    proxy.clear(); proxy.stop()

Modes:
  timeout          hold the request `hang` seconds and close without an answer
  429 / 500 / 502  that HTTP status with a short text body
  garbage          HTTP 200 with a body that is not JSON
  forward_garbage  pass the request to the node (so it takes effect there), then
                   answer garbage: the client cannot know its transaction was sent
  rpc_error        a JSON-RPC error object (code -32000) for the whole request
A fault matches a request when its method is among the request's methods (batches
included) or when it is "*". `times` counts matching requests (None: forever).
"""
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve_in_background(handler):
    """A threading HTTP server of `handler` on a free loopback port, serving from a daemon
    thread: (server, base URL). Stop it with server.shutdown() and server.server_close()."""
    class Server(ThreadingHTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "http://127.0.0.1:%d" % server.server_address[1]


class FaultyRpc:
    def __init__(self, upstream, hang=2.0):
        self.upstream = upstream
        self.hang = hang
        self.faults = []
        self.seen = []           # methods of every request, in order
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                    items = payload if isinstance(payload, list) else [payload]
                    methods = [i.get("method") for i in items if isinstance(i, dict)]
                except ValueError:
                    methods = []
                fault = proxy._take(methods)
                mode = fault["mode"] if fault else None
                if mode == "timeout":
                    time.sleep(proxy.hang)
                    self.close_connection = True
                    return
                if mode in ("429", "500", "502"):
                    return self._reply(int(mode), b"provider trouble " + mode.encode(), "text/plain")
                if mode == "garbage":
                    return self._reply(200, b"<html>surprise</html>", "text/html")
                if mode == "rpc_error":
                    rid = items[0].get("id") if items and isinstance(items[0], dict) else None
                    return self._reply(200, json.dumps({"jsonrpc": "2.0", "id": rid, "error": {
                        "code": -32000, "message": "injected failure"}}).encode(), "application/json")
                req = urllib.request.Request(proxy.upstream, data=body,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    data = resp.read()
                if mode == "forward_garbage":
                    return self._reply(200, b"\x00\xffnot json", "application/octet-stream")
                self._reply(200, data, "application/json")

            def _reply(self, status, data, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server, self.url = serve_in_background(Handler)

    def add(self, method, mode, times=None):
        with self._lock:
            self.faults.append({"method": method, "mode": mode, "times": times, "hits": 0})

    def clear(self):
        with self._lock:
            self.faults = []

    def hits(self):
        return sum(f["hits"] for f in self.faults)

    def _take(self, methods):
        with self._lock:
            self.seen.append(methods)
            for f in self.faults:
                if f["method"] == "*" or f["method"] in methods:
                    if f["times"] is not None and f["times"] <= 0:
                        continue
                    if f["times"] is not None:
                        f["times"] -= 1
                    f["hits"] += 1
                    return f
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class FakePrices:
    """A stand-in for the Alchemy Prices API (SPEC section 8 allows one for prices only).

    prices: {symbol: "usd string"} served by symbol, and {(network, address lower): "usd"}
    by address. `fail` = an HTTP status to answer instead (e.g. 500).
    """

    def __init__(self, by_symbol=None, by_address=None):
        self.by_symbol = dict(by_symbol or {})
        self.by_address = dict(by_address or {})
        self.fail = None
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            @staticmethod
            def _item(value, **keys):
                if value is None:
                    return dict(keys, prices=[], error={"message": "Token not found"})
                return dict(keys, prices=[{"currency": "usd", "value": value,
                                           "lastUpdatedAt": "2025-01-01T00:00:00Z"}], error=None)

            def do_GET(self):
                import urllib.parse
                fake.requests.append(self.path)
                if fake.fail:
                    return self._send(fake.fail, {"error": "down"})
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                self._send(200, {"data": [self._item(fake.by_symbol.get(s), symbol=s) for s in q.get("symbols", [])]})

            def do_POST(self):
                fake.requests.append(self.path)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if fake.fail:
                    return self._send(fake.fail, {"error": "down"})
                self._send(200, {"data": [self._item(fake.by_address.get((a["network"], a["address"].lower())),
                                                     network=a["network"], address=a["address"])
                                          for a in body.get("addresses", [])]})

        self.server, base = serve_in_background(Handler)
        self.url = base + "/prices/v1/testkey"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
