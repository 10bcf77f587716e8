"""GET/POST /register.php: the registration form; POST `username` (1-16 letters,
digits, _ - .; unique case-insensitively: 409), `password` (8+ characters),
optional `invite` (the inviter's username; also prefilled from ?invite=).

Browsers get 303 to /marketplace.php; other clients `Registered as NAME`. The new
user is logged in (session cookie). CSRF and Origin rules as for /login.php.
"""
from lib import account_pages, csrf, session, users
from lib.db import get_db
from lib.http import HttpError

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
    return session.log_in(db, request, user, old_token, NEXT, f"Registered as {user['username']}")
