"""Pricing (SPEC section 7): USD package prices -> token amounts, exactly.

required amount (base units) = ceil(price_usd * 10**decimals / usd_rate)

The rate is the token's `manual_usd_price` when set (test networks only), otherwise
the `prices` row cron keeps fresh. A rate older than the `price_max_age` config or
missing refuses the quote with 409. Arithmetic uses Fraction over the exact decimal
strings, so no float ever touches an amount; rounding is up, so the buyer never pays
less than the USD price.
"""
import math
import re
import time
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from fractions import Fraction

from lib import config
from lib.db import age_seconds, parse_time
from lib.http import BadRequest, Conflict, HttpError

_DECIMAL_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def _exact(text):
    """Fraction from a non-negative decimal string, or None when it is not one."""
    text = str(text).strip()
    if not _DECIMAL_RE.match(text):
        return None
    try:
        return Fraction(Decimal(text))
    except (InvalidOperation, ValueError):
        return None


def usd_rate(db, token):
    """(rate as decimal string, source, fetched_at) for `token`; HttpError 409 if unusable.

    source is 'manual' (manual_usd_price) or 'prices' (cron's table).
    """
    name = f"{token['symbol']} on chain {token['chain_id']}"
    manual = token.get("manual_usd_price")
    if manual not in (None, ""):
        value = _exact(manual)
        if value is None or value <= 0:
            raise Conflict(f"the manual USD price of {name} is not a positive number")
        return str(manual), "manual", None
    row = db.one("SELECT usd_price, fetched_at, contract_address FROM prices "
                 "WHERE chain_id = ? AND symbol = ?", (token["chain_id"], token["symbol"]))
    if row is None or (row["contract_address"] or "").lower() != (token["contract_address"] or "").lower():
        raise Conflict(f"no USD rate for {name} is available yet; orders in {token['symbol']} "
                             "are refused until the price refresh has run")
    max_age = config.duration(db, "price_max_age")
    age = age_seconds(row["fetched_at"])
    if age > max_age:
        raise Conflict(f"the USD rate of {name} is stale (fetched {row['fetched_at']} UTC, "
                             f"older than price_max_age {config.raw(db, 'price_max_age')}); "
                             "try again after the next price refresh")
    value = _exact(row["usd_price"])
    if value is None or value <= 0:
        raise Conflict(f"the USD rate of {name} is not usable ({row['usd_price']!r})")
    return str(row["usd_price"]), "prices", row["fetched_at"]


def amount_for(price_usd, usd_rate_text, decimals):
    """Base units for price_usd at usd_rate_text with `decimals`, rounded up. Pure."""
    price = _exact(price_usd)
    rate = _exact(usd_rate_text)
    if price is None or rate is None or rate <= 0:
        raise ValueError(f"bad price {price_usd!r} or rate {usd_rate_text!r}")
    return math.ceil(price * (10 ** int(decimals)) / rate)


def rates_valid_until(db):
    """The Unix time at which the next fresh `prices` row turns stale (None: none will):
    until then whatever was computed from the rates (quotes, the vendor bond) holds."""
    max_age = config.duration(db, "price_max_age")
    now = time.time()
    ends = [parse_time(r["fetched_at"]).timestamp() + max_age for r in db.query("SELECT fetched_at FROM prices")]
    ends = [t for t in ends if t >= now]
    return min(ends) if ends else None


def quotable_rate(db, token):
    """usd_rate() for a token whose decimals are known; 409 otherwise."""
    if token.get("decimals") is None:
        raise Conflict(f"{token['symbol']} on chain {token['chain_id']} has no known decimals yet")
    return usd_rate(db, token)


def quote_detail(db, price_usd, token):
    """{'required_amount': int base units, 'usd_rate', 'rate_source', 'rate_fetched_at'}."""
    rate, source, fetched_at = quotable_rate(db, token)
    return {"required_amount": amount_for(price_usd, rate, token["decimals"]), "usd_rate": rate,
            "rate_source": source, "rate_fetched_at": fetched_at}


def quote(db, price_usd, token):
    """The amount due in `token` base units (int) for price_usd; 409 on a stale/missing rate."""
    return quote_detail(db, price_usd, token)["required_amount"]


def format_amount(base_units, decimals):
    """Base units (int or decimal string) -> token units string: (125000, 6) -> '0.125'."""
    value = int(base_units)
    decimals = int(decimals)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if decimals == 0:
        return f"{sign}{value}"
    whole, frac = divmod(value, 10 ** decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"


def parse_amount(text, decimals, field="amount"):
    """Token units string -> base units int; 400 when not a plain decimal or too precise."""
    text = str(text).strip() if text is not None else ""
    if not re.match(r"^[0-9]{1,40}(\.[0-9]+)?$", text):
        raise BadRequest(f"{field} must be a decimal number of token units")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if len(frac) > int(decimals):
        raise BadRequest(f"{field} has more than {decimals} decimal places")
    return int(whole) * 10 ** int(decimals) + (int(frac.ljust(int(decimals), "0")) if frac else 0)


def deposit_fields(db, row, balance):
    """The original's fields of a deposit: crypto (the currency symbol), crypto_value (the
    balance in token units), currency_rate (the token's USD rate as a decimal string: its
    manual_usd_price or cron's fresh `prices` row, null when none is usable) and fiat_value
    (crypto_value x currency_rate in USD, rounded down to the cent; null without a rate)."""
    rate = None
    token = db.one("SELECT chain_id, symbol, contract_address, manual_usd_price FROM accepted_tokens "
                   "WHERE chain_id = ? AND UPPER(symbol) = ?", (row["chain_id"], str(row["currency"]).upper()))
    if token is not None and (token["contract_address"] or "").lower() == (row["token_contract"] or "").lower():
        try:
            rate = usd_rate(db, token)[0]
        except HttpError:
            rate = None
    fiat = None
    if rate is not None:
        fiat = str((Decimal(balance) * Decimal(rate)).quantize(Decimal("0.01"), rounding=ROUND_DOWN))
    return {"crypto": row["currency"], "crypto_value": balance, "fiat_value": fiat, "currency_rate": rate}
