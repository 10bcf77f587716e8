"""GET /referrals.php : my referral link, the people I invited, my referral earnings."""
import urllib.parse

from lib import config, env, referrals, web
from lib.db import get_db


def get(request):
    user = web.login(request)
    db = get_db()
    site = (env.get("SITE_URL", "") or "").rstrip("/")
    link = f"{site}/register.php?invite={urllib.parse.quote(user['username'])}"
    percent = f"{config.referral_percent(db, 'free') * 100:.0f}%"
    return web.page(request, "referrals.html", "Referrals", link=link, percent=percent,
                    earnings=referrals.earnings(db, user["uuid"]),
                    payments=referrals.payments(db, user["uuid"], limit=20),
                    invited=referrals.invited_users(db, user["uuid"], limit=100),
                    invited_count=referrals.invited_count(db, user["uuid"]))
