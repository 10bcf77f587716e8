"""A small standard-library client of the marketplace's JSON API (public/api/).

    api = MarketplaceAPI("http://127.0.0.1:8000", api_key)
    api.get("/api/items.php", q="widget")
    api.post("/api/transactions.php", package_uuid=..., currency="ETH", chain_id=1)

Every non-2xx answer raises ApiError(status, message) with the API's {"error": ...}
message; a network failure raises ApiError(0, ...). Nothing here knows about MCP.
It never imports lib/ or cron/: the MCP server reaches the marketplace only over HTTP.
"""
import contextvars
import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal, InvalidOperation

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT = 30

# The API key an MCP client sent with the current request (streamable HTTP: the
# `Authorization: Bearer KEY` or `X-API-Key: KEY` header), set by agent_mcp.server's middleware.
# It takes the place of the configured key for that request only.
request_key = contextvars.ContextVar("agent_mcp_request_key", default=None)


def key_from_headers(headers):
    """The marketplace API key in HTTP request headers (Bearer or X-API-Key), or None."""
    if not headers:
        return None
    value = headers.get("x-api-key") or ""
    auth = headers.get("authorization") or ""
    if not value and auth[:7].lower() == "bearer ":
        value = auth[7:]
    value = value.strip()
    return value or None


class ApiError(Exception):
    """The API refused a call (status 4xx/5xx) or could not be reached (status 0)."""

    def __init__(self, status, message, method="", path=""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.method = method
        self.path = path

    def as_dict(self):
        return {"error": self.message, "status": self.status, "request": f"{self.method} {self.path}".strip()}

    def __str__(self):
        where = f" ({self.method} {self.path})" if self.path else ""
        if self.status:
            return f"marketplace API error {self.status}{where}: {self.message}"
        return f"marketplace API unreachable{where}: {self.message}"


class MarketplaceAPI:
    def __init__(self, base_url=None, api_key=None, timeout=TIMEOUT):
        self.base_url = (base_url or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or None
        self.timeout = timeout

    def current_key(self):
        return request_key.get() or self.api_key

    def require_key(self, method, path):
        if not self.current_key():
            raise ApiError(401, "no credentials: set MARKETPLACE_API_KEY (or --api-key) to an API key of "
                                "the marketplace (create one at /api/keys.php or in your account settings), "
                                "or, over streamable HTTP, send it as 'Authorization: Bearer KEY'",
                           method, path)

    def request(self, method, path, params=None, body=None, auth=True):
        """One JSON call. `auth=False` for public catalog reads (the key is still sent if set)."""
        if auth:
            self.require_key(method, path)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None
        headers = {"Accept": "application/json", "User-Agent": "marketplace-agent-mcp/1"}
        if body is not None:
            data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
            headers["Content-Type"] = "application/json"
        key = self.current_key()
        if key:
            headers["Authorization"] = "Bearer " + key
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            raise ApiError(e.code, _error_message(raw, e.reason), method, path) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ApiError(0, f"{self.base_url}: {reason}", method, path) from None
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            raise ApiError(502, "the marketplace answered something that is not JSON", method, path) from None

    def get(self, path, auth=True, **params):
        return self.request("GET", path, params=params, auth=auth)

    def post(self, path, **body):
        return self.request("POST", path, body=body)


def _error_message(raw, fallback):
    try:
        body = json.loads(raw.decode("utf-8"))
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])
    except ValueError:
        pass
    text = raw.decode("utf-8", "replace").strip()
    return text[:300] or str(fallback)


# -- payment instructions -------------------------------------------------------------

def to_base_units(amount, decimals):
    """'0.05' with 18 decimals -> 50000000000000000 (exact; ValueError if not representable)."""
    try:
        value = Decimal(str(amount)) * (Decimal(10) ** int(decimals))
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"not an amount: {amount!r}") from None
    if value != value.to_integral_value():
        raise ValueError(f"{amount} has more than {decimals} decimals")
    return int(value)


def from_base_units(units, decimals):
    """50000000000000000 with 18 decimals -> '0.05' (no exponent, no trailing zeros)."""
    value = Decimal(int(units)) / (Decimal(10) ** int(decimals))
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def eip681(escrow_address, chain_id, amount_base_units, token_contract=""):
    """The EIP-681 URI the payment page shows (same format as lib/payment_uri.py).

    Native coin:  ethereum:<escrow>@<chain_id>?value=<wei>
    ERC-20:       ethereum:<token>@<chain_id>/transfer?address=<escrow>&uint256=<base units>
    """
    if token_contract:
        return (f"ethereum:{token_contract}@{int(chain_id)}/transfer?address={escrow_address}"
                f"&uint256={int(amount_base_units)}")
    return f"ethereum:{escrow_address}@{int(chain_id)}?value={int(amount_base_units)}"


def payment_instructions(order):
    """What a buyer has to send for `order` (the JSON of GET /api/transactions.php?uuid=)."""
    decimals = order.get("decimals")
    status = order.get("current_status")
    escrow = order.get("escrow_address") or None
    token = order.get("token_contract") or ""
    out = {
        "order_uuid": order.get("uuid"), "status": status, "chain_id": order.get("chain_id"),
        "currency": order.get("currency"), "token_contract": token or None, "decimals": decimals,
        "escrow_address": escrow, "amount_due": order.get("required_amount"),
        "amount_received": order.get("received_amount") or "0", "amount_remaining": None,
        "amount_remaining_base_units": None, "payment_uri": None, "ready_to_pay": False,
    }
    if decimals is None or out["amount_due"] is None:
        out["note"] = "the order has no amount to pay"
        return out
    due = to_base_units(out["amount_due"], decimals)
    received = to_base_units(out["amount_received"], decimals)
    remaining = max(due - received, 0)
    out["amount_remaining"] = from_base_units(remaining, decimals)
    out["amount_remaining_base_units"] = str(remaining)
    if not escrow:
        out["note"] = ("the escrow address is being assigned (the marketplace's cron does it within "
                       "about a minute); call this tool again shortly")
    elif status != "PENDING":
        out["note"] = f"the order is {status}: nothing to pay"
    elif remaining == 0:
        out["note"] = "the full amount has been received; waiting for confirmations"
    else:
        out["ready_to_pay"] = True
        # An API that states the URI itself wins; else the same format as lib/payment_uri.py.
        out["payment_uri"] = order.get("payment_uri") or eip681(escrow, order["chain_id"], remaining, token)
        what = f"{out['amount_remaining']} {out['currency']}"
        kind = f"the ERC-20 token {token}" if token else "the chain's native coin"
        out["note"] = (f"send exactly {what} ({kind}) on chain {order['chain_id']} to {escrow}; "
                       "the order turns COMPLETED once the payment is confirmed")
    return out
