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
    return account_pages.show(request, account_pages.register_page, form=form)


def post(request):
    db = get_db()
    old_token, data = account_pages.posted(db, request)
    try:
        csrf.check_login_request(request)
        user = users.register(db, data.get("username"), data.get("password"), data.get("invite"), request.client_ip)
    except HttpError as e:
        return account_pages.refused(request, account_pages.register_page, e)
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
