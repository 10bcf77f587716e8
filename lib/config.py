"""Admin-editable settings (SPEC section 6): known keys, defaults, validation, typed getters.

Values are stored as strings in the `config` table; a missing row means the default.
Fractions are Decimal (money rules use them), durations are seconds.
"""
import re
from decimal import Decimal, InvalidOperation

from lib import audit, catalog_cache
from lib.db import utc_now

DURATION = "duration"    # N followed by m, h or d
FRACTION = "fraction"    # a decimal in [0, 1]
COUNT = "count"          # a non-negative integer
BOOL = "bool"            # 1 (on) or 0 (off)
DEPTH = "depth"          # a number of confirmations, or the node's 'finalized' / 'safe' block
USD = "usd"              # a non-negative USD amount below 1,000,000,000, at most 2 decimals

# name -> (kind, default, description)
KEYS = {
    "pending_duration": (DURATION, "24h", "how long an order may wait for payment"),
    "dispatch_duration": (DURATION, "72h", "how long a vendor has to dispatch a paid order"),
    "completed_duration": (DURATION, "336h", "after dispatch, time until automatic release"),
    "stuck_duration": (DURATION, "720h", "a paid order older than this is frozen for staff"),
    "completion_tolerance": (FRACTION, "0.05", "payment shortfall still counted as paid"),
    "required_confirmations": (COUNT, "3", "blocks before a balance counts"),
    "price_max_age": (DURATION, "15m", "oldest USD rate an order may be priced with"),
    "partial_refund_resolver_percent": (FRACTION, "0.10", "resolver's share of a partial refund"),
    "gold_account_commission": (FRACTION, "0.02", "marketplace commission, gold stores"),
    "silver_account_commission": (FRACTION, "0.05", "marketplace commission, silver stores"),
    "bronze_account_commission": (FRACTION, "0.10", "marketplace commission, bronze stores"),
    "free_account_commission": (FRACTION, "0.20", "marketplace commission, free stores"),
    "gold_account_referral_percent": (FRACTION, "0.50", "referrer's part of the commission, gold"),
    "silver_account_referral_percent": (FRACTION, "0.50", "referrer's part of the commission, silver"),
    "bronze_account_referral_percent": (FRACTION, "0.50", "referrer's part of the commission, bronze"),
    "free_account_referral_percent": (FRACTION, "0.50", "referrer's part of the commission, free"),
    "vendor_bond_usd": (USD, "0", "USD value a store's deposits must hold for its items to be listed (0: off)"),
    "require_2fa_for_staff": (BOOL, "0", "staff and admins must use two-factor login (1 on, 0 off)"),
}

# Confirmations per chain: how deep a payment or a payout must be before it counts.
# A number of blocks, or 'finalized' / 'safe' for the node's own finality tags.
# Ethereum: 12 blocks (2.4 minutes; deeper reorgs have not happened since the merge);
# Sepolia 3; Base 10 (20 s of 2 s blocks, a sequencer chain); Polygon: its 'finalized'
# block (milestones finalize within seconds; Polygon had 100+ block reorgs before them);
# the dev chain 3. A per-chain value that an admin has not set falls back to a stored
# `required_confirmations`, then to these defaults.
CHAIN_CONFIRMATIONS = {1: "12", 11155111: "3", 8453: "10", 137: "finalized", 31337: "3"}
for _chain_id, _default in CHAIN_CONFIRMATIONS.items():
    KEYS[f"required_confirmations_{_chain_id}"] = (
        DEPTH, _default, f"confirmations on chain {_chain_id} (a number, 'finalized' or 'safe')")
DEPTH_TAGS = ("finalized", "safe")

TIERS = ("gold", "silver", "bronze", "free")
_DURATION_RE = re.compile(r"^([0-9]{1,6})([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class ConfigError(ValueError):
    """A bad key or value; the message names the key."""


def parse_duration(text):
    """'15m' -> 900, '24h' -> 86400, '3d' -> 259200. Zero is refused."""
    m = _DURATION_RE.match(str(text).strip())
    if not m or int(m.group(1)) == 0:
        raise ConfigError(f"not a duration: {text!r} (use N followed by m, h or d, N > 0)")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def validate(name, value):
    """Return the normalized string for `name`, or raise ConfigError naming the key."""
    if name not in KEYS:
        raise ConfigError(f"unknown config key: {name}")
    kind = KEYS[name][0]
    text = str(value).strip()
    try:
        if kind == DURATION:
            parse_duration(text)
            return text
        if kind == FRACTION:
            if not re.match(r"^[0-9]*\.?[0-9]+$", text):
                raise ConfigError("not a decimal")
            number = Decimal(text)
            if not Decimal(0) <= number <= Decimal(1):
                raise ConfigError("must be between 0 and 1")
            return str(number)
        if kind == COUNT:
            if not re.match(r"^[0-9]{1,4}$", text):
                raise ConfigError("must be a whole number from 0 to 9999")
            return str(int(text))
        if kind == USD:
            if not re.match(r"^[0-9]{1,9}(\.[0-9]{1,2})?$", text):
                raise ConfigError("must be a USD amount below 1000000000 such as 250 or 99.50 "
                                  "(at most 2 decimals)")
            return str(Decimal(text))
        if kind == BOOL:
            if text not in ("0", "1"):
                raise ConfigError("must be 1 (on) or 0 (off)")
            return text
        if kind == DEPTH:
            if text.lower() in DEPTH_TAGS:
                return text.lower()
            if not re.match(r"^[0-9]{1,4}$", text):
                raise ConfigError("must be a whole number from 0 to 9999, 'finalized' or 'safe'")
            return str(int(text))
    except (ConfigError, InvalidOperation) as e:
        raise ConfigError(f"invalid value for {name}: {text!r} ({e})")
    raise ConfigError(f"unknown kind for {name}")


def stored(db):
    return {r["name"]: r["value"] for r in db.query("SELECT name, value FROM config")}


def all_values(db):
    """Every known key with its current value (stored or default)."""
    rows = stored(db)
    return {name: rows.get(name, spec[1]) for name, spec in KEYS.items()}


def raw(db, name):
    if name not in KEYS:
        raise ConfigError(f"unknown config key: {name}")
    value = db.value("SELECT value FROM config WHERE name = ?", (name,))
    return KEYS[name][1] if value is None else value


def duration(db, name):
    return parse_duration(raw(db, name))


def fraction(db, name):
    return Decimal(raw(db, name))


def count(db, name):
    return int(raw(db, name))


def confirmations(db, chain_id):
    """The depth of a chain: an int number of blocks, or 'finalized' / 'safe'."""
    rows = stored(db)
    name = f"required_confirmations_{int(chain_id)}"
    if name in rows:
        value = rows[name]
    elif "required_confirmations" in rows:
        value = rows["required_confirmations"]
    else:
        value = CHAIN_CONFIRMATIONS.get(int(chain_id), KEYS["required_confirmations"][1])
    return value if value in DEPTH_TAGS else int(value)


def usd(db, name):
    return Decimal(raw(db, name))


def commission(db, tier):
    return fraction(db, f"{tier}_account_commission")


def referral_percent(db, tier):
    return fraction(db, f"{tier}_account_referral_percent")


def set_values(db, values, by=None, ip=None):
    """Validate every pair first, then write them all in one transaction; `by` (the admin's
    uuid) audits the change in it."""
    clean = {name: validate(name, value) for name, value in values.items()}
    with db.transaction():
        for name, value in clean.items():
            db.upsert("config", {"name": name}, {"value": value, "updated_at": utc_now()})
        catalog_cache.changed(db)   # the vendor bond and price_max_age show on catalog pages
        if by is not None:
            audit.log(db, "config_changed", by, None, ", ".join(f"{k}={v}" for k, v in clean.items()), ip)
    return clean
