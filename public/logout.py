"""GET/POST /logout.php: end the session (the row is deleted, the cookie cleared).

POST with a session needs its CSRF token. GET from a non-browser client logs out
at once (the original's behaviour); a browser GET shows a confirmation form, so a
link on another site cannot log anyone out. Browsers get 303 to /; others `Logged out`.
"""
from lib import account_pages, audit, csrf, session, users
from lib.db import get_db
from lib.http import redirect, text_response


def _session_user(request):
    """The session user only (an API key does not log anything out)."""
    token = request.cookies.get(session.COOKIE)
    if not token:
        return None, None
    db = get_db()
    row = session.load(db, token)
    request.session = row
    request.auth_method = "session" if row else None
    return token, row


def _logged_out(request, token, row):
    db = get_db()
    if row is not None:
        session.destroy(db, token)
        audit.log(db, "logout", row["user_uuid"], None, None, request.client_ip)
    resp = redirect("/") if request.wants_html else text_response("Logged out")
    if token:
        session.clear_cookie(resp)
    return resp


def get(request):
    token, row = _session_user(request)
    if request.wants_html and row is not None:
        user = users.by_uuid(get_db(), row["user_uuid"])
        if user is not None and not user["banned"]:
            return account_pages.logout_page(csrf.token_for_session(row), user["username"])
    return _logged_out(request, token, row)


def post(request):
    token, row = _session_user(request)
    if row is not None:
        csrf.check_session_request(request)
    return _logged_out(request, token, row)
