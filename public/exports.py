"""GET /exports.php : the export form (lib/exports.py): a vendor's sales of a date range,
and for staff every order, payout, commission, referral payment and dispute outcome. The
form GETs /api/exports.php, which streams the CSV or JSON file."""
import datetime

from lib import auth, exports, web
from lib.db import get_db


def get(request):
    user = web.login(request)
    db = get_db()
    stores = db.query("SELECT s.uuid AS uuid, s.storename AS storename FROM store_users m "
                      "JOIN stores s ON s.uuid = m.store_uuid WHERE m.user_uuid = ? ORDER BY s.storename",
                      (user["uuid"],))
    kinds = list(exports.VENDOR_KINDS if stores else ()) + \
        list(exports.STAFF_KINDS if auth.is_staff(user) else ())
    today = datetime.datetime.now(datetime.timezone.utc).date()
    return web.page(request, "exports.html", "Exports", stores=stores, kinds=kinds,
                    default_from=today.replace(day=1).isoformat(), default_to=today.isoformat(),
                    nav_active="exports")
