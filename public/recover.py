"""GET/POST /recover.php: reset a forgotten password with a recovery code.

POST `username`, `recovery_code`, `new_password` (lib.recovery.recover): the code is used
up, the password set, every session of the user ended. 400 bad input, 401 wrong name or
code (the same answer for a name that does not exist), 403 banned, 429 over the per-IP or
per-username limit (Retry-After). Browsers get 303 to /login.php with a message; other
clients `Password reset for NAME`. CSRF and Origin rules as for /login.php.
"""
from lib import account_pages, csrf, recovery, session
from lib.db import get_db
from lib.http import HttpError, redirect, text_response


def get(request):
    session.load_request(get_db(), request)
    return account_pages.show(request, account_pages.recover_page)


def post(request):
    db = get_db()
    _, data = account_pages.posted(db, request)
    try:
        csrf.check_login_request(request)
        user = recovery.recover(db, data.get("username"), data.get("recovery_code"), data.get("new_password"),
                                request.client_ip)
    except HttpError as e:
        return account_pages.refused(request, account_pages.recover_page, e)
    if request.wants_html:
        resp = redirect("/login.php?recovered=1")
    else:
        resp = text_response(f"Password reset for {user['username']}")
    return resp
