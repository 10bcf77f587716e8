"""Store warnings: staff warn buyers about a store, with a reason.

Active warnings show on the store's page and in its JSON (/api/stores.php?uuid=). Staff
retire a warning when it no longer applies: the row stays (retired_at, retired_by), so
what was shown and when is kept. Adding and retiring are audited.
"""
from lib import audit, catalog, catalog_cache
from lib.db import utc_now
from lib.http import BadRequest, Conflict, NotFound, parse_id

REASON_MAX = 2000
_COLUMNS = ("w.id, w.store_uuid, s.storename, w.reason, w.created_at, c.username AS created_by_username, "
            "w.retired_at, r.username AS retired_by_username")
_FROM = ("FROM store_warnings w JOIN stores s ON s.uuid = w.store_uuid "
         "LEFT JOIN users c ON c.uuid = w.created_by LEFT JOIN users r ON r.uuid = w.retired_by")


def _store(db, value):
    """A store by uuid or name (staff see suspended ones too); 400 naming `store` when
    missing or too long, 404 when no store has that name."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("store is required (a store's uuid or name)", fields={"store": "required"})
    value = value.strip()
    if len(value) > 64:
        raise BadRequest("store must be a store's uuid or name", fields={"store": "unknown store"})
    row = db.one("SELECT uuid, storename FROM stores WHERE uuid = ? OR storename_lower = ?", (value, value.lower()))
    if row is None:
        raise NotFound("no such store", fields={"store": "unknown store"})
    return row


def add(db, user, store, reason, ip=None):
    """Staff add a warning to a store (`store`: uuid or name). Returns the warning."""
    catalog.require_staff(user)
    row = _store(db, store)
    reason = catalog.text(reason, "reason", REASON_MAX, required=True)
    with db.transaction():
        warning_id = db.insert("store_warnings", {"store_uuid": row["uuid"], "reason": reason,
                                                  "created_by": user["uuid"], "created_at": utc_now(),
                                                  "retired_at": None, "retired_by": None})
        audit.log(db, "store_warning_added", user["uuid"], row["uuid"], reason[:200], ip)
        catalog_cache.changed(db)        # the store page shows its warnings
    return get(db, warning_id)


def retire(db, user, warning_id, ip=None):
    """Staff retire a warning: it is no longer shown. 404 unknown, 409 retired already."""
    catalog.require_staff(user)
    warning_id = parse_id(warning_id, "id")
    row = get(db, warning_id)
    with db.transaction():
        if db.execute("UPDATE store_warnings SET retired_at = ?, retired_by = ? WHERE id = ? AND retired_at IS NULL",
                      (utc_now(), user["uuid"], warning_id)) != 1:
            raise Conflict("this warning is retired already")
        audit.log(db, "store_warning_retired", user["uuid"], row["store_uuid"], f"warning {warning_id}", ip)
        catalog_cache.changed(db)
    return get(db, warning_id)


def get(db, warning_id):
    row = db.one(f"SELECT {_COLUMNS} {_FROM} WHERE w.id = ?", (int(warning_id),))
    if row is None:
        raise NotFound("no such warning")
    return row


def active(db, store_uuid):
    """The store's active warnings, newest first, as the public sees them."""
    return db.query("SELECT id, reason, created_at FROM store_warnings WHERE store_uuid = ? AND retired_at IS NULL "
                    "ORDER BY id DESC", (store_uuid,))


def list_all(db, include_retired=False, limit=50, offset=0):
    where = "" if include_retired else " WHERE w.retired_at IS NULL"
    return db.query(f"SELECT {_COLUMNS} {_FROM}{where} ORDER BY w.id DESC LIMIT ? OFFSET ?",
                    (int(limit), int(offset)))
