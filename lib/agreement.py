"""The vendorship agreement: a text the admin edits, versioned.

Each edit is a new `vendor_agreements` row (version 1, 2, ...); the highest version is
the current agreement. A store owner accepts the current version for their stores
(stores.agreement_version; opening a store with vendorship_agree=1 accepts it too).
When an admin publishes a new version, a store whose owner has not accepted it cannot
create new items (403 with a link to /verification/agreement.php); its existing items
stay listed. Without any agreement row nothing is required.
"""
from lib import audit
from lib.db import utc_now
from lib.http import BadRequest, Conflict, Forbidden

MAX_BODY = 20000
PAGE = "/verification/agreement.php"


def current(db):
    """The current agreement {version, body, created_at} or None."""
    return db.one("SELECT version, body, created_by, created_at FROM vendor_agreements "
                  "ORDER BY version DESC LIMIT 1")


def current_version(db):
    return db.value("SELECT MAX(version) FROM vendor_agreements")


def history(db, limit=20):
    return db.query("SELECT version, created_at FROM vendor_agreements ORDER BY version DESC LIMIT ?",
                    (int(limit),))


def publish(db, user, body, ip=None):
    """An admin publishes a new version. 400 empty or longer than 20000 characters."""
    if not user or user.get("role") != "admin":
        raise Forbidden("admins only")
    if body is None or not isinstance(body, str) or not body.strip():
        raise BadRequest("body is required", fields={"body": "required"})
    body = body.strip().replace("\r\n", "\n")
    if len(body) > MAX_BODY:
        raise BadRequest(f"body is longer than {MAX_BODY} characters", fields={"body": "too long"})
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in body):
        raise BadRequest("body contains control characters", fields={"body": "control characters"})
    with db.transaction():
        version = int(db.value("SELECT MAX(version) FROM vendor_agreements", default=None) or 0) + 1
        db.insert("vendor_agreements", {"version": version, "body": body, "created_by": user["uuid"],
                                        "created_at": utc_now()})
        audit.log(db, "agreement_published", user["uuid"], f"v{version}", f"{len(body)} characters", ip=ip)
    return current(db)


def owned_stores(db, user):
    if not user:
        return []
    return db.query("SELECT s.uuid, s.storename, s.agreement_version, s.agreement_accepted_at FROM stores s "
                    "JOIN store_users su ON su.store_uuid = s.uuid WHERE su.user_uuid = ? AND su.role = 'owner' "
                    "ORDER BY s.id", (user["uuid"],))


def state(db, user):
    """What /verification/agreement.php and /api/agreement.php show: the current text, the
    versions, and whether each store `user` owns accepted the current one."""
    now = current(db)
    stores = []
    for s in owned_stores(db, user):
        accepted = now is not None and s["agreement_version"] is not None and \
            int(s["agreement_version"]) >= int(now["version"])
        stores.append({"uuid": s["uuid"], "storename": s["storename"], "agreement_version": s["agreement_version"],
                       "agreement_accepted_at": s["agreement_accepted_at"], "accepted": accepted})
    public = {k: now[k] for k in ("version", "body", "created_at")} if now else None
    return {"agreement": public, "history": history(db), "stores": stores}


def accept(db, user, version=None, ip=None):
    """A store owner accepts the current version for every store they own. 400 a `version`
    that is not a number, 403 not a store owner, 409 no agreement yet, or `version` (what
    the owner read) is no longer the current one. Returns the accepted version."""
    stores = owned_stores(db, user)
    if not stores:
        raise Forbidden("only store owners accept the vendorship agreement")
    now_version = current_version(db)
    if now_version is None:
        raise Conflict("there is no vendorship agreement to accept yet")
    if version not in (None, ""):
        text = str(version).strip()
        if not (text.isascii() and text.isdigit() and len(text) < 10):
            raise BadRequest("version must be a version number", fields={"version": "bad"})
        if int(text) != int(now_version):
            raise Conflict(f"the agreement changed: the current version is {now_version}; read it again")
    now = utc_now()
    with db.transaction():
        for s in stores:
            db.execute("UPDATE stores SET agreement_version = ?, agreement_accepted_at = ? WHERE uuid = ?",
                       (int(now_version), now, s["uuid"]))
        audit.log(db, "agreement_accepted", user["uuid"], f"v{now_version}",
                  ",".join(s["storename"] for s in stores)[:255], ip=ip)
    return int(now_version)


def store_needs_acceptance(db, store_uuid):
    """The current version if the store has not accepted it, else None."""
    now_version = current_version(db)
    if now_version is None:
        return None
    accepted = db.value("SELECT agreement_version FROM stores WHERE uuid = ?", (store_uuid,))
    if accepted is not None and int(accepted) >= int(now_version):
        return None
    return int(now_version)


def require_accepted(db, store_uuid):
    """403 when the store's owner has not accepted the current agreement."""
    version = store_needs_acceptance(db, store_uuid)
    if version is not None:
        raise Forbidden(f"the vendorship agreement changed (version {version}): the store's owner must "
                             f"accept it at {PAGE} before the store creates new items")
