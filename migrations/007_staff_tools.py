"""Staff tools and the vendor bond.

- users.can_sell: an admin lets a user open stores or not (the original's "grant
  seller"); 1 by default, so every existing user keeps the right they had.
- vendor_agreements: the vendorship agreement, one row per version (an admin's edit is a
  new row; the newest is the current text).
- stores.agreement_version: the agreement version the store's owner last accepted
  (NULL: none since versioning began; such a store accepts before creating new items
  once an agreement exists).
"""
from lib.migrate import add_column

AGREEMENTS = """
CREATE TABLE IF NOT EXISTS vendor_agreements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version INTEGER NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_by VARCHAR(36) NULL,
    created_at VARCHAR(19) NOT NULL
);
"""


def up(db):
    add_column(db, "users", "can_sell", "INTEGER NOT NULL DEFAULT 1")
    add_column(db, "stores", "agreement_version", "INTEGER NULL")
    add_column(db, "stores", "agreement_accepted_at", "VARCHAR(19) NULL")
    db.run_script(AGREEMENTS)
