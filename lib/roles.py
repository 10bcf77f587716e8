"""Who is staff: the one check of a user's role that every module asks (a user dict or None)."""

STAFF_ROLES = ("staff", "admin")


def is_staff(user):
    return bool(user) and user.get("role") in STAFF_ROLES


def is_admin(user):
    return bool(user) and user.get("role") == "admin"
