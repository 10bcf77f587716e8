"""GET/POST /staff/warnings.php : warnings staff put on stores (lib.store_warnings).

GET lists the active warnings (?retired=1 also the retired ones). POST `action` = add
(`store`: the store's name or uuid, `reason`) | retire (`id`). Both audited; 400 names
the bad field and changes nothing, 409 a warning retired already. The store page shows
the active ones (as does GET /api/store-warnings.php).
"""
from lib import store_warnings, web
from lib.db import get_db
from lib.http import BadRequest, HttpError

TITLE = "Store warnings"


def _page(request, db, status=200, error=None, errors=None):
    retired = request.arg("retired") == "1"
    pager = web.pager(request, lambda limit, offset: store_warnings.list_all(db, retired, limit, offset))
    return web.page(request, "staff/warnings.html", TITLE, status=status, error=error, errors=errors or {},
                    form=dict(request.data) if request.method == "POST" else {}, pager=pager, retired=retired,
                    staff_tab="warnings", nav_active="staff")


def get(request):
    web.staff(request)
    return _page(request, get_db())


def post(request):
    user = web.staff(request)
    db = get_db()
    data = request.data
    action = data.get("action")
    try:
        if action == "add":
            row = store_warnings.add(db, user, data.get("store"), data.get("reason"), ip=request.client_ip)
            message = f"Warning added to {row['storename']}."
        elif action == "retire":
            row = store_warnings.retire(db, user, data.get("id"), ip=request.client_ip)
            message = f"Warning on {row['storename']} retired."
        else:
            raise BadRequest("action must be add or retire", fields={"action": "bad"})
    except HttpError as e:
        return _page(request, db, status=e.status, error=e.message, errors=e.fields)
    return web.see_other(web.same_page(request), message, request)
