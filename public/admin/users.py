"""GET/POST /admin/users.php (admin only). Browsers (Accept: text/html) get the HTML
page of lib/admin_pages.py; the same handler serves both.

GET  ?q= (name contains) &role= &limit= &offset= -> {"users": [...], "limit", "offset"}
POST `user_uuid` (or `username`), and `role` (admin|staff|vendor|customer) and/or
     `banned` (1/0, true/false) and/or `can_sell` (1/0: may open stores, the original's
     "grant seller") -> {"ok": true, "user": {...}}. Audited. A ban ends
     the user's sessions and stops their keys. Admins cannot demote or ban themselves.
"""
from lib import admin_pages, auth, users, validate
from lib.db import get_db
from lib.http import BadRequest, NotFound, json_response

def get(request):
    if request.wants_html:  # the HTML view for browsers (lib/admin_pages.py)
        return admin_pages.users_page(request)
    auth.require_role(request, "admin")
    limit, offset = request.page()
    q = request.arg("q")
    if q is not None and len(q) > 16:
        raise BadRequest("q is longer than 16 characters")
    role = request.arg("role")
    if role is not None:
        users.validate_role(role)
    return json_response({"users": users.list_users(get_db(), limit, offset, q, role),
                          "limit": limit, "offset": offset})


def post(request):
    return admin_pages.form_post(request, _post, "users")


def _post(request):
    admin = auth.require_role(request, "admin")
    db = get_db()
    user_uuid = request.field("user_uuid", max_length=36)
    username = request.field("username", max_length=16)
    if user_uuid:
        target = users.by_uuid(db, user_uuid)
    elif username:
        target = users.by_username(db, username)
    else:
        raise BadRequest("user_uuid or username is required", fields={"user_uuid": "required"})
    if target is None:
        raise NotFound("no such user")
    role = request.field("role", max_length=16)
    banned_raw = request.field("banned", max_length=5)
    can_sell_raw = request.field("can_sell", max_length=5)
    if role is None and banned_raw is None and can_sell_raw is None:
        raise BadRequest("nothing to change: send role, banned and/or can_sell")
    if role is not None:
        users.validate_role(role)
    banned = None if banned_raw is None else validate.boolean(banned_raw, "banned")
    can_sell = None if can_sell_raw is None else validate.boolean(can_sell_raw, "can_sell")
    user = users.admin_update(db, admin, target["uuid"], role, banned, can_sell, request.client_ip)
    return json_response({"ok": True, "user": user})
