"""Account recovery and two-factor login.

- recovery_codes: single-use codes of a user; only sha256 of each code is kept (the
  codes are 80 random bits, so a fast hash is enough); used_at marks a used code. A new
  set deletes the old one.
- password_reset_links: one-time links staff issue for a user; only sha256 of the token
  is kept; expires_at an hour after issue; used_at once the user set a password.
- users.totp_secret (base32, set while enrolling), totp_enabled (1 once confirmed with
  a first code), totp_last_counter (the last accepted time step: a code is single-use).
"""
from lib.migrate import add_column

TABLES = """
CREATE TABLE IF NOT EXISTS recovery_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_uuid VARCHAR(36) NOT NULL,
    code_hash VARCHAR(64) NOT NULL UNIQUE,
    created_at VARCHAR(19) NOT NULL,
    used_at VARCHAR(19) NULL,
    FOREIGN KEY (user_uuid) REFERENCES users (uuid)
);
CREATE INDEX IF NOT EXISTS idx_recovery_codes_user ON recovery_codes (user_uuid, id);

CREATE TABLE IF NOT EXISTS password_reset_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    user_uuid VARCHAR(36) NOT NULL,
    issued_by VARCHAR(36) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    expires_at VARCHAR(19) NOT NULL,
    used_at VARCHAR(19) NULL,
    FOREIGN KEY (user_uuid) REFERENCES users (uuid)
);
CREATE INDEX IF NOT EXISTS idx_password_reset_links_user ON password_reset_links (user_uuid, id);
"""


def up(db):
    db.run_script(TABLES)
    add_column(db, "users", "totp_secret", "VARCHAR(64) NULL")
    add_column(db, "users", "totp_enabled", "INTEGER NOT NULL DEFAULT 0")
    add_column(db, "users", "totp_last_counter", "BIGINT NULL")
