"""The append-only audit log: who did what to which target, from where.

Actions written by the accounts layer: login, login_failed, logout, register,
key_created, key_revoked, role_changed, banned, unbanned, admin_created,
password_changed; recovery (lib.recovery, lib.totp): recovery_codes_issued,
password_recovered, recover_failed, reset_link_issued, totp_enroll_started, totp_enabled,
totp_disabled. Other modules add their own (short snake_case names).
Rows are never updated or deleted.
"""
from lib.db import utc_now


def _cut(value, length):
    if value is None:
        return None
    value = str(value)
    return value[:length]


def log(db, action, user_uuid=None, target=None, detail=None, ip=None):
    """Append one audit row; return its id."""
    return db.insert("audit_log", {
        "time": utc_now(),
        "user_uuid": user_uuid,
        "action": _cut(action, 32),
        "target": _cut(target, 128),
        "detail": _cut(detail, 255),
        "ip": _cut(ip, 45),
    })


def recent(db, action=None, limit=50, offset=0):
    """Newest audit rows first, optionally of one action."""
    if action:
        return db.query("SELECT * FROM audit_log WHERE action = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                        (action, int(limit), int(offset)))
    return db.query("SELECT * FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?",
                    (int(limit), int(offset)))
