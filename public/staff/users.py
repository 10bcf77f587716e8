"""GET/POST /staff/users.php?q= : users; staff ban and unban (lib.staff.set_banned rules).

POST `user_uuid`, `banned` = 1 | 0; or POST `user_uuid`, `action=reset_link`: a one-time
password reset link for that user (lib.recovery: expires in an hour, never for an admin
or oneself), shown only in this answer, audited.
"""
from lib import env, recovery, staff, web
from lib.db import get_db
from lib.http import BadRequest, HttpError, json_response

TITLE = "Users"


def _page(request, db, user, status=200, error=None):
    q = request.arg("q")
    try:
        staff.search_text(q)
    except HttpError as e:
        status, error, q = e.status, e.message, None
    pager = web.pager(request, lambda limit, offset: staff.list_users(db, q, limit=limit, offset=offset))
    for row in pager.rows:
        row["may_ban"] = staff.may_ban(user, row)
        row["may_reset"] = recovery.reset_refusal(user, row) is None
    return web.page(request, "staff/users.html", TITLE, status=status, error=error, pager=pager, q=q,
                    staff_tab="users", nav_active="staff")


def get(request):
    user = web.staff(request)
    return _page(request, get_db(), user)


def post(request):
    user = web.staff(request)
    db = get_db()
    data = request.data
    if data.get("action") == "reset_link":
        try:
            token, target = recovery.issue_reset_link(db, user, data.get("user_uuid"), request.client_ip)
        except HttpError as e:
            return _page(request, db, user, status=e.status, error=e.message)
        link = (env.get("SITE_URL", "") or "").rstrip("/") + "/reset.php?reset_token=" + token
        if not request.wants_html:
            return json_response({"username": target["username"], "user_uuid": target["uuid"], "link": link,
                                  "expires_in_seconds": recovery.RESET_LINK_SECONDS},
                                 headers=[("Cache-Control", "no-store")])
        return web.page(request, "staff/reset_link.html", "Reset link", target=target, link=link,
                        expires_minutes=recovery.RESET_LINK_SECONDS // 60, staff_tab="users",
                        nav_active="staff", headers=[("Cache-Control", "no-store")])
    try:
        flag = data.get("banned")
        if flag not in ("0", "1"):
            raise BadRequest("banned must be 1 or 0")
        target = staff.set_banned(db, user, data.get("user_uuid"), flag == "1", request.client_ip)
    except HttpError as e:
        return _page(request, db, user, status=e.status, error=e.message)
    web.flash(request, f"{target['username']} is {'banned' if target['banned'] else 'no longer banned'}.")
    return web.see_other(web.same_page(request))
