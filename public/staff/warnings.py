"""GET/POST /staff/warnings.php : warnings staff put on stores (lib.store_warnings).

GET lists the active warnings (?retired=1 also the retired ones). POST `action` = add
(`store`: the store's name or uuid, `reason`) | retire (`id`). Both audited; 400 names
the bad field and changes nothing, 409 a warning retired already. The store page shows
the active ones (as does GET /api/store-warnings.php).
"""
from lib import store_warnings, web
from lib.db import get_db

TITLE = "Store warnings"


def _page(request, db, user=None, error=None):
    retired = request.arg("retired") == "1"
    pager = web.pager(request, lambda limit, offset: store_warnings.list_all(db, retired, limit, offset))
    return web.form_page(request, "staff/warnings.html", TITLE, error, pager=pager, retired=retired,
                         staff_tab="warnings", nav_active="staff")


def _add(request, db, user):
    row = store_warnings.add(db, user, request.data.get("store"), request.data.get("reason"), ip=request.client_ip)
    return f"Warning added to {row['storename']}."


def _retire(request, db, user):
    row = store_warnings.retire(db, user, request.data.get("id"), ip=request.client_ip)
    return f"Warning on {row['storename']} retired."


ACTIONS = {"add": _add, "retire": _retire}


def get(request):
    return _page(request, get_db(), web.staff(request))


def post(request):
    return web.act(request, web.staff(request), ACTIONS, _page)
