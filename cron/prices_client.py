"""The Alchemy Prices API client: current USD prices as Decimal, over the HTTP layer of
cron/rpc_client.py (the same retries, backoff, Retry-After and error types).

Used only by the cron layer (cron/prices.py).
"""
import json
import time
import urllib.parse
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Optional

from cron.rpc_client import ConfigError, RpcTransportError, HttpJson, snippet


@dataclass(frozen=True)
class PriceQuote:
    usd: Optional[Decimal]          # None when the API had no price
    last_updated_at: Optional[str]  # ISO timestamp from the API
    error: Optional[str] = None


def _parse_quote(item):
    err = item.get("error")
    if isinstance(err, dict):
        err = err.get("message") or json.dumps(err)
    for p in item.get("prices") or []:
        if isinstance(p, dict) and str(p.get("currency", "")).lower() == "usd":
            try:
                value = Decimal(str(p.get("value")))
            except InvalidOperation:
                return PriceQuote(None, None, "unparseable price %r" % (p.get("value"),))
            if not value.is_finite() or value <= 0:
                return PriceQuote(None, None, "invalid price %r" % (p.get("value"),))
            return PriceQuote(value, p.get("lastUpdatedAt"), None)
    return PriceQuote(None, None, err or "no usd price")


class PricesClient(HttpJson):
    """Alchemy Prices API: current USD prices as Decimal (parsed from strings).

    base_url defaults to https://api.g.alchemy.com/prices/v1/<api_key>;
    ALCHEMY_PRICES_URL (see from_env) replaces it for tests.
    """

    MAX_PER_REQUEST = 25  # the API's limit on symbols / addresses per call

    def __init__(self, api_key, base_url=None, timeout=10, retries=4, backoff=0.5,
                 max_retry_after=10.0, sleep=time.sleep):
        if not base_url:
            if not api_key:
                raise ConfigError("Prices API needs ALCHEMY_API_KEY (or ALCHEMY_PRICES_URL)")
            base_url = "https://api.g.alchemy.com/prices/v1/%s" % urllib.parse.quote(api_key, safe="")
        super().__init__(base_url, timeout, retries, backoff, max_retry_after, sleep)

    @classmethod
    def from_env(cls, env, **kw):
        return cls(env.get("ALCHEMY_API_KEY"), base_url=env.get("ALCHEMY_PRICES_URL") or None, **kw)

    def _get(self, suffix, query):
        return self._with_retries(lambda: self._attempt_json("GET", self._path(suffix, query), None))

    def _post(self, suffix, payload):
        return self._with_retries(lambda: self._attempt_json("POST", self._path(suffix), payload))

    @staticmethod
    def _data(reply):
        if not isinstance(reply, dict) or not isinstance(reply.get("data"), list):
            raise RpcTransportError("Prices API reply has no data list: %r" % snippet(json.dumps(reply), 120))
        return [x for x in reply["data"] if isinstance(x, dict)]

    def quotes_by_symbols(self, symbols):
        """{symbol: PriceQuote}; keys exactly as given, matched case-insensitively."""
        symbols = list(dict.fromkeys(symbols))
        out = {s: PriceQuote(None, None, "missing from reply") for s in symbols}
        by_upper = {s.upper(): s for s in symbols}
        for i in range(0, len(symbols), self.MAX_PER_REQUEST):
            chunk = symbols[i:i + self.MAX_PER_REQUEST]
            query = urllib.parse.urlencode([("symbols", s) for s in chunk])
            for item in self._data(self._get("/tokens/by-symbol", query)):
                key = by_upper.get(str(item.get("symbol", "")).upper())
                if key is not None:
                    out[key] = _parse_quote(item)
        return out

    def by_symbols(self, symbols):
        """{symbol: Decimal USD price or None}."""
        return {s: q.usd for s, q in self.quotes_by_symbols(symbols).items()}

    def quotes_by_addresses(self, pairs):
        """{(network, address): PriceQuote} for [(alchemy network, token address), ...]."""
        pairs = list(dict.fromkeys((n, a) for n, a in pairs))
        out = {p: PriceQuote(None, None, "missing from reply") for p in pairs}
        norm = {(n, a.lower()): (n, a) for n, a in pairs}
        for i in range(0, len(pairs), self.MAX_PER_REQUEST):
            chunk = pairs[i:i + self.MAX_PER_REQUEST]
            reply = self._post("/tokens/by-address",
                               {"addresses": [{"network": n, "address": a} for n, a in chunk]})
            for item in self._data(reply):
                key = norm.get((str(item.get("network", "")), str(item.get("address", "")).lower()))
                if key is not None:
                    out[key] = _parse_quote(item)
        return out

    def by_addresses(self, pairs):
        """{(network, address): Decimal USD price or None}."""
        return {p: q.usd for p, q in self.quotes_by_addresses(pairs).items()}
