"""GET /verification/plan.php : the store tiers (gold, silver, bronze, free), what the
marketplace keeps of each sale (commission) and the referrer's part of that commission,
from the config (lib.tiers). Browsers get HTML; other clients JSON
{"tiers": [{"tier", "commission", "referral_percent"}]} (fractions as decimal strings);
/api/plan.php is the documented JSON endpoint.
"""
from lib import tiers, web
from lib.db import get_db
from lib.http import json_response

TITLE = "Store tiers"


def get(request):
    rows = tiers.table(get_db())
    if request.wants_html:
        return web.page(request, "verification/plan.html", TITLE, tiers=rows)
    return json_response({"tiers": [{k: r[k] for k in ("tier", "commission", "referral_percent")} for r in rows]})
