"""The one authentication helper every endpoint uses.

A request is authenticated by an API key (`Authorization: Bearer KEY`,
`X-API-Key: KEY` or `?token=KEY`) or by the session cookie. A key that is given
wins over a cookie; with neither, an `X-Agent-Identity` token (lib.agent_identity, when
configured). Keys and agents carry scopes (lib.scopes), checked here once per request.
Keys are rate limited (lib.api_keys); state-changing requests
authenticated by the cookie need the CSRF token (lib.csrf).

    user = auth.optional_user(request)     # None for anonymous visitors
    user = auth.require_user(request)      # 401 (browsers: 303 to the login form)
    user = auth.require_role(request, "admin", "staff")   # 403 for other roles
    auth.is_staff(user)

User dicts: id, uuid, username, role, banned, inviter_uuid, refund_address,
payout_address, created_at. Call these before opening a transaction.
"""
import urllib.parse

from lib import agent_identity, api_keys, csrf, scopes, session, totp, users
from lib.db import get_db
from lib.http import Forbidden, Redirect, Unauthorized
from lib.roles import is_staff  # noqa: F401 (auth.is_staff: a name pages use)

_UNSET = object()


def key_from_request(request):
    """The API key the request carries, '' for an empty one given, None for none."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
    value = request.headers.get("x-api-key")
    if value is not None:
        return value.strip()
    if "token" in request.query and _literal_token_param(request.query_string):
        value = request.query.get("token", "").strip()
        # Pages may use a `token` parameter of their own (e.g. a currency choice):
        # outside /api/ and /admin/ only a value shaped like a key is one.
        if request.is_api or api_keys.KEY_RE.fullmatch(value):
            return value
    return None


def _literal_token_param(query_string):
    """Whether the raw query spells `token=` (not e.g. `%74oken=`): the log redaction of
    nginx, uwsgi and the dev server matches the literal name only."""
    return query_string.startswith("token=") or "&token=" in query_string


def _authenticate(request):
    db = get_db()
    key = key_from_request(request)
    if key is not None:
        row = api_keys.lookup(db, key) if key else None
        if row is None:
            raise Unauthorized("invalid API key", [("WWW-Authenticate", "Bearer")])
        if row["revoked_at"]:
            raise Unauthorized("this API key has been revoked", [("WWW-Authenticate", "Bearer")])
        user = row["user"]
        if user is None:
            raise Unauthorized("invalid API key", [("WWW-Authenticate", "Bearer")])
        if user["banned"]:
            raise Forbidden("this account is banned")
        api_keys.count_request(db, row["id"])
        request.api_key_id = row["id"]
        scopes.attach(request, row["scopes"], row.get("store_uuid"))
        return user, "api_key", None
    token = request.cookies.get(session.COOKIE)
    if token:
        row = session.load(db, token)
        if row is not None:
            user = users.by_uuid(db, row["user_uuid"])
            if user is not None and not user["banned"]:
                return user, "session", row
    agent_token = agent_identity.token_from_request(request)   # None unless configured
    if agent_token is not None:
        return agent_identity.authenticate(db, request, agent_token), "agent", None
    return None, None, None


def session_login(request):
    """The session-cookie login alone (an API key does not count; /logout.php):
    (cookie token or None, live session row or None). Sets request.session and
    request.auth_method; a banned user's session counts as none."""
    db = get_db()
    token = request.cookies.get(session.COOKIE) or None
    row = session.load(db, token) if token else None
    if row is not None:
        user = users.by_uuid(db, row["user_uuid"])
        if user is None or user["banned"]:
            row = None
    request.session, request.auth_method = row, ("session" if row else None)
    return token, row


def optional_user(request):
    """The authenticated user or None; sets request.user, .auth_method, .session.
    401 for an invalid or revoked key, 403 for a banned user's key, 429 over the
    key's rate limit. Safe to call more than once per request."""
    cached = getattr(request, "_auth_user", _UNSET)
    if cached is not _UNSET:
        return cached
    user, method, row = _authenticate(request)
    request.user, request.auth_method, request.session = user, method, row
    scopes.check(request, get_db(), user)    # 403 when the key's scopes do not cover this call
    request._auth_user = user
    return user


def require_csrf(request):
    """403 unless a state-changing session-cookie request carries its CSRF token."""
    if request.auth_method == "session":
        csrf.check_session_request(request)


MAX_NEXT = 500  # /login.php's safe_next() keeps no longer `next`; a long Location also breaks nginx


def login_url(request):
    """/login.php?next=<this page>, or plain /login.php when the page's URL is too long."""
    target = request.path + ("?" + request.query_string if request.query_string else "")
    quoted = urllib.parse.quote(target, safe="")
    if len(target) > MAX_NEXT or len(quoted) > 3 * MAX_NEXT:
        return "/login.php"
    return "/login.php?next=" + quoted


def require_user(request):
    """The user, else 401 (browsers asking for a page get 303 to the login form).
    State-changing requests authenticated by the session cookie must carry the CSRF token."""
    user = optional_user(request)
    if user is None:
        if request.wants_html and not request.is_api and request.method in ("GET", "HEAD"):
            raise Redirect(login_url(request))
        raise Unauthorized("authentication required: log in or send an API key",
                        [("WWW-Authenticate", "Bearer")])
    require_csrf(request)
    if request.auth_method == "session" and request.path not in ("/settings/two-factor.php", "/logout.php") \
            and is_staff(user):
        if totp.staff_must_enroll(get_db(), user):  # config require_2fa_for_staff; keys are unaffected
            if request.wants_html and request.method in ("GET", "HEAD"):
                raise Redirect(totp.ENROLL_PATH)
            raise Forbidden("staff must turn on two-factor login first (" + totp.ENROLL_PATH + ")")
    return user


def require_role(request, *roles):
    user = require_user(request)
    if user["role"] not in roles:
        raise Forbidden("this needs the role " + " or ".join(roles))
    return user




def csrf_token(request):
    """The CSRF token to put in forms of a logged-in page (None without a session)."""
    optional_user(request)
    if request.session is None:
        return None
    return csrf.token_for_session(request.session)
