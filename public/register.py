"""GET/POST /register.php: the registration form; POST `username` (1-16 letters,
digits, _ - .; unique case-insensitively: 409), `password` (8+ characters),
optional `invite` (the inviter's username; also prefilled from ?invite=).

The new user gets 10 recovery codes (lib.recovery), shown this once: browsers get a
page listing them with a link on to /marketplace.php; a client that asked for JSON
(`Accept: application/json`) gets {"username", "user_uuid", "recovery_codes"}; other
clients keep the original's text answer `Registered as NAME` (they can make a set in
settings). The new user is logged in (session cookie). CSRF and Origin rules as for
/login.php.
"""
from lib import account_pages, csrf, recovery, session, users
from lib.db import get_db
from lib.http import HttpError, json_response

NEXT = "/marketplace.php"


def get(request):
    session.load_request(get_db(), request)
    invite = request.arg("invite")
    form = {"invite": invite[:16]} if isinstance(invite, str) else {}
    resp = account_pages.register_page(csrf.pre_token(request), form=form)
    return csrf.attach_pre_cookie(request, resp)


def post(request):
    db = get_db()
    old_token = session.load_request(db, request)
    data = request.data  # 400/413 for bodies that cannot be read
    try:
        csrf.check_login_request(request)
        password = data.get("password")
        user = users.register(db, data.get("username"), password, data.get("invite"), request.client_ip)
    except HttpError as e:
        if request.wants_html:
            resp = account_pages.register_page(csrf.pre_token(request), form=data, errors=e.fields,
                                               error=e.message, status=e.status)
            resp.headers.extend(e.headers)
            return csrf.attach_pre_cookie(request, resp)
        raise
    codes = recovery.issue_codes(db, user["uuid"], request.client_ip)
    resp = session.log_in(db, request, user, old_token, NEXT, f"Registered as {user['username']}")
    if request.wants_html:
        page = account_pages.codes_page(codes, NEXT)
    elif "application/json" in request.headers.get("accept", ""):
        page = json_response({"username": user["username"], "user_uuid": user["uuid"], "recovery_codes": codes},
                             headers=[("Cache-Control", "no-store")])
    else:
        return resp
    page.headers.extend(h for h in resp.headers if h[0].lower() == "set-cookie")
    return page
