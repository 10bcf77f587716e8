"""GET/POST /notifications.php : my notifications, newest first.

POST action=read with `id` marks one read (and follows its link when `go=1`);
action=read_all marks every one read.
"""
from lib import notifications, validate, web
from lib.db import get_db

TITLE = "Notifications"


def get(request):
    user = web.login(request)
    db = get_db()
    pager = web.pager(request, lambda limit, offset: notifications.list_for(db, user, limit, offset))
    return web.page(request, "notifications.html", TITLE, nav_active="notifications", pager=pager,
                    unread=notifications.unread_count(db, user["uuid"]))


def _read(request, db, user):
    note = notifications.mark_read(db, user, request.data.get("id"))
    if request.data.get("go") == "1" and note["link"]:
        return web.see_other(note["link"])
    return web.see_other(web.same_page(request))


def _read_all(request, db, user):
    n = notifications.mark_all_read(db, user)
    return web.see_other("/notifications.php", f"Marked {n} notification{'s' if n != 1 else ''} read.", request)


ACTIONS = {"read": _read, "read_all": _read_all}


def post(request):
    user = web.login(request)
    return validate.choice(request.data, "action", ACTIONS)(request, get_db(), user)
