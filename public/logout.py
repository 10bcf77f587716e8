"""GET/POST /logout.php: end the session (the row is deleted, the cookie cleared).

POST with a session needs its CSRF token. GET from a non-browser client logs out
at once (the original's behaviour); a browser GET shows a confirmation form, so a
link on another site cannot log anyone out. Browsers get 303 to /; others `Logged out`.
"""
from lib import account_pages, audit, auth, csrf, session, users
from lib.db import get_db
from lib.http import redirect, text_response


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
    token, row = auth.session_login(request)
    if request.wants_html and row is not None:
        user = users.by_uuid(get_db(), row["user_uuid"])
        if user is not None and not user["banned"]:
            return account_pages.logout_page(csrf.token_for_session(row), user["username"])
    return _logged_out(request, token, row)


def post(request):
    token, row = auth.session_login(request)
    if row is not None:
        csrf.check_session_request(request)
    return _logged_out(request, token, row)
