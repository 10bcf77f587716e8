"""Email, when configured.

- users.email / email_verified_at: the user's verified address (NULL: none). A new
  address waits in email_tokens (purpose 'verify', with the address) until its link is
  opened; only then is it copied to users.email.
- users.email_off: the notification kinds the user turned off, comma-separated
  (order.paid, order.dispatched, order.released, dispute); empty: all on.
- email_tokens: single-use links (purpose verify | reset). Only SHA-256 of the token is
  stored; expires_at, used_at. Reset links live an hour.
- email_requests: one row per password-recovery request (IP, user if known, time):
  the rate limit counts them.
- email_outbox: mails to send, written in the transaction of the change; cron/email.py
  sends them (status pending | sent | failed) and blanks the body once sent.
"""
from lib.migrate import add_column

TABLES = """
CREATE TABLE IF NOT EXISTS email_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_uuid VARCHAR(36) NOT NULL,
    purpose VARCHAR(16) NOT NULL,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    email VARCHAR(254) NULL,
    created_at VARCHAR(19) NOT NULL,
    expires_at VARCHAR(19) NOT NULL,
    used_at VARCHAR(19) NULL,
    FOREIGN KEY (user_uuid) REFERENCES users (uuid)
);
CREATE INDEX IF NOT EXISTS idx_email_tokens_user ON email_tokens (user_uuid, purpose, id);

CREATE TABLE IF NOT EXISTS email_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ip VARCHAR(45) NULL,
    user_uuid VARCHAR(36) NULL,
    created_at VARCHAR(19) NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_email_requests_ip ON email_requests (ip, created_at);
CREATE INDEX IF NOT EXISTS idx_email_requests_user ON email_requests (user_uuid, created_at);

CREATE TABLE IF NOT EXISTS email_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_uuid VARCHAR(36) NULL,
    to_addr VARCHAR(254) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    body TEXT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at VARCHAR(19) NOT NULL,
    last_error VARCHAR(255) NULL,
    created_at VARCHAR(19) NOT NULL,
    sent_at VARCHAR(19) NULL
);
CREATE INDEX IF NOT EXISTS idx_email_outbox_due ON email_outbox (status, next_attempt_at);
"""


def up(db):
    add_column(db, "users", "email", "VARCHAR(254) NULL")
    add_column(db, "users", "email_verified_at", "VARCHAR(19) NULL")
    add_column(db, "users", "email_off", "VARCHAR(255) NULL")
    db.run_script(TABLES)
