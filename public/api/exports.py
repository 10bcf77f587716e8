"""GET /api/exports.php?kind=&from=&to=&format=&store_uuid= : a CSV or JSON export of a
date range (lib/exports.py), streamed.

kind: sales (default; my stores' orders, or store_uuid's) or, for staff, orders, payouts,
commissions, referrals, disputes. from, to: dates YYYY-MM-DD (UTC, both included), on the
rows' created_at. format: csv (default) or json ({"kind", "from", "to", "rows": [...]}).
Bad input is a 400 naming the field; a staff kind asked by a non-staff user 403.
"""
from lib import exports
from lib.db import get_db
from lib.http import StreamResponse

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def get(request):
    spec = exports.parse(request)
    return StreamResponse(exports.body(get_db(), spec), 200, CONTENT_TYPES[spec["format"]], [
        ("Content-Disposition", f'attachment; filename="{exports.filename(spec)}"'),
        ("Cache-Control", "no-store")])
