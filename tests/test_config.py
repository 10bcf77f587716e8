"""Config keys, defaults and validation (SPEC section 6)."""
from decimal import Decimal

import pytest

from lib import config


def test_defaults(db):
    values = config.all_values(db)
    assert values["pending_duration"] == "24h"
    assert values["completion_tolerance"] == "0.05"
    assert config.duration(db, "price_max_age") == 15 * 60
    assert config.commission(db, "gold") == Decimal("0.02")
    assert config.commission(db, "free") == Decimal("0.20")
    assert config.referral_percent(db, "silver") == Decimal("0.50")
    assert config.count(db, "required_confirmations") == 3
    assert len(values) == len(config.KEYS) == 18 + 5         # and one depth per supported chain (vendor_bond_usd, require_2fa_for_staff)
    assert config.confirmations(db, 1) == 12 and config.confirmations(db, 137) == "finalized"
    assert config.confirmations(db, 8453) == 10 and config.confirmations(db, 31337) == 3


def test_chain_depth_falls_back_to_a_stored_global_value(db):
    config.set_values(db, {"required_confirmations": "7"})
    assert config.confirmations(db, 1) == 7
    config.set_values(db, {"required_confirmations_1": "safe"})
    assert config.confirmations(db, 1) == "safe" and config.confirmations(db, 8453) == 7


def test_set_and_read_back(db):
    config.set_values(db, {"pending_duration": "2d", "completion_tolerance": "0.010"})
    assert config.duration(db, "pending_duration") == 2 * 86400
    assert config.fraction(db, "completion_tolerance") == Decimal("0.010")


@pytest.mark.parametrize("name,value", [
    ("pending_duration", "24"), ("pending_duration", "0h"), ("pending_duration", "1w"),
    ("pending_duration", "-1h"), ("pending_duration", ""), ("pending_duration", "1.5h"),
    ("completion_tolerance", "1.5"), ("completion_tolerance", "-0.1"), ("completion_tolerance", "abc"),
    ("completion_tolerance", "NaN"), ("completion_tolerance", "1e-3"),
    ("required_confirmations", "-1"), ("required_confirmations", "2.5"), ("required_confirmations", "x"),
    ("required_confirmations_1", "latest"), ("required_confirmations_1", "-3"), ("required_confirmations_9", "3"),
    ("vendor_bond_usd", "-1"), ("vendor_bond_usd", "1.234"), ("vendor_bond_usd", "abc"),
    ("vendor_bond_usd", "1e3"), ("vendor_bond_usd", "2000000000"), ("vendor_bond_usd", ""),
    ("no_such_key", "1"),
])
def test_bad_values_are_refused_and_nothing_written(db, name, value):
    with pytest.raises(config.ConfigError) as e:
        config.set_values(db, {"dispatch_duration": "1h", name: value})
    assert name in str(e.value)
    assert db.value("SELECT COUNT(*) FROM config") == 0


@pytest.mark.parametrize("text,seconds", [("15m", 900), ("24h", 86400), ("3d", 259200)])
def test_parse_duration(text, seconds):
    assert config.parse_duration(text) == seconds


def test_vendor_bond_usd_is_a_usd_amount(db):
    assert config.usd(db, "vendor_bond_usd") == Decimal("0")
    assert config.set_values(db, {"vendor_bond_usd": " 250.5 "}) == {"vendor_bond_usd": "250.5"}
    assert config.usd(db, "vendor_bond_usd") == Decimal("250.5")
