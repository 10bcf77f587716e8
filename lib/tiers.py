"""Store tiers (gold, silver, bronze, free): what each means and, from the config, the
commission the marketplace keeps of a sale and the referrer's part of that commission.
Shown by /verification/plan.php and /api/plan.php."""
from lib import config

MEANING = {
    "gold": "the marketplace's most trusted stores: the lowest commission",
    "silver": "established stores with a good record",
    "bronze": "stores past their first sales",
    "free": "every new store starts here: the highest commission",
}


def _percent(fraction):
    text = f"{fraction * 100:.2f}".rstrip("0").rstrip(".")
    return text + "%"


def table(db):
    """One row per tier: tier, commission and referral_percent (fractions as decimal
    strings), the same as percentages, and what the tier means."""
    out = []
    for tier in config.TIERS:
        commission = config.commission(db, tier)
        referral = config.referral_percent(db, tier)
        out.append({"tier": tier, "commission": str(commission), "referral_percent": str(referral),
                    "commission_percent": _percent(commission), "referral_share_percent": _percent(referral),
                    "meaning": MEANING[tier]})
    return out
