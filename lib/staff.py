"""Staff tools: marketplace statistics and moderation of users (ban by staff).

Stores are suspended through lib.catalog.set_store_suspended and disputes resolved
through lib.disputes.resolve; this module adds what neither covers.
"""
from lib import audit, status_machine, users
from lib.http import HttpError

STAFF_ROLES = ("staff", "admin")


def ban_refusal(actor, target):
    """None if `actor` may ban or unban `target`, else (status, message). The one rule for
    the POST and for which rows of /staff/users.php get a Ban button. Staff may ban
    customers and vendors; only an admin may ban staff; nobody bans an admin here (admins
    use /admin/users.php) or themselves."""
    if not actor or actor.get("role") not in STAFF_ROLES:
        return 403, "staff only"
    if target["uuid"] == actor["uuid"]:
        return 409, "you cannot ban yourself"
    if target["role"] == "admin" or (target["role"] == "staff" and actor["role"] != "admin"):
        return 403, f"staff cannot ban {target['role']} accounts"
    return None


def may_ban(actor, target):
    return ban_refusal(actor, target) is None


def set_banned(db, actor, target_uuid, banned, ip=None):
    """Staff ban or unban a user (rules: ban_refusal). 403/404/409 as appropriate.
    Returns the user dict."""
    if not actor or actor.get("role") not in STAFF_ROLES:
        raise HttpError(403, "staff only")
    target = users.by_uuid(db, target_uuid) if isinstance(target_uuid, str) else None
    if target is None:
        raise HttpError(404, "no such user")
    refusal = ban_refusal(actor, target)
    if refusal:
        raise HttpError(*refusal)
    return users.set_banned(db, target["uuid"], bool(banned), actor["uuid"], ip)


def list_users(db, q=None, limit=50, offset=0):
    if q is not None and len(q) > 16:
        raise HttpError(400, "the search text is longer than 16 characters", fields={"q": "at most 16 characters"})
    return users.list_users(db, limit, offset, q or None)


def list_open_flags(db, limit=50):
    """Funds cron found where staff must decide (late payments without a refund address ...)."""
    return db.query("SELECT id, transaction_uuid, reason, amount, created_at FROM staff_flags "
                    "WHERE resolved_at IS NULL ORDER BY id DESC LIMIT ?", (int(limit),))


def stats(db):
    """Counts for the staff dashboard."""
    def count(sql, params=()):
        return int(db.value(sql, params, default=0) or 0)

    by_status = status_machine.count_by_status(db)
    by_role = {r["role"]: int(r["n"]) for r in db.query("SELECT role, COUNT(*) AS n FROM users GROUP BY role")}
    last_run = db.one("SELECT started_at, finished_at, ok, errors FROM cron_runs ORDER BY id DESC LIMIT 1")
    return {
        "orders": sum(by_status.values()), "orders_by_status": by_status,
        "users": sum(by_role.values()), "users_by_role": by_role,
        "banned_users": count("SELECT COUNT(*) FROM users WHERE banned = 1"),
        "stores": count("SELECT COUNT(*) FROM stores"),
        "suspended_stores": count("SELECT COUNT(*) FROM stores WHERE suspended = 1"),
        "items": count("SELECT COUNT(*) FROM items WHERE active = 1"),
        "open_disputes": count("SELECT COUNT(*) FROM disputes WHERE status = 'open'"),
        "open_intents": count("SELECT COUNT(*) FROM transaction_intents WHERE status IN ('pending', 'processing')"),
        "failed_intents": count("SELECT COUNT(*) FROM transaction_intents WHERE status = 'failed'"),
        "open_flags": count("SELECT COUNT(*) FROM staff_flags WHERE resolved_at IS NULL"),
        "last_cron_run": last_run,
    }


def recent_actions(db, limit=20):
    return audit.recent(db, limit=limit)
