"""Users: registration, password hashing, login with throttling, roles and bans.

Passwords are hashed with `hashlib.scrypt`, a random 16-byte salt per user, and
the parameters stored with the hash (`scrypt$N$r$p$salt$hash`), so they can be
raised later: a login with a hash made under weaker parameters re-hashes it.

Throttling (login_attempts table, rolling windows, module constants):
- failed logins within LOGIN_WINDOW_MS: LOGIN_FAILS_PER_IP per IP (any names),
  LOGIN_FAILS_PER_USERNAME_IP per username from one IP, and LOGIN_FAILS_PER_USERNAME
  per username from all IPs where that user has not logged in within KNOWN_IP_DAYS.
  So a stranger's wrong passwords lock out the stranger's IP, never the user at an
  address they have used before; the next attempt gets 429 with Retry-After;
- registrations: REGISTRATIONS_PER_IP attempts per IP and REGISTRATIONS_PER_USERNAME
  attempts per requested name within REGISTER_WINDOW_MS (successful registrations and
  attempts refused because the name is taken; this also slows name probing).
Exact under concurrency: an attempt is reserved (counted and inserted in one
serialized transaction) before the password is checked, as the API-key limit is;
a successful login turns its reservation into a success row.

CLI (make create-admin / make run):
  python -m lib.users create-admin NAME   password from $ADMIN_PASSWORD or a prompt
  python -m lib.users first-admin         creates `admin` with a printed random
                                          password when no admin exists yet
"""
import hashlib
import hmac
import os
import random
import re
import secrets
import sys
import time
import uuid as uuidlib
from contextlib import contextmanager

if __name__ == "__main__":  # python -m lib.users from the project root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib import audit, catalog_cache, totp
from lib.db import IntegrityError, like_pattern, utc_now
from lib.http import BadRequest, Conflict, Forbidden, HttpError, NotFound, TooManyRequests, Unauthorized
from lib.tokens import optional_address

ROLES = ("admin", "staff", "vendor", "customer")
USERNAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,16}")
USERNAME_MAX = 16
PASSWORD_MIN = 8
PASSWORD_MAX = 1024

# scrypt parameters for new hashes (32 MiB, about 70 ms on one core). Stored with
# each hash; raising them re-hashes on the next successful login.
SCRYPT_N = 2 ** 15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32

LOGIN_WINDOW_MS = 15 * 60 * 1000
LOGIN_FAILS_PER_IP = 10
LOGIN_FAILS_PER_USERNAME_IP = 5
LOGIN_FAILS_PER_USERNAME = 50
KNOWN_IP_DAYS = 30
REGISTER_WINDOW_MS = 60 * 60 * 1000
REGISTRATIONS_PER_IP = 10
REGISTRATIONS_PER_USERNAME = 5

PUBLIC_FIELDS = ("id", "uuid", "username", "role", "banned", "inviter_uuid",
                 "refund_address", "payout_address", "created_at")


# -- passwords -----------------------------------------------------------------
def _scrypt(password, salt, n, r, p, dklen):
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=256 * r * n + 1024 * 1024)


def hash_password(password):
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def _parse_hash(stored):
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return None
        return int(n), int(r), int(p), bytes.fromhex(salt), bytes.fromhex(digest)
    except (ValueError, AttributeError):
        return None


def verify_password(password, stored):
    parsed = _parse_hash(stored)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    candidate = _scrypt(password, salt, n, r, p, len(digest))
    return hmac.compare_digest(candidate, digest)


def needs_rehash(stored):
    parsed = _parse_hash(stored)
    if parsed is None:
        return True
    n, r, p, _salt, digest = parsed
    return n < SCRYPT_N or r < SCRYPT_R or p < SCRYPT_P or len(digest) < SCRYPT_DKLEN


# A hash to verify against when the user does not exist, so an unknown name
# takes as long as a wrong password.
_DUMMY_HASH = None


def _dummy_hash():
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


# -- validation ----------------------------------------------------------------
def validate_username(name, field="username"):
    if name is not None and not isinstance(name, str):
        raise BadRequest(f"{field} must be a string", fields={field: "must be a string"})
    if name is None or name.strip() == "":
        raise BadRequest(f"{field} is required", fields={field: "required"})
    name = name.strip()
    if len(name) > USERNAME_MAX:
        raise BadRequest(f"{field} is longer than {USERNAME_MAX} characters",
                        fields={field: f"at most {USERNAME_MAX} characters"})
    if not USERNAME_RE.fullmatch(name):
        raise BadRequest(f"{field} may contain only letters, digits, _ - and .",
                        fields={field: "letters, digits, _ - . only"})
    return name


def validate_password(password, field="password"):
    if password is None or password == "":
        raise BadRequest(f"{field} is required", fields={field: "required"})
    if not isinstance(password, str):
        raise BadRequest(f"{field} must be a string", fields={field: "must be a string"})
    if len(password) < PASSWORD_MIN:
        raise BadRequest(f"{field} must be at least {PASSWORD_MIN} characters",
                        fields={field: f"at least {PASSWORD_MIN} characters"})
    if len(password) > PASSWORD_MAX:
        raise BadRequest(f"{field} is longer than {PASSWORD_MAX} characters",
                        fields={field: f"at most {PASSWORD_MAX} characters"})
    return password


def validate_role(role):
    if role not in ROLES:
        raise BadRequest("role must be one of " + ", ".join(ROLES), fields={"role": "unknown role"})
    return role


# -- reading -------------------------------------------------------------------
def public(row):
    """The user dict every endpoint sees (no password hash); banned is a bool."""
    if row is None:
        return None
    user = {k: row.get(k) for k in PUBLIC_FIELDS}
    user["banned"] = bool(row.get("banned"))
    user["can_sell"] = bool(int(row["can_sell"])) if row.get("can_sell") is not None else True
    return user


def by_uuid(db, uuid):
    if not uuid or not isinstance(uuid, str):
        return None
    return public(db.one("SELECT * FROM users WHERE uuid = ?", (uuid,)))


def acted_on(db, actor, target_uuid, refusal):
    """The user `target_uuid` that `actor` acts on (a ban, a reset link): 404 for no such
    user, else the error refusal(actor, target) names as (status, message), if any."""
    target = by_uuid(db, target_uuid) if isinstance(target_uuid, str) else None
    if target is None:
        raise NotFound("no such user")
    refused = refusal(actor, target)
    if refused:
        raise HttpError(*refused)
    return target


def by_username(db, name):
    """Case-insensitive lookup."""
    if not name or not isinstance(name, str) or len(name) > USERNAME_MAX:
        return None
    return public(db.one("SELECT * FROM users WHERE username_lower = ?", (name.lower(),)))


def list_users(db, limit=50, offset=0, q=None, role=None):
    where, params = [], []
    if q:
        where.append("username_lower LIKE ? ESCAPE '!'")
        params.append(like_pattern(q))
    if role:
        where.append("role = ?")
        params.append(role)
    sql = "SELECT * FROM users"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id LIMIT ? OFFSET ?"
    return [public(r) for r in db.query(sql, params + [int(limit), int(offset)])]


# -- writing -------------------------------------------------------------------
def create_user(db, username, password, role="customer", invite=None):
    """Create a user; return the user dict. 400 bad input, 409 name taken."""
    username = validate_username(username)
    validate_password(password)
    validate_role(role)
    inviter_uuid = None
    if invite not in (None, ""):
        if not isinstance(invite, str) or len(invite.strip()) > USERNAME_MAX or \
                not USERNAME_RE.fullmatch(invite.strip()):
            raise BadRequest("invite must be the username of the user who invited you",
                            fields={"invite": "unknown user"})
        inviter = by_username(db, invite.strip())
        if inviter is None:
            raise BadRequest(f"invite: no user named {invite.strip()}", fields={"invite": "unknown user"})
        inviter_uuid = inviter["uuid"]
    password_hash = hash_password(password)
    now = utc_now()
    user_uuid = str(uuidlib.uuid4())
    try:
        with db.transaction():
            if db.one("SELECT id FROM users WHERE username_lower = ?", (username.lower(),)):
                raise Conflict(f"username {username} is taken", fields={"username": "taken"})
            db.insert("users", {
                "uuid": user_uuid, "username": username, "username_lower": username.lower(),
                "password_hash": password_hash, "role": role, "banned": 0,
                "inviter_uuid": inviter_uuid, "created_at": now, "updated_at": now,
            })
    except IntegrityError:
        raise Conflict(f"username {username} is taken", fields={"username": "taken"})
    return by_uuid(db, user_uuid)


def set_role(db, uuid, role, actor_uuid=None, ip=None):
    """Change a user's role (audited); return the user dict, None if no such user."""
    validate_role(role)
    with db.transaction():
        user = db.one("SELECT * FROM users WHERE uuid = ? FOR UPDATE", (uuid,))
        if user is None:
            return None
        if user["role"] != role:
            db.execute("UPDATE users SET role = ?, updated_at = ? WHERE uuid = ?", (role, utc_now(), uuid))
            audit.log(db, "role_changed", actor_uuid, uuid, f"{user['role']} -> {role}", ip)
    return by_uuid(db, uuid)


def _set_flag(db, uuid, column, flag, events, actor_uuid, ip, then=None):
    """Set a user's 0/1 `column` to `flag` in one transaction, audited as events[flag] when it
    changes; then(changed) runs inside the same transaction. The user dict, None if no such user."""
    with db.transaction():
        user = db.one("SELECT * FROM users WHERE uuid = ? FOR UPDATE", (uuid,))
        if user is None:
            return None
        changed = int(user[column]) != flag
        if changed:
            db.execute(f"UPDATE users SET {column} = ?, updated_at = ? WHERE uuid = ?", (flag, utc_now(), uuid))
            audit.log(db, events[flag], actor_uuid, uuid, user["username"], ip)
        if then is not None:
            then(changed)
    return by_uuid(db, uuid)


def set_banned(db, uuid, banned, actor_uuid=None, ip=None):
    """Ban or unban (audited). A ban ends the user's sessions at once; their API keys
    are refused while banned. Returns the user dict, None if no such user."""
    def then(changed):
        if changed:
            catalog_cache.changed(db)
        if banned:
            db.execute("DELETE FROM sessions WHERE user_uuid = ?", (uuid,))
    return _set_flag(db, uuid, "banned", 1 if banned else 0, ("unbanned", "banned"), actor_uuid, ip, then)


def set_can_sell(db, uuid, can_sell, actor_uuid=None, ip=None):
    """An admin lets a user open stores or not (the original's "grant seller"; audited).
    Stores the user already has are not touched. Returns the user dict, None if no such user."""
    return _set_flag(db, uuid, "can_sell", 1 if can_sell else 0, ("seller_revoked", "seller_granted"), actor_uuid, ip)


def admin_update(db, admin, target_uuid, role=None, banned=None, can_sell=None, ip=None):
    """An admin changes a user's role, ban and/or can_sell (None: leave it) in one
    transaction, each change audited. 409 for an admin demoting or banning themselves.
    Returns the user dict."""
    if target_uuid == admin["uuid"] and ((role is not None and role != "admin") or banned):
        raise Conflict("you cannot demote or ban yourself")
    if role is not None:
        validate_role(role)
    with db.transaction():
        if role is not None:
            set_role(db, target_uuid, role, admin["uuid"], ip)
        if banned is not None:
            set_banned(db, target_uuid, banned, admin["uuid"], ip)
        if can_sell is not None:
            set_can_sell(db, target_uuid, can_sell, admin["uuid"], ip)
    return by_uuid(db, target_uuid)


def set_password(db, uuid, new_password, actor_uuid=None, ip=None, keep_session_id=None):
    """Set a new password (audited) and end the user's other sessions."""
    validate_password(new_password, "new_password")
    password_hash = hash_password(new_password)
    with db.transaction():
        n = db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE uuid = ?",
                       (password_hash, utc_now(), uuid))
        if not n:
            return False
        if keep_session_id is None:
            db.execute("DELETE FROM sessions WHERE user_uuid = ?", (uuid,))
        else:
            db.execute("DELETE FROM sessions WHERE user_uuid = ? AND id <> ?", (uuid, keep_session_id))
        audit.log(db, "password_changed", actor_uuid or uuid, uuid, None, ip)
    return True


def sign_out_everywhere(db, uuid, ip=None):
    """End every session of the user and revoke all their API keys (a password change
    alone leaves keys working). Returns (sessions ended, keys revoked)."""
    with db.transaction():
        keys = [r["id"] for r in db.query("SELECT id FROM api_keys WHERE user_uuid = ? AND revoked_at IS NULL "
                                          "FOR UPDATE", (uuid,))]
        if keys:
            marks = ", ".join("?" * len(keys))
            db.execute(f"UPDATE api_keys SET revoked_at = ? WHERE id IN ({marks})", [utc_now()] + keys)
        sessions = db.execute("DELETE FROM sessions WHERE user_uuid = ?", (uuid,))
        audit.log(db, "signed_out_everywhere", uuid, uuid, f"{sessions} sessions, {len(keys)} API keys", ip)
    return sessions, len(keys)


def require_current_password(db, uuid, password, field="password"):
    """403 naming `field` unless `password` is the user's current password."""
    row = db.one("SELECT password_hash FROM users WHERE uuid = ?", (uuid,))
    if row is None:
        raise NotFound("no such user")
    if not isinstance(password, str) or len(password) > PASSWORD_MAX or \
            not verify_password(password, row["password_hash"]):
        raise Forbidden("the current password is wrong", fields={field: "wrong password"})


def change_password(db, uuid, old_password, new_password, ip=None, keep_session_id=None):
    """The user's own password change: the old password must match (403 otherwise)."""
    require_current_password(db, uuid, old_password, "old_password")
    return set_password(db, uuid, new_password, uuid, ip, keep_session_id)


def set_addresses(db, uuid, refund_address=None, payout_address=None, ip=None):
    """The user's own refund and/or payout address.

    None leaves a field as it is; '' clears it; anything else must be an EIP-55
    checksummed address (400 otherwise). 400 when neither is given. Returns the user dict.
    """
    changes = {}
    for field, value in (("refund_address", refund_address), ("payout_address", payout_address)):
        if value is None:
            continue
        changes[field] = optional_address(value, field)
    if not changes:
        raise BadRequest("nothing to change: give refund_address and/or payout_address")
    with db.transaction():
        changes["updated_at"] = utc_now()
        n = db.execute("UPDATE users SET %s WHERE uuid = ?" % ", ".join(f"{k} = ?" for k in changes),
                       list(changes.values()) + [uuid])
        if not n:
            raise NotFound("no such user")
        audit.log(db, "addresses_changed", uuid, uuid,
                  ", ".join(f"{k}={v}" for k, v in changes.items() if k != "updated_at"), ip)
    return by_uuid(db, uuid)


# -- throttling ----------------------------------------------------------------
def _now_ms():
    return int(time.time() * 1000)


def _prune_attempts(db, now_ms):
    if random.random() < 0.05:
        # Successful logins are kept longer: they mark the user's known addresses.
        db.execute("DELETE FROM login_attempts WHERE attempted_ms < ? AND NOT (kind = 'login' AND success = 1)",
                   (now_ms - max(LOGIN_WINDOW_MS, REGISTER_WINDOW_MS),))
        db.execute("DELETE FROM login_attempts WHERE kind = 'login' AND success = 1 AND attempted_ms < ?",
                   (now_ms - KNOWN_IP_DAYS * 86400 * 1000,))


# The MariaDB named lock serializing reservations (there is no row to lock: the
# rows being counted may not exist yet). SQLite's BEGIN IMMEDIATE serializes already.
ATTEMPTS_LOCK = "marketplace_login_attempts"


@contextmanager
def _reservation(db):
    """A transaction in which counting and inserting attempts cannot interleave."""
    if db.is_sqlite:
        with db.transaction():
            yield
        return
    # Taken before the transaction starts, so its snapshot sees every earlier reservation.
    if db.value("SELECT GET_LOCK(?, 10)", (ATTEMPTS_LOCK,)) != 1:
        raise TooManyRequests("too many attempts at once; try again", [("Retry-After", "1")])
    try:
        with db.transaction():
            yield
    finally:
        db.value("SELECT RELEASE_LOCK(?)", (ATTEMPTS_LOCK,))


def _throttle(db, kind, where, params, limit, window_ms, now_ms, what):
    """429 when `limit` counted attempts matching `where` are inside the window."""
    rows = db.query(f"SELECT attempted_ms FROM login_attempts WHERE kind = ? AND {where} "
                    f"AND success = ? AND attempted_ms > ? ORDER BY attempted_ms DESC LIMIT ?",
                    [kind] + list(params) + [1 if kind == "register" else 0, now_ms - window_ms, limit])
    if len(rows) >= limit:
        oldest = min(r["attempted_ms"] for r in rows)
        retry = max(1, (oldest + window_ms - now_ms + 999) // 1000)
        raise TooManyRequests(f"too many {what}; try again in {retry} seconds",
                        [("Retry-After", str(retry))])


def _record_attempt(db, kind, ip, username, success, now_ms):
    attempt_id = db.insert("login_attempts", {"kind": kind, "ip": (ip or "")[:45],
                                              "username_lower": (username or "").lower()[:64],
                                              "success": 1 if success else 0, "attempted_ms": now_ms})
    _prune_attempts(db, now_ms)
    return attempt_id


def _known_ip(db, name, ip, now_ms):
    """Whether the user `name` logged in from `ip` within KNOWN_IP_DAYS."""
    return db.value("SELECT 1 FROM login_attempts WHERE kind = 'login' AND username_lower = ? AND ip = ? "
                    "AND success = 1 AND attempted_ms > ? LIMIT 1",
                    (name, ip[:45], now_ms - KNOWN_IP_DAYS * 86400 * 1000)) is not None


def _reserve_login(db, ip, name, now_ms):
    """Count a login attempt as failed before its password is checked; 429 over a limit.
    Returns the attempt's id (a successful login marks it a success)."""
    with _reservation(db):
        _throttle(db, "login", "ip = ?", [ip[:45]], LOGIN_FAILS_PER_IP, LOGIN_WINDOW_MS, now_ms,
                  "failed logins from this address")
        _throttle(db, "login", "ip = ? AND username_lower = ?", [ip[:45], name], LOGIN_FAILS_PER_USERNAME_IP,
                  LOGIN_WINDOW_MS, now_ms, "failed logins for this user from this address")
        if not _known_ip(db, name, ip, now_ms):
            _throttle(db, "login", "username_lower = ?", [name], LOGIN_FAILS_PER_USERNAME,
                      LOGIN_WINDOW_MS, now_ms, "failed logins for this user")
        return _record_attempt(db, "login", ip, name, False, now_ms)


class OtpRequired(Unauthorized):
    """401 of a login that needs (or got a wrong) two-factor code: `otp_required` is set."""
    otp_required = True


def refuse_attempt(db, event, row, ok, username, wrong, message, ip):
    """The refusals of a sign-in attempt (a login, a recovery) for the user `row` (None: no
    such name) whose secret was `ok` or not: 401 `message` (the same for an unknown name), 403
    for a banned user; each audited as `event` with its reason (`wrong` for a wrong secret)."""
    if row is None or not ok:
        audit.log(db, event, row["uuid"] if row else None, username, wrong if row else "unknown user", ip)
        raise Unauthorized(message)
    if row["banned"]:
        audit.log(db, event, row["uuid"], row["username"], "banned", ip)
        raise Forbidden("this account is banned")


def authenticate(db, username, password, ip=None, otp=None):
    """Check a login; return the user dict. 400 bad input, 401 wrong name or password,
    403 banned, 429 too many failures (per IP and per username). A user with two-factor
    login on needs `otp` too (lib.totp: a current code, once, or a recovery code): without
    it OtpRequired (401; the attempt is not counted), a wrong one OtpRequired (counted)."""
    if not isinstance(username, str) or username.strip() == "":
        raise BadRequest("username is required", fields={"username": "required"})
    if not isinstance(password, str) or password == "":
        raise BadRequest("password is required", fields={"password": "required"})
    username = username.strip()
    if len(username) > USERNAME_MAX or len(password) > PASSWORD_MAX:
        raise BadRequest("username or password too long")
    if not USERNAME_RE.fullmatch(username):
        raise BadRequest("username may contain only letters, digits, _ - and .",
                        fields={"username": "letters, digits, _ - . only"})
    ip = ip or ""
    now_ms = _now_ms()
    attempt_id = _reserve_login(db, ip, username.lower(), now_ms)
    row = db.one("SELECT * FROM users WHERE username_lower = ?", (username.lower(),))
    ok = verify_password(password, row["password_hash"] if row else _dummy_hash())
    refuse_attempt(db, "login_failed", row, ok, username, "wrong password", "wrong username or password", ip)
    if row.get("totp_enabled"):
        if otp is None or otp == "":
            db.execute("DELETE FROM login_attempts WHERE id = ?", (attempt_id,))
            raise OtpRequired("two-factor code required: send otp (or a recovery code)",
                              fields={"otp": "required"})
        if not isinstance(otp, str) or len(otp) > 64 or not totp.check(db, row["uuid"], otp):
            audit.log(db, "login_failed", row["uuid"], row["username"], "wrong two-factor code", ip)
            raise OtpRequired("wrong two-factor code", fields={"otp": "wrong code"})
    db.execute("UPDATE login_attempts SET success = 1 WHERE id = ?", (attempt_id,))
    if needs_rehash(row["password_hash"]):
        db.execute("UPDATE users SET password_hash = ? WHERE uuid = ?",
                   (hash_password(password), row["uuid"]))
    audit.log(db, "login", row["uuid"], row["username"], None, ip)
    return public(row)


def register(db, username, password, invite=None, ip=None):
    """Registration from the web: create_user plus the per-IP limit and audit."""
    username = validate_username(username)
    validate_password(password)
    ip = ip or ""
    now_ms = _now_ms()
    # Reserve the attempt first (exact under concurrency); it stays counted for a
    # registration and for a name already taken, and is withdrawn for bad input.
    with _reservation(db):
        _throttle(db, "register", "ip = ?", [ip[:45]], REGISTRATIONS_PER_IP, REGISTER_WINDOW_MS, now_ms,
                  "registrations from this address")
        _throttle(db, "register", "username_lower = ?", [username.lower()], REGISTRATIONS_PER_USERNAME,
                  REGISTER_WINDOW_MS, now_ms, "registration attempts for this name")
        attempt_id = _record_attempt(db, "register", ip, username, True, now_ms)
    try:
        user = create_user(db, username, password, "customer", invite)
    except HttpError as e:
        if e.status != 409:
            db.execute("DELETE FROM login_attempts WHERE id = ?", (attempt_id,))
        raise
    audit.log(db, "register", user["uuid"], user["username"],
              f"invited by {user['inviter_uuid']}" if user["inviter_uuid"] else None, ip)
    return user


# -- admins ----------------------------------------------------------------------
def create_admin(db, username, password):
    """Create an admin, or make an existing user admin with this password."""
    existing = by_username(db, username)
    if existing is None:
        user = create_user(db, username, password, "admin")
        audit.log(db, "admin_created", None, user["uuid"], user["username"])
        return user, True
    set_password(db, existing["uuid"], password)
    set_role(db, existing["uuid"], "admin")
    set_banned(db, existing["uuid"], False)
    return by_uuid(db, existing["uuid"]), False


def ensure_first_admin(db, username="admin"):
    """On a database without an admin, create one with a random password.
    Returns (user, password) when one was created, else None."""
    if db.value("SELECT COUNT(*) FROM users WHERE role = 'admin'", default=0):
        return None
    name = username
    while by_username(db, name) is not None:
        name = f"{username}-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(15)
    user = create_user(db, name, password, "admin")
    audit.log(db, "admin_created", None, user["uuid"], "first run")
    return user, password


def main(argv):
    import getpass
    from lib import env
    from lib.db import get_db
    env.load()
    db = get_db()
    if argv[:1] == ["create-admin"] and len(argv) in (1, 2):
        name = argv[1] if len(argv) == 2 else "admin"
        password = os.environ.get("ADMIN_PASSWORD")
        if not password:
            if not sys.stdin.isatty():
                print("error: no terminal to ask for the password: set ADMIN_PASSWORD", file=sys.stderr)
                return 1
            password = getpass.getpass("password (min 8 characters): ")
            if getpass.getpass("again: ") != password:
                print("passwords differ; nothing changed", file=sys.stderr)
                return 1
        try:
            user, created = create_admin(db, name, password)
        except HttpError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return 1
        print(f"{'created' if created else 'updated'} admin {user['username']}")
        return 0
    if argv == ["first-admin"]:
        made = ensure_first_admin(db)
        if made:
            user, password = made
            print("=" * 60)
            print(f"First admin account created: {user['username']}")
            print(f"Password (shown only this once): {password}")
            print("=" * 60, flush=True)
        return 0
    print("usage: python -m lib.users create-admin [USERNAME] | first-admin", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
