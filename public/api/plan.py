"""GET /api/plan.php : the store tiers (lib.tiers) -> {"tiers": [{"tier", "commission",
"referral_percent", "commission_percent", "referral_share_percent", "meaning"}]}: the
commission the marketplace keeps of a sale in each tier, and the referrer's part of it
(fractions as decimal strings, and as percentages), from the config. Anyone."""
from lib import auth, tiers
from lib.db import get_db
from lib.http import json_response


def get(request):
    auth.optional_user(request)     # an invalid key is 401 here too
    return json_response({"tiers": tiers.table(get_db())})
