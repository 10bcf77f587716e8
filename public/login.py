"""GET/POST /login.php: the login form; POST `username`, `password`, and `otp` (a
two-factor code or a recovery code) for a user with two-factor login on: without it (or
with a wrong one) a non-browser client gets 401 JSON {"error", "otp_required": true}.

Browsers get 303 to `next` (a local path) or /marketplace.php; other clients get
`Logged in as NAME`. Either way a new session cookie (never a reused token).
CSRF: the form's token, or no token from a non-browser client; a foreign
Origin/Referer is refused (lib.csrf.check_login_request).
"""
from lib import account_pages, csrf, session, users
from lib.db import get_db
from lib.http import HttpError, json_response

DEFAULT_NEXT = "/marketplace.php"


def safe_next(value):
    """`value` when it is a local path (no open redirect), else None."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")) \
            and len(value) <= 500 and all(32 < ord(c) < 127 for c in value):
        return value
    return None


def get(request):
    session.load_request(get_db(), request)
    return account_pages.show(request, account_pages.login_page, next_url=safe_next(request.arg("next")))


def post(request):
    db = get_db()
    old_token, data = account_pages.posted(db, request)
    try:
        csrf.check_login_request(request)
        user = users.authenticate(db, data.get("username"), data.get("password"), request.client_ip,
                                  data.get("otp"))
    except HttpError as e:
        if getattr(e, "otp_required", False) and not request.wants_html:
            return json_response({"error": e.message, "otp_required": True}, e.status)
        return account_pages.refused(request, account_pages.login_page, e, next_url=safe_next(data.get("next")))
    return session.log_in(db, request, user, old_token, safe_next(data.get("next")) or DEFAULT_NEXT,
                          f"Logged in as {user['username']}")
