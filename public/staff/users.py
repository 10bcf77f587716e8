"""GET/POST /staff/users.php?q= : users; staff ban and unban (lib.staff.set_banned rules).

POST `user_uuid`, `banned` = 1 | 0.
"""
from lib import staff, web
from lib.db import get_db
from lib.http import HttpError

TITLE = "Users"


def _page(request, db, user, status=200, error=None):
    q = request.arg("q")
    try:
        staff.list_users(db, q, limit=1)
    except HttpError as e:
        status, error, q = e.status, e.message, None
    pager = web.pager(request, lambda limit, offset: staff.list_users(db, q, limit=limit, offset=offset))
    for row in pager.rows:
        row["may_ban"] = staff.may_ban(user, row)
    return web.page(request, "staff/users.html", TITLE, status=status, error=error, pager=pager, q=q,
                    staff_tab="users", nav_active="staff")


def get(request):
    user = web.staff(request)
    return _page(request, get_db(), user)


def post(request):
    user = web.staff(request)
    db = get_db()
    data = request.data
    try:
        flag = data.get("banned")
        if flag not in ("0", "1"):
            raise HttpError(400, "banned must be 1 or 0")
        target = staff.set_banned(db, user, data.get("user_uuid"), flag == "1", request.client_ip)
    except HttpError as e:
        return _page(request, db, user, status=e.status, error=e.message)
    web.flash(request, f"{target['username']} is {'banned' if target['banned'] else 'no longer banned'}.")
    return web.see_other(web.same_page(request))
