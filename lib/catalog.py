"""Stores, items, packages and categories."""

DEFAULT_CATEGORIES = ("Digital goods", "Physical goods", "Services", "Other")


def seed_categories(db):
    """Insert the default item categories once (idempotent)."""
    for name in DEFAULT_CATEGORIES:
        if db.value("SELECT id FROM item_categories WHERE name = ?", (name,)) is None:
            db.insert("item_categories", {"name": name, "parent_id": None})
