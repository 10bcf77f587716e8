"""GET/POST /staff/users.php?q= : users; staff ban and unban (lib.staff.set_banned rules).

POST `user_uuid`, `banned` = 1 | 0; or POST `user_uuid`, `action=reset_link`: a one-time
password reset link for that user (lib.recovery: expires in an hour, never for an admin
or oneself), shown only in this answer, audited.
"""
from lib import env, recovery, staff, web
from lib.db import get_db
from lib.http import BadRequest, HttpError, json_response

TITLE = "Users"


def _page(request, db, user, error=None):
    q = request.arg("q")
    try:
        staff.search_text(q)
    except HttpError as e:
        error, q = e, None
    pager = web.pager(request, lambda limit, offset: staff.list_users(db, q, limit=limit, offset=offset))
    for row in pager.rows:
        row["may_ban"] = staff.may_ban(user, row)
        row["may_reset"] = recovery.reset_refusal(user, row) is None
    return web.page(request, "staff/users.html", TITLE, status=error.status if error else 200,
                    error=error.message if error else None, pager=pager, q=q,
                    staff_tab="users", nav_active="staff")


def _reset_link(request, db, user):
    token, target = recovery.issue_reset_link(db, user, request.data.get("user_uuid"), request.client_ip)
    link = (env.get("SITE_URL", "") or "").rstrip("/") + "/reset.php?reset_token=" + token
    if not request.wants_html:
        return json_response({"username": target["username"], "user_uuid": target["uuid"], "link": link,
                              "expires_in_seconds": recovery.RESET_LINK_SECONDS},
                             headers=[("Cache-Control", "no-store")])
    return web.page(request, "staff/reset_link.html", "Reset link", target=target, link=link,
                    expires_minutes=recovery.RESET_LINK_SECONDS // 60, staff_tab="users",
                    nav_active="staff", headers=[("Cache-Control", "no-store")])


def _ban(request, db, user):
    flag = request.data.get("banned")
    if flag not in ("0", "1"):
        raise BadRequest("banned must be 1 or 0")
    target = staff.set_banned(db, user, request.data.get("user_uuid"), flag == "1", request.client_ip)
    return f"{target['username']} is {'banned' if target['banned'] else 'no longer banned'}."


def get(request):
    return _page(request, get_db(), web.staff(request))


def post(request):
    user = web.staff(request)
    return web.submit(request, user, _reset_link if request.data.get("action") == "reset_link" else _ban, _page)
