"""GET/POST /notifications.php : my notifications, newest first.

POST action=read with `id` marks one read (and follows its link when `go=1`);
action=read_all marks every one read.
"""
from lib import notifications, web
from lib.db import get_db
from lib.http import BadRequest

TITLE = "Notifications"


def get(request):
    user = web.login(request)
    db = get_db()
    pager = web.pager(request, lambda limit, offset: notifications.list_for(db, user, limit, offset))
    return web.page(request, "notifications.html", TITLE, nav_active="notifications", pager=pager,
                    unread=notifications.unread_count(db, user["uuid"]))


def post(request):
    user = web.login(request)
    db = get_db()
    data = request.data
    action = data.get("action")
    if action == "read_all":
        n = notifications.mark_all_read(db, user)
        return web.see_other("/notifications.php", f"Marked {n} notification{'s' if n != 1 else ''} read.", request)
    if action == "read":
        note = notifications.mark_read(db, user, data.get("id"))
        if data.get("go") == "1" and note["link"]:
            return web.see_other(note["link"])
        return web.see_other(web.same_page(request))
    raise BadRequest("action must be read or read_all", fields={"action": "unknown"})
