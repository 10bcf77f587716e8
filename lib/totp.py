"""Two-factor login with TOTP (RFC 6238 through pyotp).

Enrolling (settings/two-factor.php): `begin` stores a new base32 secret with
totp_enabled = 0 and shows it with a QR code of its otpauth:// URI; `confirm` with a first
code sets totp_enabled = 1. From then on /login.php needs `otp` as well: a current code
(30-second steps, one step of clock drift either way) or one of the user's recovery codes
(lib.recovery; used up). A code is single-use: the time step of the last accepted code is
stored (users.totp_last_counter) and only a later step is accepted, in one conditional
UPDATE, so two requests with the same code cannot both pass. Disabling needs a code too.

Admins may require it for staff and admins (config `require_2fa_for_staff` = 1): their
pages then redirect to the enrolling page until they enroll (lib.auth); API keys are
unaffected.
"""
import hmac
import time

import pyotp

from lib import audit, config, recovery_codes, roles
from lib.db import utc_now
from lib.http import BadRequest, Conflict, NotFound

STEP = 30
DRIFT_STEPS = 1
ENROLL_PATH = "/settings/two-factor.php"


def _row(db, uuid):
    row = db.one("SELECT uuid, username, totp_secret, totp_enabled, totp_last_counter FROM users WHERE uuid = ?",
                 (uuid,))
    if row is None:
        raise NotFound("no such user")
    return row


def enabled(db, uuid):
    return bool(db.value("SELECT totp_enabled FROM users WHERE uuid = ?", (uuid,), default=0))


def uri(secret, username, issuer):
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def begin(db, uuid, ip=None):
    """A new (unconfirmed) secret for the user; 409 when 2FA is already on. Returns it."""
    secret = pyotp.random_base32()
    with db.transaction():
        row = _row(db, uuid)
        if row["totp_enabled"]:
            raise Conflict("two-factor login is already on; disable it first")
        db.execute("UPDATE users SET totp_secret = ?, totp_last_counter = NULL, updated_at = ? WHERE uuid = ?",
                   (secret, utc_now(), uuid))
        audit.log(db, "totp_enroll_started", uuid, uuid, None, ip)
    return secret


def _clean(code):
    if not isinstance(code, str):
        return None
    code = code.replace(" ", "").strip()
    return code if len(code) == 6 and code.isdigit() else None


def _use_totp(db, row, code):
    """Accept a current code of the row's secret once (a later step than the last one)."""
    code = _clean(code)
    if code is None or not row["totp_secret"]:
        return False
    totp = pyotp.TOTP(row["totp_secret"])
    now = int(time.time()) // STEP
    for counter in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(counter), code):
            return db.execute("UPDATE users SET totp_last_counter = ? WHERE uuid = ? AND totp_secret = ? AND "
                              "(totp_last_counter IS NULL OR totp_last_counter < ?)",
                              (counter, row["uuid"], row["totp_secret"], counter)) == 1
    return False


def confirm(db, uuid, code, ip=None):
    """Turn 2FA on with a first code of the pending secret; 400 wrong code. One transaction:
    the code's step, the switch and the audit row are written together or not at all."""
    with db.transaction():
        row = _row(db, uuid)
        if row["totp_enabled"]:
            raise Conflict("two-factor login is already on")
        if not row["totp_secret"]:
            raise BadRequest("start enrolling first")
        if not _use_totp(db, row, code):
            raise BadRequest("wrong code: enter the 6 digits your app shows now", fields={"otp": "wrong code"})
        db.execute("UPDATE users SET totp_enabled = 1, updated_at = ? WHERE uuid = ?", (utc_now(), uuid))
        audit.log(db, "totp_enabled", uuid, uuid, None, ip)


def check(db, uuid, otp):
    """At login: a current code (once) or a recovery code (used up)."""
    row = _row(db, uuid)
    if _use_totp(db, row, otp):
        return True
    return recovery_codes.use_code(db, uuid, otp)


def disable(db, uuid, code, ip=None):
    """Turn 2FA off with a code (or a recovery code); 400 wrong code, 409 not on. One
    transaction, as confirm."""
    with db.transaction():
        row = _row(db, uuid)
        if not row["totp_enabled"]:
            raise Conflict("two-factor login is not on")
        if not check(db, uuid, code):
            raise BadRequest("wrong code", fields={"otp": "wrong code"})
        db.execute("UPDATE users SET totp_enabled = 0, totp_secret = NULL, totp_last_counter = NULL, "
                   "updated_at = ? WHERE uuid = ?", (utc_now(), uuid))
        audit.log(db, "totp_disabled", uuid, uuid, None, ip)


def staff_must_enroll(db, user):
    """Whether config requires 2FA of this staff or admin member who has not enrolled."""
    if not roles.is_staff(user):
        return False
    if config.raw(db, "require_2fa_for_staff") != "1":
        return False
    return not enabled(db, user["uuid"])
