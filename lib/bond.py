"""The vendor bond.

With the config key `vendor_bond_usd` > 0, a store's items are listed (marketplace,
store page, /api/items.php, /api/packages.php) and orderable only while the store's
deposits hold at least that value in USD. A deposit's value is its balance x the
token's USD rate (manual_usd_price, or cron's `prices` row while fresh); a deposit
whose token has no usable rate counts 0 (lib.pricing.deposit_fields).
"""
from decimal import Decimal

from lib import config, pricing

ZERO = Decimal("0")


def required(db):
    """The bond in USD (Decimal); 0 means off."""
    return config.usd(db, "vendor_bond_usd")


def held(db, store_uuid):
    """The USD value (Decimal, cents rounded down) of the store's deposits."""
    total = ZERO
    for row in db.query("SELECT chain_id, currency, token_contract, decimals, balance FROM deposits "
                        "WHERE store_uuid = ?", (store_uuid,)):
        balance = pricing.format_amount(int(row["balance"] or 0), row["decimals"])
        fiat = pricing.deposit_fields(db, row, balance)["fiat_value"]
        if fiat is not None:
            total += Decimal(fiat)
    return total


def status(db, store_uuid):
    """{"required", "held", "missing", "ok"} as decimal strings (ok a bool)."""
    need = required(db)
    have = held(db, store_uuid) if need > 0 else ZERO
    missing = max(need - have, ZERO)
    return {"required": str(need), "held": str(have), "missing": str(missing),
            "ok": need <= 0 or have >= need, "enabled": need > 0}


def is_bonded(db, store_uuid):
    need = required(db)
    return need <= 0 or held(db, store_uuid) >= need


def unbonded_stores(db):
    """The uuids of the stores whose items are hidden for want of bond (empty when off)."""
    need = required(db)
    if need <= 0:
        return set()
    return {r["uuid"] for r in db.query("SELECT uuid FROM stores WHERE suspended = 0")
            if held(db, r["uuid"]) < need}
