"""Authorization matrix: every role against every endpoint, by API key and by session cookie,
on SQLite and MariaDB.

To add an endpoint, add a row to MATRIX (test_every_endpoint_is_in_the_matrix fails
until every method of every public/ script has one). Each row is
(method, path, data, {role: expected}); build rows with the helpers below:

    public("GET", "/vendors.php")                 anyone
    authed("GET", "/api/transactions.php")        any logged-in role; anonymous 401
    role_only(("admin",), "GET", "/admin/x.php")  the listed roles; others 403

An expected value is a status code, a set of codes, PASSES (the request got through
authorization: anything but 401/403/5xx) or AUTHED (authenticated: anything but 401/5xx;
a 403 from a resource rule such as "not a member of this store" is fine).
Requests are made as API clients (no Accept: text/html) with an empty or harmless body.
A banned user's key gets 403; a banned user's session counts as no session.
"""
import os

import pytest

from lib import users
from tests.client import Client
from tests.factories import login, make_user

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLES = ("anonymous", "customer", "vendor", "staff", "admin", "banned")
PASSES = "passes authorization"
AUTHED = "authenticated"
NOBODY_UUID = "00000000-0000-4000-8000-000000000000"


def public(method, path, data=None, status=200):
    """Anyone. A banned user's key is refused (403) where the page looks at the user."""
    expected = {r: status for r in ROLES}
    expected["banned"] = (set(status) if isinstance(status, set) else {status}) | {403}
    return (method, path, data, expected)


def authed(method, path, data=None, ok=PASSES):
    expected = {r: ok for r in ("customer", "vendor", "staff", "admin")}
    expected.update(anonymous=401, banned=403)
    return (method, path, data, expected)


def role_only(roles, method, path, data=None, ok=PASSES):
    expected = {r: (ok if r in roles else 403) for r in ("customer", "vendor", "staff", "admin")}
    expected.update(anonymous=401, banned=403)
    return (method, path, data, expected)


admin_only = lambda *a, **kw: role_only(("admin",), *a, **kw)  # noqa: E731


def dict_update(row, **expected):
    row[3].update(expected)
    return row


staff_only = lambda *a, **kw: role_only(("staff", "admin"), *a, **kw)  # noqa: E731

MATRIX = [
    # foundation
    public("GET", "/"),
    public("GET", "/health.php"),
    public("GET", "/api/openapi.json"),
    public("GET", "/api/skill.php"),
    # accounts (exact answers)
    public("GET", "/login.php"),
    public("GET", "/register.php"),
    public("POST", "/login.php", status=400),      # empty body
    public("POST", "/register.php", status=400),   # empty body
    public("GET", "/recover.php"),
    public("POST", "/recover.php", status=400),    # empty body
    public("GET", "/reset.php", status=404),       # no token
    public("POST", "/reset.php", status=400),      # empty body (no password)
    authed("GET", "/api/auth-user.php", ok=200),
    authed("GET", "/api/keys.php", ok=200),
    authed("POST", "/api/keys.php", {"name": "matrix"}, ok=200),
    authed("POST", "/api/keys-revoke.php", {"id": "999999"}, ok=404),
    # email recovery and verification: 404 for everyone while email is not configured
    public("GET", "/recover-email.php", status=404),
    public("POST", "/recover-email.php", status=404),
    public("GET", "/verify-email.php", status=404),
    authed("GET", "/api/sessions.php", ok=200),
    authed("POST", "/api/sessions-end.php", {"id": "999999999"}, ok=404),
    authed("GET", "/api/webhooks.php", ok=200),
    authed("POST", "/api/webhooks.php", {"url": "http://10.0.0.1/hook"}, ok=400),
    authed("POST", "/api/webhooks-delete.php", {"id": "999999"}, ok=404),
    authed("GET", "/api/webhook-deliveries.php?webhook_id=999999", ok=404),
    authed("POST", "/api/webhook-redeliver.php", {"delivery_id": "999999"}, ok=404),
    admin_only("GET", "/admin/users.php", ok=200),
    admin_only("POST", "/admin/users.php", {"username": "target", "role": "customer"}, ok=200),
    # catalog and pages (answers beyond authorization are tested by their owners)
    public("GET", "/marketplace.php"),
    public("GET", "/vendors.php"),
    public("GET", f"/store.php?uuid={NOBODY_UUID}", status=404),
    public("GET", f"/item.php?uuid={NOBODY_UUID}", status=404),
    public("GET", "/api/stores.php"),
    authed("POST", "/api/stores.php"),
    public("GET", "/api/items.php"),
    authed("POST", "/api/items.php", ok=AUTHED),
    public("GET", f"/api/packages.php?item_uuid={NOBODY_UUID}", status={200, 404}),
    authed("POST", "/api/packages.php", ok=AUTHED),
    authed("GET", f"/book.php?package_uuid={NOBODY_UUID}"),
    authed("POST", f"/book.php?package_uuid={NOBODY_UUID}"),
    authed("GET", "/create-store.php"),
    authed("POST", "/create-store.php"),
    authed("GET", "/settings/store.php", ok=AUTHED),
    authed("POST", "/settings/store.php", ok=AUTHED),
    authed("GET", "/item/edit.php", ok=AUTHED),
    authed("POST", "/item/edit.php", ok=AUTHED),
    authed("GET", "/settings/user.php", ok=200),
    authed("POST", "/settings/user.php"),
    authed("GET", "/settings/two-factor.php", ok=200),
    authed("POST", "/settings/two-factor.php", ok=400),
    authed("GET", "/referrals.php", ok=200),
    # orders
    authed("GET", "/payments.php", ok=200),
    authed("GET", f"/payment.php?uuid={NOBODY_UUID}", ok=AUTHED),
    authed("POST", f"/payment.php?uuid={NOBODY_UUID}", ok=AUTHED),
    authed("GET", f"/dispute.php?uuid={NOBODY_UUID}", ok=AUTHED),
    authed("POST", f"/dispute.php?uuid={NOBODY_UUID}", ok=AUTHED),
    authed("GET", "/api/transactions.php", ok=200),
    authed("POST", "/api/transactions.php"),
    authed("POST", "/api/transaction-actions.php", ok=AUTHED),
    authed("GET", "/api/disputes.php", ok=200),
    authed("POST", "/api/disputes.php", ok=AUTHED),
    authed("GET", "/api/deposits.php", ok=AUTHED),
    authed("POST", "/api/deposits.php", ok=AUTHED),
    authed("POST", "/api/deposit-withdraw.php", ok=AUTHED),
    authed("POST", "/api/store-settings.php", ok=AUTHED),
    authed("GET", "/deposits.php", ok=AUTHED),
    authed("GET", "/deposits/add.php", ok=AUTHED),
    authed("POST", "/deposits/add.php", ok=AUTHED),
    authed("GET", "/deposits/withdraw.php", ok=AUTHED),
    authed("POST", "/deposits/withdraw.php", ok=AUTHED),
    # messages and notifications
    authed("GET", "/api/messages.php", ok=200),
    authed("POST", "/api/messages.php", {"to": "target", "body": "hello"}, ok=200),
    authed("GET", "/messages.php", ok=200),
    authed("POST", "/messages.php", {"action": "send", "to": "target", "body": "hello"}, ok=303),
    authed("GET", "/api/notifications.php", ok=200),
    authed("POST", "/api/notifications.php", {"all": "1"}, ok=200),
    authed("GET", "/notifications.php", ok=200),
    authed("POST", "/notifications.php", {"action": "read_all"}, ok=303),
    authed("GET", "/api/user-settings.php", ok=200),
    authed("POST", "/api/user-settings.php"),
    # exports: sales for vendors (others: 404, no store), staff kinds for staff
    authed("GET", "/api/exports.php?from=2026-03-01&to=2026-03-31", ok=AUTHED),
    staff_only("GET", "/api/exports.php?kind=orders&from=2026-03-01&to=2026-03-31", ok=200),
    authed("GET", "/exports.php", ok=200),
    # /metrics: 404 for every address outside METRICS_ALLOW (empty here)
    public("GET", "/metrics", status=404),
    # staff
    staff_only("GET", "/staff/"),
    staff_only("GET", "/staff/disputes.php"),
    staff_only("GET", "/staff/stats.php"),
    staff_only("GET", "/staff/stores.php"),
    staff_only("POST", "/staff/stores.php"),
    staff_only("GET", "/staff/users.php"),
    staff_only("POST", "/staff/users.php"),
    staff_only("GET", "/staff/payouts.php"),
    staff_only("POST", "/staff/payouts.php"),
    staff_only("GET", "/staff/categories.php"),
    staff_only("POST", "/staff/categories.php"),
    staff_only("GET", "/staff/deposits.php"),
    public("GET", "/verification/agreement.php"),
    public("GET", "/verification/plan.php"),
    authed("POST", "/verification/agreement.php", ok=AUTHED),
    staff_only("GET", "/api/payout-actions.php", ok=200),
    staff_only("POST", "/api/payout-actions.php"),      # an empty body: 400 for staff
    # admin
    # the dashboard is an HTML page whose owner sends every anonymous GET to the login form
    dict_update(admin_only("GET", "/admin/"), anonymous={401, 303}),
    admin_only("GET", "/admin/config.php", ok=200),
    admin_only("POST", "/admin/config.php"),
    admin_only("GET", "/admin/tokens.php", ok=200),
    admin_only("POST", "/admin/tokens.php"),
    admin_only("POST", "/admin/tokens-remove.php"),
    # support tickets and store warnings
    authed("GET", "/support.php", ok=200),
    authed("GET", "/support/new.php", ok=200),
    authed("POST", "/support/new.php", ok=400),                        # empty body
    authed("GET", f"/support/ticket.php?uuid={NOBODY_UUID}", ok=404),
    authed("POST", f"/support/ticket.php?uuid={NOBODY_UUID}", ok=404),
    staff_only("GET", "/staff/tickets.php", ok=200),
    staff_only("POST", "/staff/tickets.php", {"action": "close", "uuid": NOBODY_UUID}, ok=404),
    staff_only("GET", "/staff/warnings.php", ok=200),
    staff_only("POST", "/staff/warnings.php", ok=400),
    authed("GET", "/api/tickets.php", ok=200),
    authed("POST", "/api/tickets.php", ok=400),
    public("GET", f"/api/store-warnings.php?store_uuid={NOBODY_UUID}", status=404),
    staff_only("POST", "/api/store-warnings.php", ok=400),
    # account and staff tools as JSON: email settings (email not configured here), categories, the agreement
    authed("GET", "/api/email-settings.php", ok=200),
    authed("POST", "/api/email-settings.php", ok=404),
    public("GET", "/api/categories.php"),
    staff_only("POST", "/api/categories.php", ok=400),
    public("GET", "/api/agreement.php"),
    authed("POST", "/api/agreement.php", ok=AUTHED),
    authed("GET", "/api/recovery-codes.php", ok=200),
    authed("POST", "/api/recovery-codes.php", ok=400),           # no password
    authed("GET", "/api/two-factor.php", ok=200),
    authed("POST", "/api/two-factor.php", ok=400),               # no action
    public("GET", "/api/plan.php"),
    # reviews, profiles and item images
    public("GET", f"/api/reviews.php?store_uuid={NOBODY_UUID}", status=404),
    authed("POST", "/api/reviews.php", {"action": "add", "transaction_uuid": NOBODY_UUID, "score": "5"}, ok=404),
    authed("GET", f"/review/add.php?transaction_uuid={NOBODY_UUID}", ok=404),
    authed("POST", f"/review/add.php?transaction_uuid={NOBODY_UUID}", {"score": "5"}, ok=404),
    authed("POST", "/review/manage.php", {"form": "reply", "review_uuid": NOBODY_UUID, "reply": "x"}, ok=404),
    public("GET", "/user.php?username=nobody-here", status=404),
    public("GET", f"/api/item-images.php?item_uuid={NOBODY_UUID}", status=404),
    authed("POST", "/api/item-images.php", {"action": "remove", "image_uuid": NOBODY_UUID}, ok=404),
    # last: logging out ends the session of the session-cookie run
    public("POST", "/logout.php"),
    public("GET", "/logout.php"),
]


def url_of(script):
    """public/api/keys_revoke.py -> /api/keys-revoke.php; public/admin/index.py -> /admin/."""
    rel = os.path.relpath(script, os.path.join(ROOT, "public"))[:-3].replace(os.sep, "/")
    if rel == "index":
        return "/"
    if rel.endswith("/index"):
        return "/" + rel[: -len("index")]
    return "/" + rel.replace("_", "-") + ".php"


def bare(path):
    """/api/openapi.json and /api/openapi.php are the same script."""
    for suffix in (".php", ".json"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def public_scripts():
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "public")):
        dirnames[:] = [d for d in dirnames if d not in ("static", "__pycache__") and not d.startswith((".", "_"))]
        for name in filenames:
            if name.endswith(".py") and not name.startswith(("_", ".")):
                yield os.path.join(dirpath, name)


def test_every_endpoint_is_in_the_matrix():
    import wsgi
    rows = {(m, bare(p.split("?")[0])) for m, p, _d, _e in MATRIX}
    missing = []
    for script in public_scripts():
        module = wsgi.load_script(script)
        for method in ("get", "post", "put", "patch", "delete"):
            if callable(getattr(module, method, None)) and (method.upper(), bare(url_of(script))) not in rows:
                missing.append(f"{method.upper()} {url_of(script)}")
    assert not missing, "add these endpoints to MATRIX in tests/test_auth_matrix.py: " + ", ".join(sorted(missing))


def matches(expected, status):
    if expected == PASSES:
        return status not in (401, 403) and status < 500
    if expected == AUTHED:
        return status != 401 and status < 500
    if isinstance(expected, (set, frozenset)):
        return status in expected
    return status == expected


def make_role_users(db):
    people = {role: make_user(db, f"m-{role}", role=role) for role in ("customer", "vendor", "staff", "admin")}
    people["banned"] = make_user(db, "m-banned")
    make_user(db, "target")
    return people


@pytest.mark.parametrize("transport", ["api_key", "session"])
def test_authorization_matrix(app, db, transport):
    people = make_role_users(db)
    clients, tokens = {}, {}
    for role in ROLES:
        c = Client(app)
        if role != "anonymous" and transport == "session":
            tokens[role] = login(c, people[role]["username"])
        clients[role] = c
    users.set_banned(db, people["banned"]["uuid"], True)

    failures = []
    for method, path, data, expected in MATRIX:
        for role in ROLES:
            want = expected[role]
            headers = {}
            body = dict(data or {})
            if role != "anonymous" and transport == "api_key":
                headers = people[role]["headers"]
            if transport == "session":
                if role == "banned":
                    want = expected["anonymous"]  # the session no longer authenticates
                elif method != "GET" and role in tokens:
                    body["csrf_token"] = tokens[role]
            db.execute("UPDATE api_keys SET request_times = ''")  # the matrix is larger than one minute's limit
            r = clients[role].request(method, path, data=body, headers=headers)
            if not matches(want, r.status):
                failures.append(f"{method} {path} as {role}: {r.status} (expected {want}) {r.text[:120]!r}")
    assert not failures, "\n".join(failures)


def test_no_script_reads_cookies_or_keys_itself():
    """Every public/ script authenticates through lib/auth (session or key, one helper):
    none reads the session cookie, an API key header or ?token= on its own."""
    import re
    forbidden = re.compile(r"\.cookies\b|authorization|x-api-key|\bapi_keys\.lookup|\bsession\.load\(|"
                           r"\bkey_from_request|\barg\(\s*['\"]token['\"]|query\.get\(\s*['\"]token['\"]", re.I)
    offenders = []
    for script in public_scripts():
        with open(script, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if forbidden.search(line):
                    offenders.append(f"{os.path.relpath(script, ROOT)}:{number}: {line.strip()}")
    assert not offenders, "authenticate through lib.auth instead:\n" + "\n".join(offenders)
