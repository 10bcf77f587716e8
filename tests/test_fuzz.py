"""A hypothesis fuzz test over every endpoint of the OpenAPI document and every
page, as anonymous visitors and with the API key and the session of each role.

Two phases per database, each bounded in time (PHASE_SECONDS):
1. bad input only: every field the endpoint takes gets a value no validator accepts
   (wrong types, control characters, lone surrogates, Unicode digits, ids beyond 64
   bits, huge strings, malformed bodies and headers). Any 5xx fails the test, and the
   row counts of the main tables must be the same before and after the phase;
2. anything: bad values mixed with valid ones (real uuids, addresses, actions), so the
   requests reach deeper code; any 5xx fails the test.
Before phase 1 a sweep sends one bad request to every endpoint, method and kind of
client, so each is covered whatever hypothesis draws. The figures (requests, statuses)
are printed and written to tests/artifacts/fuzz-<database>.json.
"""
import json
import os
import re
import time
import urllib.parse
from collections import Counter

import pytest

from tests import market
from tests.client import Client
from tests.conftest import ROOT, missing
from tests.factories import login
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

try:
    from hypothesis import HealthCheck, Phase, given, settings, strategies as st
except ImportError:  # make test installs requirements-test.txt
    st = None

PHASE_SECONDS = float(os.environ.get("FUZZ_SECONDS", "6"))
ROLES = ("vendor", "buyer", "staff", "admin")
COUNTED = ("users", "stores", "store_users", "items", "packages", "package_prices", "transactions",
           "evm_transactions", "transaction_statuses", "shipping_statuses", "transaction_intents", "payouts",
           "disputes", "dispute_claims", "deposits", "deposit_history", "deposit_withdraw_intents",
           "accepted_tokens", "config", "prices", "store_tokens", "audit_log")
QUERY_NAMES = ["uuid", "package_uuid", "item_uuid", "store_uuid", "limit", "offset", "q", "next", "view",
               "category", "category_id", "scope", "status", "mine", "role", "token"]
FORM_NAMES = ["action", "active", "banned", "category_id", "chain_id", "claim", "comment", "currency",
              "deposit_uuid", "description", "everywhere", "form", "id", "invite", "item_uuid", "name",
              "new_password", "new_password2", "next", "old_password", "package_uuid", "password",
              "payout_address", "price_usd", "refund_address", "refund_percent", "resolution", "store_uuid",
              "storename", "tier", "token", "user_uuid", "username", "uuid", "vendorship_agree", "tokens",
              "decimals", "symbol", "contract_address", "manual_usd_price", "transaction_uuid", "do"]


def page_urls():
    """(url, file) of every page script outside /api/ and /admin/ (those are in the OpenAPI
    document; /admin/ itself is a page)."""
    urls = []
    public = os.path.join(ROOT, "public")
    for folder, _dirs, files in os.walk(public):
        rel = os.path.relpath(folder, public)
        if rel.split(os.sep)[0] in ("api", "static", "__pycache__"):
            continue
        for name in files:
            if not name.endswith(".py") or name.startswith("_"):
                continue
            parts = [] if rel == "." else rel.split(os.sep)
            if rel.split(os.sep)[0] == "admin" and name != "index.py":
                continue
            if name == "index.py":
                url = "/" + "/".join(parts) + ("/" if parts else "")
            else:
                url = "/" + "/".join(parts + [name[:-3].replace("_", "-")]) + ".php"
            urls.append((url, os.path.join(folder, name)))
    return sorted(urls)


def endpoints():
    """[(method, path, query names, body field names)] of the API and the pages."""
    from lib import config, openapi
    out = []
    for path, ops in openapi.document()["paths"].items():
        for method, op in ops.items():
            params = [p["name"] for p in op.get("parameters", [])]
            fields = []
            for content in op.get("requestBody", {}).get("content", {}).values():
                fields = [f for f in content.get("schema", {}).get("properties", {}) if f != "csrf_token"]
            if path == "/admin/config.php" and method == "post":
                fields = list(config.KEYS)
            out.append((method.upper(), path, params or ["limit", "offset", "uuid"], fields))
    for url, file in page_urls():
        with open(file, encoding="utf-8") as f:
            source = f.read()
        # The fields the page script reads, plus a few every form has.
        named = set(re.findall(r"""(?:get|field|arg)\(["']([a-z_0-9]+)["']""", source))
        fields = sorted((named & set(FORM_NAMES)) | {"action", "form"})
        query = sorted((named & set(QUERY_NAMES)) | {"uuid"})
        out.append(("GET", url, query, []))
        out.append(("POST", url, query, fields))
    return out


ENDPOINTS = endpoints()
CLIENT_KINDS = ["anonymous"] + [f"key:{r}" for r in ROLES] + [f"session:{r}" for r in ROLES]

# Odd values (phase 2, and the sweep): some are valid free text, so they may be accepted.
UNICODE_DIGITS = ["\u00b2", "\u0662", "\uff11", "\u0661\u0662", "\u00b9\u00b2\u00b3", "\u096b", "\U0001d7d9"]
ODD = UNICODE_DIGITS + [str(2 ** 64), str(2 ** 63), "9" * 40, "-" + "9" * 30, "x" * 70000, "0x" + "0" * 40,
                        "\x1f", "\x1f\x1f", " ", "", "%00", "../../etc/passwd", "'; DROP TABLE users; --",
                        "<script>alert(1)</script>", "\u202e", "http://[::1", "0x" + "g" * 40, "1e400", "NaN"]
ODD_JSON = [[], {}, 2 ** 64, 2 ** 63, -1, -(2 ** 70), 1.5, 1e300, True, False, None]

# Values no validator accepts, in any field (phase 1): a control character inside the text
# (a leading or trailing one would be stripped), a lone surrogate (JSON), or a non-empty
# container of those.
CONTROL = "\x00\x01\x08\x0b\x0c\x0e\x1b\x1c\x1f\x7f"
BAD_FIXED = ["a\x00b", "x\x1fy", "0x\x00" + "0" * 40, "1\x002", "\u0662\x00\u0662", "9" * 40 + "\x00!",
             "a\x1b[31mb", "a\r\x00b", "A\x01B", "x" * 70000 + "\x00y", "1:ETH\x00,2"]
BAD_JSON_FIXED = ["\ud800", "a\udfffb", "\udbff\udc00\ud800", ["\ud800"], ["a\x00b"], {"a": "b\x00c"},
                  [["x\x1fy"]], {"\ud800": 1}, {"a": {"b": ["\x00"]}}, [[[[[[[[[[[[[[[[[[[[[[[[[["a\x01b"]]]]]]]]]]]]]]]]]]]]]]]]]]]


def bad_value(json_body):
    """A value no field accepts: mostly drawn from fixed pools (cheap to generate, so the
    time goes into requests), sometimes built by hypothesis around a control character."""
    word = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2fff,
                                          blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
                   min_size=1, max_size=12)
    generated = st.builds(lambda a, c, b: a + c + b, word, st.sampled_from(list(CONTROL)), word)
    pool = BAD_FIXED + (BAD_JSON_FIXED if json_body else [])
    return st.one_of(st.sampled_from(pool), generated)


def odd_value(json_body):
    return st.sampled_from(ODD + (ODD_JSON if json_body else []))


def any_value(ids, json_body):
    """Bad values mixed with valid ones, to reach the code behind the validators."""
    good = st.sampled_from(ids + [market.ADDR_A, market.ADDR_B, market.ADDR_C, "ETH", "USDC", "1", "8453",
                                  "11155111", "31337", "release", "cancel", "dispatch", "confirm", "dispute",
                                  "partial_refund", "refund", "claim", "resolve", "addresses", "password",
                                  "tokens", "all", "1:ETH", "50", "99", "0", "1", "-1", "", " ", "customer",
                                  "staff", "admin", "vendor", "gold", "password123", "buyer1", "vendor1",
                                  "newname", "5m", "1h", "0.5", "12.50", "/payments.php", "//evil.example",
                                  "https://evil.example/"])
    values = [good, st.text(max_size=40), bad_value(json_body), odd_value(json_body)]
    if json_body:
        values += [st.booleans(), st.integers(min_value=-5, max_value=200), st.none()]
    return st.one_of(*values)


RAW_BODIES = [
    (b'{"a": ' * 50000 + b"1" + b"}" * 50000, "application/json"),
    (b"[" * 100000, "application/json"),
    (b'{"name": "\\ud800"}', "application/json"),
    (b'{"name": "x", "name": "\\udfff"}', "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded"),
    (b"name=%ff%fe&id=%00", "application/x-www-form-urlencoded"),
    (b"[1, 2, 3]", "application/json"),
    (b'"just a string"', "application/json"),
    (b"{", "application/json"),
    (b"NaN", "application/json"),
    (b'{"id": 1e400}', "application/json"),
    (b'{"id": -0.0, "limit": 1e-400}', "application/json"),
    (b"a=1&" * 20000, "application/x-www-form-urlencoded"),
    (b"x" * 100, "multipart/form-data; boundary=zz"),
]
BAD_HEADERS = [
    {}, {"Origin": "http://[::1"}, {"Referer": "http://[zz"}, {"Origin": "null"},
    {"Origin": "https://evil.example"}, {"Accept": "text/html"}, {"Accept": "image/*"},
    {"Sec-Fetch-Site": "cross-site"}, {"Content-Length": "abc"}, {"Content-Length": "-5"},
    {"Content-Length": str(2 ** 70)}, {"Authorization": "Bearer \x00"}, {"Authorization": "Basic Zm9v"},
    {"X-API-Key": "zz" * 32}, {"X-CSRF-Token": "\x00" * 64}, {"X-Forwarded-For": "1.2.3.4, [::1"},
    {"Cookie": "session=\x00; csrf_pre=zz"}, {"Cookie": "a" * 5000},
]


def snapshot(db):
    counts = {t: db.value(f"SELECT COUNT(*) FROM {t}") for t in COUNTED}
    counts["active api_keys"] = db.value("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
    counts["banned users"] = db.value("SELECT COUNT(*) FROM users WHERE banned = 1")
    return counts


class Fuzzer:
    """The world, one client per kind, and the figures."""

    # In process the fuzzer sends what a WSGI server never passes on (a Content-Length that is
    # no number), so its clients skip wsgiref's validator; the app must still answer 4xx.
    def __init__(self, db, app, make_client=lambda app: Client(app, validate=False)):
        self.db, self.app = db, app
        w = market.world(db)
        market.add_token(db, 1, "USDC", contract=market.USDC, decimals=6)
        market.set_rate(db, 1, "USDC", "1", contract=market.USDC)
        from lib import deposits, orders
        order = market.order(db, w, "COMPLETED", dispatched=True)
        disputed = market.order(db, w, "COMPLETED")
        orders.take_action(db, w.buyer, disputed, "dispute")
        pending = market.order(db, w, "PENDING")
        dispute = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (disputed,))
        deposit = deposits.open_deposit(db, w.vendor, w.store["uuid"], "ETH", "1")
        self.ids = [order, disputed, pending, dispute, deposit["uuid"], w.store["uuid"], w.item["uuid"],
                    w.package["uuid"]] + [w[r]["uuid"] for r in ROLES] + [str(w[r]["api_key_id"]) for r in ROLES]
        self.world = w
        self.clients = {"anonymous": (make_client(app), {})}
        for role in ROLES:
            self.clients[f"key:{role}"] = (make_client(app), dict(w[role]["headers"]))
            c = make_client(app)
            token = login(c, w[role]["username"])
            self.clients[f"session:{role}"] = (c, {"X-CSRF-Token": token})
        self.statuses = Counter()
        self.requests = 0
        self.failures = []

    def send(self, method, path, query, body, content_type, kind, headers):
        if kind.startswith("session:") and path == "/logout.php":
            kind = "anonymous"  # a logout would end the session the other requests use
        client, auth_headers = self.clients[kind]
        all_headers = dict(auth_headers)
        all_headers.update(headers)
        url = path + ("?" + query if query else "")
        cookies = dict(client.cookies)
        try:
            r = client.request(method, url, body=body, content_type=content_type, headers=all_headers)
        finally:
            client.cookies = cookies  # keep each kind's session whatever the answer set
        self.requests += 1
        self.statuses[r.status] += 1
        if r.status >= 500 and len(self.failures) < 20:
            self.failures.append(f"{r.status} {kind} {method} {url[:200]!r} {body[:300]!r} {headers} -> {r.text[:300]}")
        return r


def encode(values, json_body):
    """(body bytes, content type) for a dict of fields."""
    if json_body:
        return json.dumps(values).encode("ascii"), "application/json"
    pairs = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()]
    return urllib.parse.urlencode([(k, v.encode("utf-8", "surrogatepass")) for k, v in pairs]).encode(), \
        "application/x-www-form-urlencoded"


def query_string(values):
    return "&".join(f"{urllib.parse.quote(k)}={urllib.parse.quote(str(v).encode('utf-8', 'surrogatepass'))}"
                    for k, v in values.items())


def request_strategy(value_for, all_fields):
    """A whole request: endpoint, client kind, query, body, headers."""
    strategies = {False: value_for(False), True: value_for(True)}  # built once: cheap draws

    @st.composite
    def build(draw):
        method, path, params, fields = draw(st.sampled_from(ENDPOINTS))
        kind = draw(st.sampled_from(CLIENT_KINDS))
        json_body = draw(st.booleans())
        if all_fields:
            query = {name: draw(strategies[False]) for name in draw(st.lists(st.sampled_from(params), max_size=3,
                                                                             unique=True))}
            body_fields = {name: draw(strategies[json_body]) for name in fields}
        else:
            query = {name: draw(strategies[False]) for name in draw(st.lists(st.sampled_from(params), max_size=4,
                                                                             unique=True))}
            names = draw(st.lists(st.sampled_from(fields or ["x"]), max_size=len(fields or ["x"]), unique=True))
            body_fields = {name: draw(strategies[json_body]) for name in names}
        body, content_type = encode(body_fields, json_body)
        if draw(st.integers(0, 9)) == 0:
            body, content_type = draw(st.sampled_from(RAW_BODIES))
        headers = draw(st.sampled_from(BAD_HEADERS))
        if method == "GET":
            body, content_type = b"", None
        if draw(st.integers(0, 19)) == 0:
            method = draw(st.sampled_from(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW"]))
        return method, path, query_string(query), body, content_type, kind, headers
    return build()


def run_phase(fuzzer, strategy, seconds):
    """Send requests drawn from `strategy` for about `seconds` (hypothesis stops drawing
    new ones once the time is up)."""
    end = time.monotonic() + seconds

    # No shrinking: the first 5xx is reported as sent (Fuzzer.failures), and _Done ends the
    # run once the time is up.
    @settings(max_examples=100000, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(strategy)
    def phase(request):
        if time.monotonic() > end:
            raise _Done()
        fuzzer.send(*request)

    start = fuzzer.requests
    t0 = time.monotonic()
    try:
        phase()
    except _Done:
        pass
    return fuzzer.requests - start, time.monotonic() - t0


class _Done(Exception):
    pass


# The sweeps: each value in every field (and query parameter) of every endpoint, for
# each kind of client: phase 1 (values no field accepts) and phase 2 (odd values).
SWEEP_BAD = [("1\x00" + str(2 ** 64), True), ("a\ud800b", True), ([["x\x1fy"]], True), ("x\x1fy", False)]
SWEEP_ODD = [(str(2 ** 64), False), ("\uff11", False), ("\u00b2", False), ("\u0662", True), (2 ** 70, True),
             ("0x" + "0" * 40, True), ("x" * 5000, False)]
SWEEP_KINDS = ["anonymous"] + [f"key:{r}" for r in ROLES] + ["session:admin"]


def sweep(fuzzer, values, header_sets=()):
    for headers in header_sets:  # each odd header on every POST, with an empty body
        for method, path, _params, _fields in ENDPOINTS:
            if method == "POST":
                fuzzer.send(method, path, "", b"", "application/x-www-form-urlencoded", "anonymous", headers)
    for value, json_body in values:
        for method, path, params, fields in ENDPOINTS:
            for kind in SWEEP_KINDS:
                body, content_type = encode({f: value for f in fields}, json_body) if method == "POST" \
                    else (b"", None)
                # the query only on GET: a bad one would stop a POST before its body is read
                query = query_string({p: value for p in params}) if isinstance(value, str) and method == "GET" else ""
                fuzzer.send(method, path, query, body, content_type, kind, {})


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # the 70 kB values, by design
@pytest.mark.skipif(st is None and not os.environ.get("CI"), reason="hypothesis is not installed (make test)")
def test_fuzz_every_endpoint_never_5xx_and_bad_input_changes_nothing(db, app, monkeypatch):
    if st is None:
        missing("hypothesis is not installed (make install-test)")
    from lib import api_keys
    monkeypatch.setattr(api_keys, "RATE_LIMIT", 10 ** 6)  # the keys' limit has its own tests
    fuzzer = Fuzzer(db, app)
    before = snapshot(db)
    sweep(fuzzer, SWEEP_BAD, BAD_HEADERS)
    bad_requests, bad_seconds = run_phase(fuzzer, request_strategy(lambda j: bad_value(j), True), PHASE_SECONDS)
    after = snapshot(db)
    assert not fuzzer.failures, "\n".join(fuzzer.failures)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    new_audit = db.query("SELECT action, user_uuid, target, detail FROM audit_log ORDER BY id DESC LIMIT ?",
                         (max(0, after["audit_log"] - before["audit_log"]),))
    assert not changed, f"bad input changed rows: {changed}; new audit rows: {new_audit}"
    bad_total = fuzzer.requests
    sweep(fuzzer, SWEEP_ODD)
    assert not fuzzer.failures, "\n".join(fuzzer.failures)
    any_requests, any_seconds = run_phase(fuzzer, request_strategy(lambda j: any_value(fuzzer.ids, j), False),
                                          PHASE_SECONDS)
    assert not fuzzer.failures, "\n".join(fuzzer.failures)
    figures = {"database": "sqlite" if db.is_sqlite else "mariadb", "requests": fuzzer.requests,
               "bad_input_requests": bad_total, "bad_input_sweep": bad_total - bad_requests,
               "any_input_requests": fuzzer.requests - bad_total, "any_input_hypothesis": any_requests, "seconds": round(bad_seconds + any_seconds, 1),
               "statuses": dict(sorted(fuzzer.statuses.items())),
               "5xx": sum(n for s, n in fuzzer.statuses.items() if s >= 500),
               "endpoints": len(ENDPOINTS), "client_kinds": len(CLIENT_KINDS)}
    print("\nfuzz figures:", json.dumps(figures))
    os.makedirs(os.path.join(ROOT, "tests", "artifacts"), exist_ok=True)
    with open(os.path.join(ROOT, "tests", "artifacts", f"fuzz-{figures['database']}.json"), "w") as f:
        json.dump(figures, f, indent=1)
    assert figures["5xx"] == 0
