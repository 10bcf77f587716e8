"""GET/POST /logout.php: end the session (the row is deleted, the cookie cleared).

POST with a session needs its CSRF token. A GET logs out at once only for a client
without any browser signal (the original's API clients); a browser GET (a page, or an
<img> on a page: lib.csrf.has_browser_signal) shows a confirmation form, so nothing a
page embeds can log anyone out. Browsers get 303 to /; others `Logged out`.

POST `everywhere=1` signs out everywhere: every session of the user ends and all their
API keys are revoked (a session or an API key may ask).
"""
from lib import account_pages, auth, csrf, session, users
from lib.db import get_db
from lib.http import BadRequest, Unauthorized, redirect, text_response


def _logged_out(request, token, row):
    db = get_db()
    if row is not None:
        session.log_out(db, token, row["user_uuid"], request.client_ip)
    resp = redirect("/") if request.wants_html else text_response("Logged out")
    if token:
        session.clear_cookie(resp)
    return resp


def get(request):
    token, row = auth.session_login(request)
    if csrf.has_browser_signal(request) and row is not None:
        user = users.by_uuid(get_db(), row["user_uuid"])
        if user is not None and not user["banned"]:
            return account_pages.logout_page(csrf.token_for_session(row), user["username"])
    return _logged_out(request, token, row)


def post(request):
    token, row = auth.session_login(request)
    if row is not None:
        csrf.check_session_request(request)
    everywhere = request.data.get("everywhere")
    if everywhere in (None, "", "0", 0, False):
        return _logged_out(request, token, row)
    if everywhere not in ("1", 1, True):
        raise BadRequest("everywhere must be 1 or 0", fields={"everywhere": "1 or 0"})
    if row is not None:
        user_uuid = row["user_uuid"]
    else:
        user = auth.optional_user(request)  # an API key
        if user is None:
            raise Unauthorized("log in first", [("WWW-Authenticate", "Bearer")])
        user_uuid = user["uuid"]
    sessions, keys = users.sign_out_everywhere(get_db(), user_uuid, request.client_ip)
    resp = redirect("/") if request.wants_html else text_response(
        f"Logged out everywhere: {sessions} sessions ended, {keys} API keys revoked")
    if token:
        session.clear_cookie(resp)
    return resp
