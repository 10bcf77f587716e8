"""Server-side sessions in the database (any worker or node serves any request).

The cookie `session` holds a random token; the table keeps only
HMAC-SHA256(SESSION_SALT, token), so a leaked table does not give working
cookies (and changing SESSION_SALT logs everyone out). Cookies are HttpOnly,
SameSite=Lax, and Secure when SITE_URL is https. A login always starts a new
session (new token); logout deletes the row.

Idle expiry: SESSION_IDLE_MINUTES (default 120) after the last request.
last_seen_at / expires_at are written at most once a minute per session.
"""
import hashlib
import hmac
import random
import re
import secrets

from lib import audit, env
from lib.db import parse_time, shift_time, utc_now
from lib.http import NotFound, redirect, text_response

COOKIE = "session"
TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]{20,100}")
TOUCH_EVERY_SECONDS = 60


def idle_minutes():
    try:
        value = int(env.get("SESSION_IDLE_MINUTES", "120") or 120)
    except ValueError:
        value = 120
    return max(1, value)


def secure_cookies():
    return (env.get("SITE_URL", "") or "").lower().startswith("https://")


def token_hash(token):
    salt = (env.get("SESSION_SALT", "") or "").encode("utf-8")
    return hmac.new(salt, token.encode("utf-8"), hashlib.sha256).hexdigest()


def _expiry(now_text):
    return shift_time(now_text, minutes=idle_minutes())


def create(db, user_uuid, ip=None, user_agent=None, replace_token=None):
    """Start a session for the user; return (token, row). `replace_token` (the
    cookie the request came with, if any) is deleted: a login never reuses a token."""
    token = secrets.token_urlsafe(32)
    now = utc_now()
    row = {
        "token_hash": token_hash(token), "user_uuid": user_uuid,
        "csrf_secret": secrets.token_hex(32), "flash": None,
        "ip": (ip or "")[:45] or None, "user_agent": (user_agent or "")[:255] or None,
        "created_at": now, "last_seen_at": now, "expires_at": _expiry(now),
    }
    with db.transaction():
        if replace_token:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash(replace_token),))
        row["id"] = db.insert("sessions", row)
    if random.random() < 0.02:
        prune(db)
    return token, row


def load(db, token):
    """The live session row for a cookie token, or None; an expired session is deleted.
    It does not look at the user: lib.auth treats a banned user's session as none."""
    if not token or not TOKEN_RE.fullmatch(token):
        return None
    row = db.one("SELECT * FROM sessions WHERE token_hash = ?", (token_hash(token),))
    if row is None:
        return None
    now = utc_now()
    if row["expires_at"] <= now:
        db.execute("DELETE FROM sessions WHERE id = ?", (row["id"],))
        return None
    if (parse_time(now) - parse_time(row["last_seen_at"])).total_seconds() >= TOUCH_EVERY_SECONDS:
        expires = _expiry(now)
        db.execute("UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?",
                   (now, expires, row["id"]))
        row["last_seen_at"], row["expires_at"] = now, expires
    return row


def load_request(db, request):
    """Load the request's session (if any) into request.session; return its cookie token."""
    token = request.cookies.get(COOKIE)
    request.session = load(db, token) if token else None
    return token


def log_in(db, request, user, old_token, location, text):
    """Start a fresh session for `user` (deleting `old_token`'s): browsers get 303 to
    `location`, other clients `text`; either way with the new session cookie."""
    token, _row = create(db, user["uuid"], request.client_ip, request.headers.get("user-agent"),
                         replace_token=old_token)
    resp = redirect(location) if request.wants_html else text_response(text)
    set_cookie(resp, token)
    return resp


def destroy(db, token):
    """Delete the session of this token (logout). Returns True if one existed."""
    if not token or not TOKEN_RE.fullmatch(token):
        return False
    return db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash(token),)) > 0


def log_out(db, token, user_uuid, ip=None):
    """Logout: delete the session of this token and audit it, in one transaction."""
    with db.transaction():
        destroy(db, token)
        audit.log(db, "logout", user_uuid, None, None, ip)


def prune(db):
    """Delete expired sessions."""
    return db.execute("DELETE FROM sessions WHERE expires_at <= ?", (utc_now(),))


def set_cookie(response, token):
    """Attach the session cookie (browser-session lifetime; the server enforces expiry)."""
    return response.set_cookie(COOKIE, token, secure=secure_cookies(), http_only=True)


def clear_cookie(response):
    return response.delete_cookie(COOKIE)


# -- flash messages (one message shown on the next page) ------------------------
def set_flash(db, session_row, message):
    if session_row:
        db.execute("UPDATE sessions SET flash = ? WHERE id = ?", (str(message)[:1000], session_row["id"]))
        session_row["flash"] = message


def pop_flash(db, session_row):
    if not session_row or not session_row.get("flash"):
        return None
    message = session_row["flash"]
    db.execute("UPDATE sessions SET flash = NULL WHERE id = ?", (session_row["id"],))
    session_row["flash"] = None
    return message


# -- my sessions at a glance (settings, /api/sessions.php) ------------------------
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"), ("curl/", "curl"), ("python-requests", "python-requests"),
             ("Python-urllib", "Python"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def device(user_agent):
    """A short form of a user agent: 'Firefox on Linux', 'curl', or the first 40 characters."""
    ua = (user_agent or "").strip()
    if not ua:
        return "unknown device"
    browser = next((name for mark, name in _BROWSERS if mark in ua), None)
    system = next((name for mark, name in _SYSTEMS if mark in ua), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    return ua[:40]


def list_for_user(db, user_uuid, current_id=None):
    """The user's live sessions, most recently seen first (no tokens, no CSRF secrets)."""
    rows = db.query("SELECT id, ip, user_agent, created_at, last_seen_at, expires_at FROM sessions "
                    "WHERE user_uuid = ? AND expires_at > ? ORDER BY last_seen_at DESC, id DESC",
                    (user_uuid, utc_now()))
    return [{"id": r["id"], "device": device(r["user_agent"]), "user_agent": r["user_agent"],
             "ip": r["ip"], "created_at": r["created_at"], "last_seen_at": r["last_seen_at"],
             "expires_at": r["expires_at"], "current": r["id"] == current_id} for r in rows]


def end(db, user_uuid, session_id, ip=None):
    """End one of the user's own sessions; 404 for an unknown id or someone else's."""
    with db.transaction():
        n = db.execute("DELETE FROM sessions WHERE id = ? AND user_uuid = ?", (session_id, user_uuid))
        if not n:
            raise NotFound("no such session")
        audit.log(db, "session_ended", user_uuid, f"session:{session_id}", None, ip)
    return True
