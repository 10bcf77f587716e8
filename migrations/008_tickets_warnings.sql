-- Support tickets and store warnings.
-- support_tickets: one row per ticket (opener, subject, optional order, assigned staff member).
-- ticket_messages: the thread; staff_reply marks an answer by staff (not the opener).
-- ticket_statuses: append-only status history (open, answered, closed); the newest row is
--   the ticket's status, as transaction_statuses is an order's.
-- store_warnings: staff warnings shown on a store's page; retiring one keeps the row
--   (retired_at, retired_by) so the history stays.
CREATE TABLE IF NOT EXISTS support_tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    user_uuid VARCHAR(36) NOT NULL,
    subject VARCHAR(200) NOT NULL,
    transaction_uuid VARCHAR(36) NULL,
    assigned_to VARCHAR(36) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (user_uuid) REFERENCES users (uuid)
);
CREATE INDEX IF NOT EXISTS idx_support_tickets_user ON support_tickets (user_uuid, id);

CREATE TABLE IF NOT EXISTS ticket_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_uuid VARCHAR(36) NOT NULL,
    author_uuid VARCHAR(36) NOT NULL,
    staff_reply INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (ticket_uuid) REFERENCES support_tickets (uuid)
);
CREATE INDEX IF NOT EXISTS idx_ticket_messages_ticket ON ticket_messages (ticket_uuid, id);

CREATE TABLE IF NOT EXISTS ticket_statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_uuid VARCHAR(36) NOT NULL,
    status VARCHAR(16) NOT NULL,
    changed_by VARCHAR(36) NULL,
    comment VARCHAR(255) NULL,
    created_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (ticket_uuid) REFERENCES support_tickets (uuid)
);
CREATE INDEX IF NOT EXISTS idx_ticket_statuses_ticket ON ticket_statuses (ticket_uuid, id);

CREATE TABLE IF NOT EXISTS store_warnings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store_uuid VARCHAR(36) NOT NULL,
    reason TEXT NOT NULL,
    created_by VARCHAR(36) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    retired_at VARCHAR(19) NULL,
    retired_by VARCHAR(36) NULL,
    FOREIGN KEY (store_uuid) REFERENCES stores (uuid)
);
CREATE INDEX IF NOT EXISTS idx_store_warnings_store ON store_warnings (store_uuid, retired_at);
