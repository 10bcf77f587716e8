"""Pricing (SPEC section 7): USD price / token USD rate, rounded up to the token's
decimals, exact; stale or missing rate refuses with 409; manual price for test networks."""
import pytest

from lib import config, pricing, tokens
from lib.http import HttpError
from tests import market
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)


# -- pure arithmetic ---------------------------------------------------------------

@pytest.mark.parametrize("price, rate, decimals, expected", [
    ("100", "2000", 18, 5 * 10 ** 16),                          # 0.05 ETH exactly
    ("1", "3", 18, 333333333333333334),                         # 1/3 rounds up in the last unit
    ("10", "0.999", 6, 10010011),                               # 10.010010010.. USDC -> up
    ("10", "1", 6, 10000000),                                   # exact, no rounding
    ("0.01", "3456.78", 18, 2892865614821),                       # 2892865614820.729.. -> up
    ("1000000", "0.000001", 6, 10 ** 18),                       # large result stays exact
    ("19.99", "1234.567890123456789", 18, 16191900145727102),   # ..145727101.33 -> up
    ("5", "2", 0, 3),                                           # 0-decimal token: 2.5 -> 3
])
def test_amount_for_rounds_up_exactly(price, rate, decimals, expected):
    assert pricing.amount_for(price, rate, decimals) == expected


def test_rounding_never_undercharges():
    # For a spread of prices the amount times the rate is >= the price, and one base
    # unit less would be < the price.
    from fractions import Fraction
    for cents in (1, 7, 99, 101, 1999, 123457):
        price = Fraction(cents, 100)
        for rate, decimals in (("1817.33", 18), ("0.99987", 6), ("3.5", 6)):
            amount = pricing.amount_for(f"{cents // 100}.{cents % 100:02d}",
                                        rate, decimals)
            paid = Fraction(amount, 10 ** decimals) * Fraction(rate)
            less = Fraction(amount - 1, 10 ** decimals) * Fraction(rate)
            assert paid >= price > less


@pytest.mark.parametrize("units, decimals, text", [
    (125000, 6, "0.125"), (5 * 10 ** 16, 18, "0.05"), (0, 18, "0"), (10 ** 18, 18, "1"),
    (1, 18, "0.000000000000000001"), (123456789, 0, "123456789"), ("2500000", 6, "2.5"),
    (10 ** 30 + 1, 18, "1000000000000.000000000000000001"), (-5, 1, "-0.5"),
])
def test_format_amount(units, decimals, text):
    assert pricing.format_amount(units, decimals) == text


@pytest.mark.parametrize("text, decimals, units", [
    ("0.125", 6, 125000), ("1", 18, 10 ** 18), ("0.000000000000000001", 18, 1), ("2.50", 6, 2500000),
])
def test_parse_amount_round_trips(text, decimals, units):
    assert pricing.parse_amount(text, decimals) == units
    assert pricing.parse_amount(pricing.format_amount(units, decimals), decimals) == units


@pytest.mark.parametrize("text", ["", "abc", "1e5", "-1", "0.1234567", "1,5", " 1 2"])
def test_parse_amount_rejects(text):
    with pytest.raises(HttpError) as e:
        pricing.parse_amount(text, 6)
    assert e.value.status == 400


# -- rates from the database ---------------------------------------------------------

def test_quote_with_fresh_rate(db):
    eth = market.add_token(db, 1, "ETH")
    market.set_rate(db, 1, "ETH", "2000", age_seconds=60)
    assert pricing.quote(db, "100", eth) == 5 * 10 ** 16
    detail = pricing.quote_detail(db, "100", eth)
    assert detail["usd_rate"] == "2000" and detail["rate_source"] == "prices"


def test_quote_6_decimal_token(db):
    usdc = market.add_token(db, 1, "USDC", market.USDC, decimals=6)
    assert usdc["decimals"] == 6
    market.set_rate(db, 1, "USDC", "0.9998", contract=market.USDC)
    # 25 / 0.9998 = 25.00500100020004.. -> 25.005002 USDC
    assert pricing.quote(db, "25", usdc) == 25005002
    assert pricing.format_amount(pricing.quote(db, "25", usdc), 6) == "25.005002"


def test_quote_18_decimal_token(db):
    dai = market.add_token(db, 1, "DAI", market.DAI, decimals=18)
    market.set_rate(db, 1, "DAI", "1.0001", contract=market.DAI)
    # 1 / 1.0001 = 0.99990000999900009999.. -> rounded up in the 18th place
    assert pricing.quote(db, "1", dai) == 999900009999000100


def test_stale_rate_is_409_with_message(db):
    eth = market.add_token(db, 1, "ETH")
    market.set_rate(db, 1, "ETH", "2000", age_seconds=16 * 60)   # price_max_age is 15m
    with pytest.raises(HttpError) as e:
        pricing.quote(db, "100", eth)
    assert e.value.status == 409
    assert "stale" in e.value.message and "price_max_age" in e.value.message


def test_price_max_age_is_configurable(db):
    eth = market.add_token(db, 1, "ETH")
    market.set_rate(db, 1, "ETH", "2000", age_seconds=16 * 60)
    config.set_values(db, {"price_max_age": "1h"})
    assert pricing.quote(db, "100", eth) == 5 * 10 ** 16
    config.set_values(db, {"price_max_age": "1m"})
    market.set_rate(db, 1, "ETH", "2000", age_seconds=90)
    with pytest.raises(HttpError) as e:
        pricing.quote(db, "100", eth)
    assert e.value.status == 409


def test_missing_rate_is_409(db):
    eth = market.add_token(db, 1, "ETH")
    with pytest.raises(HttpError) as e:
        pricing.quote(db, "100", eth)
    assert e.value.status == 409 and "no USD rate" in e.value.message


def test_rate_of_another_contract_does_not_count(db):
    usdc = market.add_token(db, 1, "USDC", market.USDC, decimals=6)
    market.set_rate(db, 1, "USDC", "1", contract=market.DAI)
    with pytest.raises(HttpError) as e:
        pricing.quote(db, "10", usdc)
    assert e.value.status == 409


@pytest.mark.parametrize("bad", ["0", "-3", "abc"])
def test_unusable_rate_is_409(db, bad):
    eth = market.add_token(db, 1, "ETH")
    market.set_rate(db, 1, "ETH", bad)
    with pytest.raises(HttpError) as e:
        pricing.quote(db, "100", eth)
    assert e.value.status == 409


@pytest.mark.parametrize("settings", [{"ALLOW_TESTNETS": "1"}])
def test_manual_price_on_test_network(db):
    eth = market.add_token(db, 11155111, "ETH", manual_usd_price="2500")
    assert eth["manual_usd_price"] == "2500"
    # No prices row at all: the manual price is used.
    assert pricing.quote(db, "100", eth) == 4 * 10 ** 16
    assert pricing.quote_detail(db, "100", eth)["rate_source"] == "manual"


@pytest.mark.parametrize("settings", [{"ALLOW_TESTNETS": "1"}])
def test_manual_price_wins_over_a_stale_row(db):
    eth = market.add_token(db, 11155111, "ETH", manual_usd_price="2500")
    market.set_rate(db, 11155111, "ETH", "1", age_seconds=10 ** 6)
    assert pricing.quote(db, "100", eth) == 4 * 10 ** 16


def test_manual_price_refused_on_mainnet(db):
    with pytest.raises(HttpError) as e:
        tokens.add_token(db, 1, "ETH", "", None, "2500")
    assert e.value.status == 400 and "test networks" in e.value.message
    assert db.value("SELECT COUNT(*) FROM accepted_tokens") == 0


def test_unverified_token_without_decimals_cannot_be_quoted(db):
    token = tokens.add_token(db, 1, "USDC", market.USDC)
    assert token["decimals"] is None
    with pytest.raises(HttpError) as e:
        pricing.quote(db, "10", token)
    assert e.value.status == 409
