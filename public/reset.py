"""GET/POST /reset.php?reset_token= : a one-time password reset link issued by staff
(lib.recovery.issue_reset_link; /staff/users.php). GET shows the form (404 for an unknown,
used or expired link); POST `reset_token`, `new_password` sets the password once and ends every
session of the user. Browsers get 303 to /login.php; other clients `Password reset for NAME`.
CSRF and Origin rules as for /login.php.
"""
from lib import account_pages, csrf, recovery, session
from lib.db import get_db
from lib.http import HttpError, NotFound, redirect, text_response

GONE = "this reset link is unknown, used or expired"


def get(request):
    db = get_db()
    session.load_request(db, request)
    token = request.arg("reset_token")
    user = recovery.link_user(db, token)
    if user is None:
        raise NotFound(GONE)
    resp = account_pages.show(request, account_pages.reset_page, token, user["username"])
    resp.headers.extend([("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")])
    return resp


def post(request):
    db = get_db()
    _, data = account_pages.posted(db, request)
    token = data.get("reset_token")
    try:
        csrf.check_login_request(request)
        user = recovery.use_reset_link(db, token, data.get("new_password"), request.client_ip)
    except HttpError as e:
        target = recovery.link_user(db, token) if e.status == 400 else None
        if request.wants_html and target is not None:
            return account_pages.show(request, account_pages.reset_page, token, target["username"],
                                      errors=e.fields, error=e.message, status=e.status)
        raise
    resp = redirect("/login.php?recovered=1") if request.wants_html else \
        text_response(f"Password reset for {user['username']}")
    return resp
