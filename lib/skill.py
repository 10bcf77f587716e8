"""The agent guide served at /api/skill.php: Markdown generated at request time from
the OpenAPI document (lib/openapi.py) and the order rule book (lib/status_machine.py), so it
never drifts from what the API does.

It tells an agent the base URL, how to get an API key and send it, the order lifecycle (who
may do what, when), and every endpoint with its method, summary, parameters and their
constraints, and an example request (curl) built from the schema's examples.
"""
import json
import shlex
import urllib.parse

from lib import api_keys, status_machine as sm

METHODS = ("get", "post", "put", "patch", "delete")

# Representative order states for the lifecycle table: (label, OrderState).
STATES = [
    ("PENDING (awaiting payment)", sm.OrderState(sm.PENDING)),
    ("COMPLETED (paid), not dispatched", sm.OrderState(sm.COMPLETED)),
    ("COMPLETED, dispatched", sm.OrderState(sm.COMPLETED, dispatched=True)),
    ("COMPLETED, dispatched, receipt confirmed", sm.OrderState(sm.COMPLETED, dispatched=True,
                                                               buyer_confirmed=True)),
    ("FROZEN with an open dispute", sm.OrderState(sm.FROZEN, dispute_open=True)),
    ("FROZEN without a dispute (not dispatched in time, or stuck)", sm.OrderState(sm.FROZEN)),
]
PARTY_NAMES = {"buyer": "buyer", "vendor": "vendor (store member)", "staff": "staff/admin"}


def _md(text):
    """Table-cell safe text."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def constraints(schema):
    """The constraints of a parameter schema in words."""
    parts = []
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = "/".join(kind)
    if kind:
        parts.append(kind)
    if schema.get("format"):
        parts.append(f"format {schema['format']}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"] if v is not None))
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        parts.append(f"{lo} to {hi}")
    elif lo is not None:
        parts.append(f">= {lo}")
    elif hi is not None:
        parts.append(f"<= {hi}")
    lo, hi = schema.get("minLength"), schema.get("maxLength")
    if lo is not None and hi is not None:
        parts.append(f"{lo}-{hi} characters" if lo != hi else f"exactly {lo} characters")
    elif hi is not None:
        parts.append(f"at most {hi} characters")
    elif lo is not None:
        parts.append(f"at least {lo} characters")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    return "; ".join(parts)


def _example(schema):
    examples = schema.get("examples")
    if examples:
        return examples[0]
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    return None


def _body_schema(op):
    content = op.get("requestBody", {}).get("content", {})
    return (content.get("application/x-www-form-urlencoded") or content.get("application/json") or {}).get("schema")


def _inputs(op):
    """(name, where, required, schema) of the operation's parameters and body fields."""
    out = [(p["name"], p["in"], bool(p.get("required")), p.get("schema", {}), p.get("description", ""))
           for p in op.get("parameters", [])]
    body = _body_schema(op)
    if body:
        for name, schema in body.get("properties", {}).items():
            out.append((name, "body", name in body.get("required", []), schema, schema.get("description", "")))
    return out


def _example_fields(op, where):
    """The fields an example request sends: the required ones, else every one with an example."""
    fields = [(n, s) for n, w, req, s, _ in _inputs(op) if w == where and req and n != "csrf_token"]
    if not fields and where == "body":
        body = _body_schema(op) or {}
        fields = [(n, s) for n, w, _r, s, _ in _inputs(op) if w == where and n != "csrf_token"
                  and _example(s) is not None][:1 if body.get("additionalProperties") is False else None]
    return [(n, _example(s)) for n, s in fields if _example(s) is not None]


def curl(base, path, method, op):
    """An example request for the operation."""
    query = _example_fields(op, "query")
    url = base + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    words = ["curl"]
    if method != "get":
        words += ["-X", method.upper()]
    if op.get("security", None) != []:
        words += ["-H", "Authorization: Bearer $MARKETPLACE_API_KEY"]
    words.append(url)
    if method != "get" and _body_schema(op) is not None:
        for name, value in _example_fields(op, "body"):
            words += ["--data-urlencode", f"{name}={value}"]
    return " ".join(shlex.quote(w) if w != "Authorization: Bearer $MARKETPLACE_API_KEY"
                    else '"Authorization: Bearer $MARKETPLACE_API_KEY"' for w in words)


def _answer_fields(op):
    """Top-level fields of the 200 answer, for a one-line summary."""
    schema = op["responses"]["200"]["content"].get("application/json", {}).get("schema", {})
    alternatives = schema.get("anyOf", [schema])
    shapes = []
    for alt in alternatives:
        props = alt.get("properties")
        if props:
            shapes.append("{" + ", ".join(props) + "}")
    return " or ".join(shapes)


def lifecycle():
    lines = ["## The order lifecycle", "",
             "Payment status (append-only; the current status is the newest row):", ""]
    for status, nexts in sm.TRANSITIONS.items():
        if status is None:
            continue
        targets = sorted(n for n in nexts if n != status)
        lines.append(f"- `{status}` -> " + (", ".join(f"`{t}`" for t in targets) if targets else "final"))
    lines += ["", f"Shipping status: `{sm.DISPATCH_PENDING}` -> `{sm.DISPATCHED}`.", "",
              "Cron moves PENDING to COMPLETED when the escrow has received the amount (at the chain's "
              "confirmation depth), to FAILED when nothing arrived in time, freezes paid orders not "
              "dispatched in time, and pays out each intent (release, refund, partial refund).", "",
              "Actions (`POST /api/transaction-actions.php`, `action=`). Anyone else gets 403; the right "
              "person at the wrong time 409. While a payout is in progress (an open intent) nothing "
              "else can happen to the order (409).", "",
              "| action | who | when (order state) | moves funds |", "|---|---|---|---|"]
    for action in sm.ACTIONS:
        who = sorted(sm.WHO[action], key=sm.PARTIES.index)
        cells = []
        for party in who:
            states = [label for label, state in STATES if sm.decide(action, {party}, state)[0] == 200]
            cells.append(f"{PARTY_NAMES[party]}: " + ("; ".join(states) if states else "never"))
        moves = sm.MOVES_FUNDS.get(action)
        lines.append(f"| `{action}` | {', '.join(PARTY_NAMES[p] for p in who)} | {_md(' / '.join(cells))} | "
                     f"{'`' + moves + '`' if moves else 'no'} |")
    lines += ["", "`GET /api/transactions.php?uuid=` answers `allowed_actions` for the caller: ask it "
              "instead of guessing.", ""]
    return lines


def markdown(doc, base):
    """The guide as Markdown text."""
    base = base.rstrip("/")
    info = doc.get("info", {})
    lines = [f"# {info.get('title', 'Marketplace API')}: a guide for agents", "",
             "An escrow marketplace: buyers pay in ETH or ERC-20 tokens into a per-order escrow address; "
             "the funds go to the vendor when the order is released, back to the buyer when it is "
             "cancelled, or are split by staff after a dispute.", "",
             f"- Base URL: `{base}`",
             f"- OpenAPI document (machine-readable, the source of this guide): `{base}/api/openapi.json`",
             "- Every path also works without the `.php` suffix.", "",
             "## Getting an API key", "",
             "1. Register (username 1-16 letters, digits, `_ - .`; password at least 8 characters):", "",
             "   ```sh",
             f"   curl -X POST {base}/register.php --data-urlencode username=my-agent "
             "--data-urlencode 'password=a long secret'",
             "   ```", "",
             "2. Log in with a cookie jar, then create a key (shown once; only its hash is stored):", "",
             "   ```sh",
             f"   curl -c jar -X POST {base}/login.php --data-urlencode username=my-agent "
             "--data-urlencode 'password=a long secret'",
             f"   curl -b jar -X POST {base}/api/keys.php --data-urlencode name=my-agent",
             "   ```", "",
             "   The answer carries `api_key` (64 hex characters). A script using the session cookie and no "
             "browser headers (`Origin`, `Referer`, `Sec-Fetch-*`) needs no CSRF token; with any of them, "
             "send `csrf_token` (from `GET /api/auth-user.php`) or an `X-CSRF-Token` header.", "",
             "## Sending the key", "",
             "Any one of these three transports:", "",
             "- `Authorization: Bearer KEY`",
             "- `X-API-Key: KEY`",
             "- `?token=KEY` in the query string", "",
             f"A key acts as its user with the user's role. Rate limit: {api_keys.RATE_LIMIT} requests per "
             "rolling minute per key (429 with `Retry-After`). A revoked key, or a banned user's, stops "
             "working at once (401/403).", "",
             "## Conventions", "",
             "- Answers are JSON; errors are `{\"error\": \"message\"}` with 400 bad input, 401 no or invalid "
             "key, 403 not allowed, 404 not found (or not yours), 409 wrong state or duplicate, 413 body "
             "too large, 429 rate limited.",
             "- POST bodies: `application/x-www-form-urlencoded` or `application/json`.",
             "- Amounts are decimal strings in token units (`\"0.125\"`), never floats; USD prices are "
             "decimal strings. Times are UTC `YYYY-MM-DD HH:MM:SS`.",
             "- Lists take `limit` (1-200, default 50) and `offset`.",
             "- An empty optional field is the same as leaving it out.", "",
             "## Buying, step by step", "",
             "1. Find a package: `GET /api/items.php?q=...`, then `GET /api/packages.php?item_uuid=...` "
             "(each package has a live quote per accepted token).",
             "2. Order it: `POST /api/transactions.php` with `package_uuid`, `currency`, `chain_id` and a "
             "`refund_address`. The server prices the order.",
             "3. Poll `GET /api/transactions.php?uuid=...` until `escrow_address` is set (within about a "
             "minute), then pay `required_amount` of `currency` to it on chain `chain_id`.",
             "4. The order turns COMPLETED once the payment is confirmed. After the vendor dispatches, "
             "`confirm` receipt and `release`; or `dispute` if something is wrong.", ""]
    lines += lifecycle()
    lines += ["## Endpoints", ""]
    for path, ops in doc["paths"].items():
        for method in METHODS:
            op = ops.get(method)
            if op is None:
                continue
            lines += [f"### {method.upper()} {path}", "", op.get("summary", ""), ""]
            if op.get("description"):
                lines += [op["description"], ""]
            lines += ["Authentication: " + ("none" if op.get("security", None) == [] else
                                            "an API key (or a session)"), ""]
            inputs = [i for i in _inputs(op) if i[0] != "csrf_token"]
            body = _body_schema(op)
            if inputs:
                lines += ["| name | in | required | constraints | description |", "|---|---|---|---|---|"]
                for name, where, required, schema, description in inputs:
                    lines.append(f"| `{name}` | {where} | {'yes' if required else 'no'} | "
                                 f"{_md(constraints(schema))} | {_md(description)} |")
                lines.append("")
            if body is not None and body.get("additionalProperties") is False:
                lines += ["Other body fields are refused.", ""]
            lines += ["Example:", "", "```sh", curl(base, path, method, op), "```", ""]
            answer = _answer_fields(op)
            if answer:
                lines += [f"Answers (200): `{answer}`", ""]
            codes = [c for c in op["responses"] if c != "200"]
            if codes:
                lines += ["Errors: " + ", ".join(f"{c} {op['responses'][c]['description']}" for c in codes), ""]
    lines += ["## Machine-readable", "", f"The full schemas of every answer: `{base}/api/openapi.json`.", "",
              "<!-- generated from the OpenAPI document; info: " + json.dumps(info.get("version", "")) + " -->",
              ""]
    return "\n".join(lines)
