"""Messages, blocks and in-app notifications.

- message_threads: a private conversation between two users (kind 'private': user_a <
  user_b, the two uuids sorted, so a pair has one thread) or an order's thread (kind
  'order': transaction_uuid set) between its buyer and the store's members (and staff
  while it is disputed). last_message_id and updated_at order the conversation list.
- messages: the thread's messages, append-only.
- message_reads: how far each reader has read a thread (the highest message id seen);
  unread = messages after it written by someone else.
- user_blocks: blocker_uuid refuses private messages from blocked_uuid.
- notifications: the in-app list; read_at NULL is unread (the navigation counts those on
  idx_notifications_unread).
"""

TABLES = """
CREATE TABLE IF NOT EXISTS message_threads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    kind VARCHAR(8) NOT NULL,
    user_a VARCHAR(36) NULL,
    user_b VARCHAR(36) NULL,
    transaction_uuid VARCHAR(36) NULL,
    last_message_id INTEGER NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    UNIQUE (user_a, user_b),
    UNIQUE (transaction_uuid)
);
CREATE INDEX IF NOT EXISTS idx_message_threads_a ON message_threads (user_a, updated_at);
CREATE INDEX IF NOT EXISTS idx_message_threads_b ON message_threads (user_b, updated_at);

CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id INTEGER NOT NULL,
    sender_uuid VARCHAR(36) NOT NULL,
    body TEXT NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (thread_id) REFERENCES message_threads (id)
);
CREATE INDEX IF NOT EXISTS idx_messages_thread ON messages (thread_id, id);

CREATE TABLE IF NOT EXISTS message_reads (
    thread_id INTEGER NOT NULL,
    user_uuid VARCHAR(36) NOT NULL,
    last_read_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, user_uuid)
);

CREATE TABLE IF NOT EXISTS user_blocks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    blocker_uuid VARCHAR(36) NOT NULL,
    blocked_uuid VARCHAR(36) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    UNIQUE (blocker_uuid, blocked_uuid)
);

CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_uuid VARCHAR(36) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    text VARCHAR(255) NOT NULL,
    link VARCHAR(255) NULL,
    created_at VARCHAR(19) NOT NULL,
    read_at VARCHAR(19) NULL
);
CREATE INDEX IF NOT EXISTS idx_notifications_unread ON notifications (user_uuid, read_at);
CREATE INDEX IF NOT EXISTS idx_notifications_user ON notifications (user_uuid, id);
"""


def up(db):
    db.run_script(TABLES)
