"""Signed webhooks.

- webhooks: an endpoint of a user (store_uuid NULL: events of orders the user buys or
  sells, and staff events for staff) or of a store (store_uuid set: events of the
  store's orders, managed by its members). The signing secret is kept as is (it must
  sign) and shown once, at creation. status active | failing (N consecutive failed
  attempts; the next success makes it active again); deleted endpoints keep their rows
  (deleted_at) so their delivery log stays readable.
- webhook_events: the outbox. One row per reported change, written in the database
  transaction of that change; `body` is the exact JSON sent (a redelivery sends the
  same bytes, so the same event id).
- webhook_deliveries: event x endpoint. status pending | delivered | failing;
  next_attempt_at is also the claim lease (a claimed row is pushed into the future, so
  a second worker cannot take it, and a crashed worker's claim runs out and the row is
  sent again). transaction_uuid keeps deliveries of one order in order.
- webhook_attempts: every attempt (time, status code, error, outcome).
"""

WEBHOOKS = """
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_user_uuid VARCHAR(36) NOT NULL,
    store_uuid VARCHAR(36) NULL,
    url VARCHAR(2048) NOT NULL,
    events VARCHAR(1024) NOT NULL,
    secret VARCHAR(80) NOT NULL,
    description VARCHAR(255) NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'active',
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_success_at VARCHAR(19) NULL,
    last_failure_at VARCHAR(19) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    deleted_at VARCHAR(19) NULL,
    FOREIGN KEY (owner_user_uuid) REFERENCES users (uuid)
);
CREATE INDEX IF NOT EXISTS idx_webhooks_owner ON webhooks (owner_user_uuid, id);
CREATE INDEX IF NOT EXISTS idx_webhooks_store ON webhooks (store_uuid, id);

CREATE TABLE IF NOT EXISTS webhook_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    type VARCHAR(64) NOT NULL,
    transaction_uuid VARCHAR(36) NULL,
    dispute_uuid VARCHAR(36) NULL,
    store_uuid VARCHAR(36) NULL,
    body TEXT NOT NULL,
    created_at VARCHAR(19) NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_webhook_events_tx ON webhook_events (transaction_uuid, id);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL,
    webhook_id INTEGER NOT NULL,
    transaction_uuid VARCHAR(36) NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at VARCHAR(19) NULL,
    claimed_by VARCHAR(80) NULL,
    last_status_code INTEGER NULL,
    last_error VARCHAR(255) NULL,
    delivered_at VARCHAR(19) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    UNIQUE (event_id, webhook_id),
    FOREIGN KEY (event_id) REFERENCES webhook_events (id),
    FOREIGN KEY (webhook_id) REFERENCES webhooks (id)
);
CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
CREATE INDEX IF NOT EXISTS idx_webhook_deliveries_order ON webhook_deliveries (webhook_id, transaction_uuid, id);

CREATE TABLE IF NOT EXISTS webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at VARCHAR(19) NOT NULL,
    duration_ms INTEGER NULL,
    status_code INTEGER NULL,
    error VARCHAR(255) NULL,
    outcome VARCHAR(16) NOT NULL,
    worker VARCHAR(80) NULL,
    FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id)
);
CREATE INDEX IF NOT EXISTS idx_webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
"""


def up(db):
    db.run_script(WEBHOOKS)
