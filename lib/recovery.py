"""Account recovery without email.

Recovery codes: 10 single-use codes per user, `XXXX-XXXX-XXXX-XXXX` of base32 (80 random
bits each), shown once (at registration, or when the user makes a new set in settings,
which deletes the old set). Only sha256 of the normalized code is stored: the codes are
high-entropy, so a slow hash would add nothing. A code resets the password
(POST /recover.php) or stands in for a TOTP code at login (lib.totp); either way it is used
up in the same UPDATE that checks it (exact under concurrency).

Recovery attempts are throttled like logins (lib.users reservation: counted and inserted
in one serialized transaction before the code is checked): RECOVER_FAILS_PER_IP failures
per IP and RECOVER_FAILS_PER_USERNAME per username within RECOVER_WINDOW_MS. An unknown
username and a wrong code get the same 401.

Staff reset links: a staff member issues a one-time link for a user (never for an admin,
never for themselves); the token is shown only in the answer to that staff member, its
sha256 is stored, it expires after RESET_LINK_SECONDS and works once.
"""
import secrets

from lib import audit, roles, users
from lib.db import shift_time, utc_now
from lib.http import BadRequest, NotFound, Unauthorized
from lib.recovery_codes import codes_left, digest, issue_codes, normalize, use_code  # noqa: F401

RECOVER_WINDOW_MS = 15 * 60 * 1000
RECOVER_FAILS_PER_IP = 10
RECOVER_FAILS_PER_USERNAME = 5
RESET_LINK_SECONDS = 3600


def _reserve(db, ip, name, now_ms):
    with users._reservation(db):
        users._throttle(db, "recover", "ip = ?", [ip[:45]], RECOVER_FAILS_PER_IP, RECOVER_WINDOW_MS,
                        now_ms, "recovery attempts from this address")
        users._throttle(db, "recover", "username_lower = ?", [name], RECOVER_FAILS_PER_USERNAME,
                        RECOVER_WINDOW_MS, now_ms, "recovery attempts for this user")
        return users._record_attempt(db, "recover", ip, name, False, now_ms)


def recover(db, username, code, new_password, ip=None):
    """Reset the password with a recovery code: 400 bad input, 401 wrong name or code,
    403 banned, 429 over a limit. Ends every session of the user; returns the user dict."""
    if not isinstance(username, str) or username.strip() == "":
        raise BadRequest("username is required", fields={"username": "required"})
    username = username.strip()
    if len(username) > users.USERNAME_MAX or not users.USERNAME_RE.fullmatch(username):
        raise BadRequest("username may contain only letters, digits, _ - and .",
                        fields={"username": "letters, digits, _ - . only"})
    if not isinstance(code, str) or code.strip() == "":
        raise BadRequest("recovery_code is required", fields={"recovery_code": "required"})
    if len(code) > 64:
        raise BadRequest("recovery_code is too long", fields={"recovery_code": "too long"})
    users.validate_password(new_password, "new_password")
    ip = ip or ""
    name = username.lower()
    attempt_id = _reserve(db, ip, name, users._now_ms())
    row = db.one("SELECT uuid, username, banned FROM users WHERE username_lower = ?", (name,))
    users.refuse_attempt(db, "recover_failed", row, row is not None and normalize(code) is not None, username,
                         "bad code", "wrong username or recovery code", ip)
    password_hash = users.hash_password(new_password)
    with db.transaction():
        if not use_code(db, row["uuid"], code):
            ok = False
        else:
            ok = True
            db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE uuid = ?",
                       (password_hash, utc_now(), row["uuid"]))
            db.execute("DELETE FROM sessions WHERE user_uuid = ?", (row["uuid"],))
            db.execute("UPDATE login_attempts SET success = 1 WHERE id = ?", (attempt_id,))
            audit.log(db, "password_recovered", row["uuid"], row["uuid"], "recovery code", ip)
    if not ok:
        audit.log(db, "recover_failed", row["uuid"], row["username"], "wrong code", ip)
        raise Unauthorized("wrong username or recovery code")
    return users.by_uuid(db, row["uuid"])


# -- staff reset links -------------------------------------------------------------
def reset_refusal(actor, target):
    """(status, message) when `actor` may not issue a reset link for `target`, else None."""
    if not roles.is_staff(actor):
        return 403, "staff only"
    if target["uuid"] == actor["uuid"]:
        return 403, "you cannot issue a reset link for yourself; change your password in settings"
    if target["role"] == "admin":
        return 403, "no reset link for an admin (an admin uses `make create-admin`)"
    return None


def issue_reset_link(db, actor, target_uuid, ip=None):
    """A one-time reset token for the user (audited); returns (token, user dict)."""
    target = users.acted_on(db, actor, target_uuid, reset_refusal)
    token = secrets.token_urlsafe(32)
    now = utc_now()
    expires = shift_time(now, seconds=RESET_LINK_SECONDS)
    with db.transaction():
        db.insert("password_reset_links", {"token_hash": digest(token), "user_uuid": target["uuid"],
                                           "issued_by": actor["uuid"], "created_at": now,
                                           "expires_at": expires, "used_at": None})
        audit.log(db, "reset_link_issued", actor["uuid"], target["uuid"], f"expires {expires}", ip)
    return token, target


def _link(db, token):
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    row = db.one("SELECT * FROM password_reset_links WHERE token_hash = ?", (digest(token),))
    if row is None or row["used_at"] is not None or row["expires_at"] <= utc_now():
        return None
    return row


def link_user(db, token):
    """The user a live link is for, or None (unknown, used or expired)."""
    row = _link(db, token)
    return users.by_uuid(db, row["user_uuid"]) if row else None


def use_reset_link(db, token, new_password, ip=None):
    """Set the password with a live link (once); ends every session. 400 bad password,
    404 unknown, used or expired link. Returns the user dict."""
    users.validate_password(new_password, "new_password")
    row = _link(db, token)
    if row is None:
        raise NotFound("this reset link is unknown, used or expired")
    password_hash = users.hash_password(new_password)
    with db.transaction():
        n = db.execute("UPDATE password_reset_links SET used_at = ? WHERE id = ? AND used_at IS NULL "
                       "AND expires_at > ?", (utc_now(), row["id"], utc_now()))
        if n != 1:
            raise NotFound("this reset link is unknown, used or expired")
        db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE uuid = ?",
                   (password_hash, utc_now(), row["user_uuid"]))
        db.execute("DELETE FROM sessions WHERE user_uuid = ?", (row["user_uuid"],))
        audit.log(db, "password_recovered", row["user_uuid"], row["user_uuid"],
                  f"reset link of {row['issued_by']}", ip)
    return users.by_uuid(db, row["user_uuid"])
