"""Recovery codes: 10 single-use codes per user, `XXXX-XXXX-XXXX-XXXX` of base32 (80 random
bits each), shown once. Only sha256 of the normalized code is stored: the codes are
high-entropy, so a slow hash would add nothing. A code is used up in the same UPDATE that
checks it (exact under concurrency).

Below lib.totp (a code stands in for a TOTP code at login) and lib.recovery (a code resets
the password), which is above lib.users.
"""
import hashlib
import secrets

from lib import audit
from lib.db import utc_now

CODES_PER_SET = 10
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _new_code():
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def normalize(code):
    """Upper case without spaces and dashes; None when it cannot be a code."""
    if not isinstance(code, str) or len(code) > 64:
        return None
    text = code.replace("-", "").replace(" ", "").strip().upper()
    if len(text) != 16 or any(c not in _ALPHABET for c in text):
        return None
    return text


def digest(text):
    """sha256 hex of an ASCII text (the codes and reset-link tokens are high-entropy)."""
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def issue_codes(db, user_uuid, ip=None):
    """A new set of codes for the user (the old set stops working); returns the codes."""
    codes = [_new_code() for _ in range(CODES_PER_SET)]
    now = utc_now()
    with db.transaction():
        # Delete only when there is a set: on MariaDB a DELETE that matches nothing takes a gap
        # lock, and two registrations at once then deadlock on their inserts into that gap.
        if db.value("SELECT 1 FROM recovery_codes WHERE user_uuid = ? LIMIT 1", (user_uuid,)) is not None:
            db.execute("DELETE FROM recovery_codes WHERE user_uuid = ?", (user_uuid,))
        for code in codes:
            db.insert("recovery_codes", {"user_uuid": user_uuid, "code_hash": digest(normalize(code)),
                                         "created_at": now, "used_at": None})
        audit.log(db, "recovery_codes_issued", user_uuid, user_uuid, f"{len(codes)} codes", ip)
    return codes


def codes_left(db, user_uuid):
    return int(db.value("SELECT COUNT(*) FROM recovery_codes WHERE user_uuid = ? AND used_at IS NULL",
                        (user_uuid,), default=0))


def use_code(db, user_uuid, code):
    """Use up one of the user's codes; True if it was an unused code of theirs."""
    text = normalize(code)
    if text is None:
        return False
    return db.execute("UPDATE recovery_codes SET used_at = ? WHERE user_uuid = ? AND code_hash = ? "
                      "AND used_at IS NULL", (utc_now(), user_uuid, digest(text))) == 1
