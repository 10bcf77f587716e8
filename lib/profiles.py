"""Public profiles (/user.php?username=): what anyone may know about a user.

Only the username, the date they joined, the stores they belong to (not suspended) with
their ratings, and the visible reviews those stores received. Never an address, an
email, an order, a role or a ban reason. A banned or unknown user has no profile (404).
"""
from lib import catalog, reviews, users
from lib.http import NotFound


def profile(db, username, viewer=None):
    user = users.by_username(db, username) if isinstance(username, str) else None
    if user is None or user["banned"]:
        raise NotFound("no such user")
    joined = db.value("SELECT created_at FROM users WHERE uuid = ?", (user["uuid"],))
    stores = db.query("SELECT s.uuid, s.storename, s.created_at FROM store_users su "
                      "JOIN stores s ON s.uuid = su.store_uuid WHERE su.user_uuid = ? AND s.suspended = 0 "
                      "ORDER BY s.id", (user["uuid"],))
    stores = reviews.add_ratings(db, [dict(s) for s in stores], column="store_uuid")
    received = reviews.list_reviews(db, None, store_uuids=[s["uuid"] for s in stores], limit=50)
    return {"username": user["username"], "joined": joined[:10], "stores": stores, "reviews": received,
            "is_me": viewer is not None and viewer["uuid"] == user["uuid"],
            "can_hide": catalog.is_staff(viewer)}
