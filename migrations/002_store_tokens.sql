-- A store may choose which of the accepted tokens it takes.
-- No row for a store: it takes every accepted token (as before this migration).
-- Tokens are named by chain and symbol (accepted_tokens is UNIQUE on both), so a
-- token an admin removes and adds again keeps the stores' choices.
CREATE TABLE IF NOT EXISTS store_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store_uuid VARCHAR(36) NOT NULL,
    chain_id INTEGER NOT NULL,
    symbol VARCHAR(16) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    UNIQUE (store_uuid, chain_id, symbol),
    FOREIGN KEY (store_uuid) REFERENCES stores (uuid) ON DELETE CASCADE
);
