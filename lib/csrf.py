"""CSRF protection.

- Logged-in requests: the token is HMAC-SHA256(CSRF_SALT, session.csrf_secret),
  bound to the session (a new session, a new token). Every state-changing request
  (POST, PUT, PATCH, DELETE) authenticated by the session cookie must carry it as
  the form/JSON field `csrf_token` or the `X-CSRF-Token` header (lib.auth checks)
  whenever it carries any browser signal: an `Origin` or `Referer` header, any
  `Sec-Fetch-*` header, or an `Accept` asking for HTML (a form navigation). A session
  request with none of them (a script, the original's SDK and MCP plugin) cannot be a
  cross-site forgery (a browser always sends at least one of them on a cross-site
  POST) and needs no token. Requests authenticated by API key need none.
- Login and registration forms (no session yet): a random `csrf_pre` cookie
  (HttpOnly, SameSite=Lax) and a token HMAC(CSRF_SALT, "pre:" + cookie) in the form.
  A POST to /login.php or /register.php without a token is accepted from
  non-browser clients only (Accept without text/html); any such POST whose Origin
  or Referer names another host than SITE_URL's (or the request's Host) is 403.
"""
import hashlib
import hmac
import re
import secrets
import urllib.parse

from lib import env
from lib.http import Forbidden

FIELD = "csrf_token"
HEADER = "x-csrf-token"
PRE_COOKIE = "csrf_pre"
PRE_RE = re.compile(r"[0-9a-f]{32}")
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


def _mac(message):
    salt = (env.get("CSRF_SALT", "") or "").encode("utf-8")
    return hmac.new(salt, message.encode("utf-8"), hashlib.sha256).hexdigest()


def token_for_session(session_row):
    return _mac("session:" + session_row["csrf_secret"])


def submitted_token(request):
    """The token the request carries (header first, then the body field), or None."""
    value = request.headers.get(HEADER)
    if value:
        return value.strip()
    if request.method in STATE_CHANGING:
        value = request.data.get(FIELD)
        if isinstance(value, str) and value:
            return value.strip()
    return None


def _equal(a, b):
    return isinstance(a, str) and isinstance(b, str) and hmac.compare_digest(
        a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def browser_signals(request):
    """The names of the browser signals the request carries (see the module doc)."""
    found = [name for name in ("origin", "referer") if request.headers.get(name) not in (None, "")]
    found += sorted(name for name in request.headers if name.lower().startswith("sec-fetch-"))
    if request.wants_html:
        found.append("accept: text/html")
    if "image/" in request.headers.get("accept", ""):
        found.append("accept: image")       # an <img> on a page, which sends no text/html
    return found


def check_session_request(request):
    """403 unless a state-changing session request carries its session's token
    (a request without any browser signal needs none; a token it sends must still be valid)."""
    if request.method not in STATE_CHANGING or request.session is None:
        return
    if not browser_signals(request) and not submitted_token(request):
        return
    given = submitted_token(request)
    if not given:
        raise Forbidden("missing CSRF token (send csrf_token or X-CSRF-Token)")
    if not _equal(given, token_for_session(request.session)):
        raise Forbidden("invalid CSRF token")


# -- pre-session tokens for the login and registration forms -------------------
def pre_token(request):
    """The form token for an anonymous visitor (login and registration forms).
    When the request had no csrf_pre cookie a new value is chosen: pass the
    response to attach_pre_cookie() before returning it."""
    value = request.cookies.get(PRE_COOKIE, "")
    if not PRE_RE.fullmatch(value or ""):
        value = getattr(request, "_csrf_pre_new", None) or secrets.token_hex(16)
        request._csrf_pre_new = value
    return _mac("pre:" + value)


def attach_pre_cookie(request, response):
    """Set the csrf_pre cookie chosen by pre_token() (if a new one was chosen)."""
    value = getattr(request, "_csrf_pre_new", None)
    if value:
        secure = (env.get("SITE_URL", "") or "").lower().startswith("https://")
        response.set_cookie(PRE_COOKIE, value, secure=secure, http_only=True)
    return response


def _pre_token_valid(request, given):
    value = request.cookies.get(PRE_COOKIE, "")
    return bool(PRE_RE.fullmatch(value or "")) and _equal(given, _mac("pre:" + value))


def allowed_hosts(request):
    hosts = set()
    site = env.get("SITE_URL", "") or ""
    if site:
        netloc = urllib.parse.urlsplit(site).netloc.lower()
        if netloc:
            hosts.add(netloc)
    host = request.headers.get("host") or request.environ.get("SERVER_NAME")
    if host:
        hosts.add(host.lower())
    return hosts


def foreign_origin(request):
    """The Origin/Referer host when it names another site than ours, else None."""
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value is None or value == "":
            continue
        if value.strip().lower() == "null":
            return "null"
        try:
            netloc = urllib.parse.urlsplit(value.strip()).netloc.lower()
        except ValueError:  # e.g. 'http://[::1': not an origin of ours
            return "a malformed " + header.capitalize()
        if not netloc or netloc not in allowed_hosts(request):
            return netloc or value[:100]
        return None  # Origin wins over Referer when present
    return None


def is_browser(request):
    return request.wants_html


def has_browser_signal(request):
    """Whether anything says a browser sent this (browser_signals)."""
    return bool(browser_signals(request))


def check_login_request(request):
    """CSRF rule of /login.php and /register.php (see module doc)."""
    other = foreign_origin(request)
    if other is not None:
        raise Forbidden(f"cross-site request refused (origin {other})")
    given = submitted_token(request)
    if given:
        if _pre_token_valid(request, given):
            return
        if request.session is not None and _equal(given, token_for_session(request.session)):
            return
        raise Forbidden("invalid CSRF token; reload the form and try again")
    if is_browser(request):
        raise Forbidden("missing CSRF token; reload the form and try again")
