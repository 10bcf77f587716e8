"""GET /verification/plan.php : the store tiers (gold, silver, bronze, free), what the
marketplace keeps of each sale (commission) and the referrer's part of that commission,
from the config (lib.config). Browsers get HTML; other clients JSON
{"tiers": [{"tier", "commission", "referral_percent"}]} (fractions as decimal strings).
"""
from lib import config, web
from lib.db import get_db
from lib.http import json_response

TITLE = "Store tiers"
MEANING = {
    "gold": "the marketplace's most trusted stores: the lowest commission",
    "silver": "established stores with a good record",
    "bronze": "stores past their first sales",
    "free": "every new store starts here: the highest commission",
}


def tiers(db):
    out = []
    for tier in config.TIERS:
        commission = config.commission(db, tier)
        referral = config.referral_percent(db, tier)
        out.append({"tier": tier, "commission": str(commission), "referral_percent": str(referral),
                    "commission_percent": _percent(commission), "referral_share_percent": _percent(referral),
                    "meaning": MEANING[tier]})
    return out


def _percent(fraction):
    text = f"{fraction * 100:.2f}".rstrip("0").rstrip(".")
    return text + "%"


def get(request):
    db = get_db()
    rows = tiers(db)
    if request.wants_html:
        return web.page(request, "verification/plan.html", TITLE, tiers=rows)
    return json_response({"tiers": [{k: r[k] for k in ("tier", "commission", "referral_percent")} for r in rows]})
