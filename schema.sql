-- The portable schema: runs on SQLite and MariaDB 10.11 (Db.schema_statements
-- turns AUTOINCREMENT into AUTO_INCREMENT and adds InnoDB/utf8mb4_bin on MariaDB).
-- Conventions:
--   times are UTC TEXT 'YYYY-MM-DD HH:MM:SS' (VARCHAR(19));
--   amounts are integers of token base units stored as decimal strings (VARCHAR(80)),
--   USD prices are decimal strings: never floats, never REAL columns;
--   *_lower columns make names unique case-insensitively on both databases;
--   open_key columns hold the order/deposit uuid while an intent is open and NULL
--   after, so a UNIQUE index allows at most one open intent (NULLs never collide).
-- Append-only: transaction_statuses, shipping_statuses, deposit_history, audit_log.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name VARCHAR(128) NOT NULL,
    applied_at VARCHAR(19) NOT NULL
);

CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    username VARCHAR(16) NOT NULL,
    username_lower VARCHAR(16) NOT NULL UNIQUE,
    password_hash VARCHAR(255) NOT NULL,
    role VARCHAR(16) NOT NULL DEFAULT 'customer',
    banned INTEGER NOT NULL DEFAULT 0,
    inviter_uuid VARCHAR(36) NULL,
    refund_address VARCHAR(42) NULL,
    payout_address VARCHAR(42) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_users_inviter ON users (inviter_uuid);

CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    user_uuid VARCHAR(36) NOT NULL,
    csrf_secret VARCHAR(64) NOT NULL,
    flash TEXT NULL,
    ip VARCHAR(45) NULL,
    user_agent VARCHAR(255) NULL,
    created_at VARCHAR(19) NOT NULL,
    last_seen_at VARCHAR(19) NOT NULL,
    expires_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (user_uuid) REFERENCES users (uuid) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_sessions_user ON sessions (user_uuid);
CREATE INDEX IF NOT EXISTS idx_sessions_expires ON sessions (expires_at);

CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_uuid VARCHAR(36) NOT NULL,
    name VARCHAR(64) NOT NULL,
    key_hash VARCHAR(64) NOT NULL UNIQUE,
    key_prefix VARCHAR(8) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    last_used_at VARCHAR(19) NULL,
    revoked_at VARCHAR(19) NULL,
    FOREIGN KEY (user_uuid) REFERENCES users (uuid) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_api_keys_user ON api_keys (user_uuid);

-- Unused and empty: the rate limit is kept in api_keys.request_times (migration 014,
-- lib/api_keys.py). The table stays because SPEC section 5 lists it.
CREATE TABLE IF NOT EXISTS api_key_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    api_key_id INTEGER NOT NULL,
    requested_ms BIGINT NOT NULL,
    FOREIGN KEY (api_key_id) REFERENCES api_keys (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_api_key_requests_key_time ON api_key_requests (api_key_id, requested_ms);

-- Failed logins and registrations, counted per IP and per username.
CREATE TABLE IF NOT EXISTS login_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind VARCHAR(16) NOT NULL,
    ip VARCHAR(45) NOT NULL,
    username_lower VARCHAR(64) NOT NULL,
    success INTEGER NOT NULL DEFAULT 0,
    attempted_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_login_attempts_ip ON login_attempts (kind, ip, attempted_ms);
CREATE INDEX IF NOT EXISTS idx_login_attempts_user ON login_attempts (kind, username_lower, attempted_ms);

CREATE TABLE IF NOT EXISTS stores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    storename VARCHAR(16) NOT NULL,
    storename_lower VARCHAR(16) NOT NULL UNIQUE,
    description TEXT NULL,
    tier VARCHAR(8) NOT NULL DEFAULT 'free',
    payout_address VARCHAR(42) NULL,
    suspended INTEGER NOT NULL DEFAULT 0,
    vendorship_agreed_at VARCHAR(19) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
);

CREATE TABLE IF NOT EXISTS store_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store_uuid VARCHAR(36) NOT NULL,
    user_uuid VARCHAR(36) NOT NULL,
    role VARCHAR(16) NOT NULL DEFAULT 'owner',
    created_at VARCHAR(19) NOT NULL,
    UNIQUE (store_uuid, user_uuid),
    FOREIGN KEY (store_uuid) REFERENCES stores (uuid),
    FOREIGN KEY (user_uuid) REFERENCES users (uuid)
);
CREATE INDEX IF NOT EXISTS idx_store_users_user ON store_users (user_uuid);

CREATE TABLE IF NOT EXISTS item_categories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(64) NOT NULL UNIQUE,
    parent_id INTEGER NULL
);

CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    store_uuid VARCHAR(36) NOT NULL,
    name VARCHAR(64) NOT NULL,
    description TEXT NULL,
    category_id INTEGER NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (store_uuid) REFERENCES stores (uuid),
    FOREIGN KEY (category_id) REFERENCES item_categories (id)
);
CREATE INDEX IF NOT EXISTS idx_items_store ON items (store_uuid, id);
CREATE INDEX IF NOT EXISTS idx_items_category ON items (category_id, id);

CREATE TABLE IF NOT EXISTS packages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    item_uuid VARCHAR(36) NOT NULL,
    name VARCHAR(64) NOT NULL,
    description TEXT NULL,
    price_usd VARCHAR(32) NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (item_uuid) REFERENCES items (uuid)
);
CREATE INDEX IF NOT EXISTS idx_packages_item ON packages (item_uuid, id);

-- History of a package's USD price (one row per change; the newest is packages.price_usd).
CREATE TABLE IF NOT EXISTS package_prices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    package_uuid VARCHAR(36) NOT NULL,
    price_usd VARCHAR(32) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (package_uuid) REFERENCES packages (uuid)
);
CREATE INDEX IF NOT EXISTS idx_package_prices_package ON package_prices (package_uuid, id);

-- Tokens buyers may pay with. contract_address '' is the chain's native coin.
-- status: unverified (just added) -> active | rejected (cron verifies on chain).
CREATE TABLE IF NOT EXISTS accepted_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id INTEGER NOT NULL,
    symbol VARCHAR(16) NOT NULL,
    contract_address VARCHAR(42) NOT NULL DEFAULT '',
    decimals INTEGER NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'unverified',
    status_reason VARCHAR(255) NULL,
    manual_usd_price VARCHAR(32) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    UNIQUE (chain_id, contract_address),
    UNIQUE (chain_id, symbol)
);

-- USD rates filled by cron (one row per token; upserted).
CREATE TABLE IF NOT EXISTS prices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chain_id INTEGER NOT NULL,
    symbol VARCHAR(16) NOT NULL,
    contract_address VARCHAR(42) NOT NULL DEFAULT '',
    usd_price VARCHAR(40) NOT NULL,
    fetched_at VARCHAR(19) NOT NULL,
    UNIQUE (chain_id, symbol)
);

CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    type VARCHAR(8) NOT NULL DEFAULT 'evm',
    description VARCHAR(255) NULL,
    package_uuid VARCHAR(36) NOT NULL,
    store_uuid VARCHAR(36) NOT NULL,
    buyer_uuid VARCHAR(36) NOT NULL,
    price_usd VARCHAR(32) NOT NULL,
    dispute_uuid VARCHAR(36) NULL,
    buyer_confirmed_at VARCHAR(19) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (package_uuid) REFERENCES packages (uuid),
    FOREIGN KEY (store_uuid) REFERENCES stores (uuid),
    FOREIGN KEY (buyer_uuid) REFERENCES users (uuid)
);
CREATE INDEX IF NOT EXISTS idx_transactions_buyer ON transactions (buyer_uuid, id);
CREATE INDEX IF NOT EXISTS idx_transactions_store ON transactions (store_uuid, id);

-- The chain side of an order. escrow_address stays NULL until cron derives it.
-- closed_at is an index of the append-only status log, not a second source of truth:
-- lib/status_machine.append_status (the single writer of statuses) sets it, in the same
-- transaction, when it appends a final status (RELEASED, FAILED, CANCELLED); nothing else
-- writes it. NULL = the order is open. idx_evm_transactions_open lets cron select the open
-- orders without computing the current status of every order ever made.
CREATE TABLE IF NOT EXISTS evm_transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_uuid VARCHAR(36) NOT NULL UNIQUE,
    chain_id INTEGER NOT NULL,
    currency VARCHAR(16) NOT NULL,
    token_contract VARCHAR(42) NOT NULL DEFAULT '',
    decimals INTEGER NOT NULL,
    required_amount VARCHAR(80) NOT NULL,
    received_amount VARCHAR(80) NOT NULL DEFAULT '0',
    usd_rate VARCHAR(40) NOT NULL,
    refund_address VARCHAR(42) NULL,
    escrow_address VARCHAR(42) NULL UNIQUE,
    derivation_index BIGINT NULL UNIQUE,
    created_at VARCHAR(19) NOT NULL,
    closed_at VARCHAR(19) NULL,
    FOREIGN KEY (transaction_uuid) REFERENCES transactions (uuid)
);
CREATE INDEX IF NOT EXISTS idx_evm_transactions_chain ON evm_transactions (chain_id, escrow_address);
CREATE INDEX IF NOT EXISTS idx_evm_transactions_open ON evm_transactions (closed_at, chain_id);

-- Append-only payment status log; the current status is the row with the highest id.
CREATE TABLE IF NOT EXISTS transaction_statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_uuid VARCHAR(36) NOT NULL,
    time VARCHAR(19) NOT NULL,
    amount VARCHAR(80) NOT NULL DEFAULT '0',
    status VARCHAR(16) NOT NULL,
    comment VARCHAR(255) NULL,
    payment_receipt_uuid VARCHAR(66) NULL,
    FOREIGN KEY (transaction_uuid) REFERENCES transactions (uuid)
);
CREATE INDEX IF NOT EXISTS idx_transaction_statuses_tx ON transaction_statuses (transaction_uuid, id);
CREATE INDEX IF NOT EXISTS idx_transaction_statuses_status ON transaction_statuses (status, id);

-- Append-only shipping log: DISPATCH PENDING -> DISPATCHED.
CREATE TABLE IF NOT EXISTS shipping_statuses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_uuid VARCHAR(36) NOT NULL,
    time VARCHAR(19) NOT NULL,
    status VARCHAR(20) NOT NULL,
    comment VARCHAR(255) NULL,
    user_uuid VARCHAR(36) NULL,
    FOREIGN KEY (transaction_uuid) REFERENCES transactions (uuid)
);
CREATE INDEX IF NOT EXISTS idx_shipping_statuses_tx ON shipping_statuses (transaction_uuid, id);

-- Requests for the cron layer to move an escrow's funds.
-- action: RELEASE | CANCEL | PARTIAL_REFUND; status: pending -> processing -> completed | failed.
CREATE TABLE IF NOT EXISTS transaction_intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    transaction_uuid VARCHAR(36) NOT NULL,
    action VARCHAR(16) NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending',
    open_key VARCHAR(36) NULL UNIQUE,
    refund_percent INTEGER NULL,
    requested_by VARCHAR(36) NULL,
    error VARCHAR(255) NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by VARCHAR(64) NULL,
    claimed_at VARCHAR(19) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (transaction_uuid) REFERENCES transactions (uuid)
);
CREATE INDEX IF NOT EXISTS idx_transaction_intents_tx ON transaction_intents (transaction_uuid, id);
CREATE INDEX IF NOT EXISTS idx_transaction_intents_status ON transaction_intents (status, id);

-- Every signed chain transaction (a payout leg, a gas top-up or a withdrawal).
-- The raw signed bytes are committed before broadcast, so a crash re-sends the
-- same bytes. status: signed -> broadcast -> confirmed | failed.
CREATE TABLE IF NOT EXISTS payouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    intent_uuid VARCHAR(36) NULL,
    transaction_uuid VARCHAR(36) NULL,
    deposit_uuid VARCHAR(36) NULL,
    kind VARCHAR(16) NOT NULL,
    recipient_role VARCHAR(16) NOT NULL,
    chain_id INTEGER NOT NULL,
    currency VARCHAR(16) NOT NULL,
    token_contract VARCHAR(42) NOT NULL DEFAULT '',
    from_address VARCHAR(42) NOT NULL,
    to_address VARCHAR(42) NOT NULL,
    amount VARCHAR(80) NOT NULL,
    fee VARCHAR(80) NULL,
    nonce BIGINT NOT NULL,
    tx_hash VARCHAR(66) NOT NULL UNIQUE,
    raw_tx TEXT NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'signed',
    block_number BIGINT NULL,
    error VARCHAR(255) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    UNIQUE (chain_id, from_address, nonce)
);
CREATE INDEX IF NOT EXISTS idx_payouts_intent ON payouts (intent_uuid, id);
CREATE INDEX IF NOT EXISTS idx_payouts_tx ON payouts (transaction_uuid, id);
CREATE INDEX IF NOT EXISTS idx_payouts_status ON payouts (status, id);

-- A confirmed payout: uuid is the chain transaction hash.
CREATE TABLE IF NOT EXISTS payment_receipts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(66) NOT NULL UNIQUE,
    transaction_uuid VARCHAR(36) NULL,
    deposit_uuid VARCHAR(36) NULL,
    chain_id INTEGER NOT NULL,
    to_address VARCHAR(42) NOT NULL,
    amount VARCHAR(80) NOT NULL,
    currency VARCHAR(16) NOT NULL,
    block_number BIGINT NULL,
    created_at VARCHAR(19) NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_payment_receipts_tx ON payment_receipts (transaction_uuid, id);

CREATE TABLE IF NOT EXISTS referral_payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_uuid VARCHAR(36) NOT NULL,
    referrer_uuid VARCHAR(36) NOT NULL,
    amount VARCHAR(80) NOT NULL,
    currency VARCHAR(16) NOT NULL,
    chain_id INTEGER NOT NULL,
    payment_receipt_uuid VARCHAR(66) NOT NULL UNIQUE,
    created_at VARCHAR(19) NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_referral_payments_referrer ON referral_payments (referrer_uuid, id);

CREATE TABLE IF NOT EXISTS disputes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    transaction_uuid VARCHAR(36) NOT NULL,
    opened_by VARCHAR(36) NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'open',
    resolution VARCHAR(16) NULL,
    refund_percent INTEGER NULL,
    resolved_by VARCHAR(36) NULL,
    created_at VARCHAR(19) NOT NULL,
    resolved_at VARCHAR(19) NULL,
    FOREIGN KEY (transaction_uuid) REFERENCES transactions (uuid)
);
CREATE INDEX IF NOT EXISTS idx_disputes_tx ON disputes (transaction_uuid, id);
CREATE INDEX IF NOT EXISTS idx_disputes_status ON disputes (status, id);

CREATE TABLE IF NOT EXISTS dispute_claims (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dispute_uuid VARCHAR(36) NOT NULL,
    user_uuid VARCHAR(36) NOT NULL,
    claim TEXT NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (dispute_uuid) REFERENCES disputes (uuid)
);
CREATE INDEX IF NOT EXISTS idx_dispute_claims_dispute ON dispute_claims (dispute_uuid, id);

-- A store's deposit address (branch m/44'/60'/0'/1/i); address NULL until cron derives it.
CREATE TABLE IF NOT EXISTS deposits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    store_uuid VARCHAR(36) NOT NULL,
    chain_id INTEGER NOT NULL,
    currency VARCHAR(16) NOT NULL,
    token_contract VARCHAR(42) NOT NULL DEFAULT '',
    decimals INTEGER NOT NULL,
    address VARCHAR(42) NULL UNIQUE,
    derivation_index BIGINT NULL UNIQUE,
    balance VARCHAR(80) NOT NULL DEFAULT '0',
    created_by VARCHAR(36) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (store_uuid) REFERENCES stores (uuid)
);
CREATE INDEX IF NOT EXISTS idx_deposits_store ON deposits (store_uuid, id);

-- Append-only deposit log: address assigned, balance seen, withdrawn.
CREATE TABLE IF NOT EXISTS deposit_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deposit_uuid VARCHAR(36) NOT NULL,
    time VARCHAR(19) NOT NULL,
    event VARCHAR(16) NOT NULL,
    balance VARCHAR(80) NOT NULL DEFAULT '0',
    comment VARCHAR(255) NULL,
    FOREIGN KEY (deposit_uuid) REFERENCES deposits (uuid)
);
CREATE INDEX IF NOT EXISTS idx_deposit_history_deposit ON deposit_history (deposit_uuid, id);

CREATE TABLE IF NOT EXISTS deposit_withdraw_intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid VARCHAR(36) NOT NULL UNIQUE,
    deposit_uuid VARCHAR(36) NOT NULL,
    to_address VARCHAR(42) NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'pending',
    open_key VARCHAR(36) NULL UNIQUE,
    requested_by VARCHAR(36) NULL,
    error VARCHAR(255) NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by VARCHAR(64) NULL,
    claimed_at VARCHAR(19) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (deposit_uuid) REFERENCES deposits (uuid)
);
CREATE INDEX IF NOT EXISTS idx_deposit_withdraw_intents_status ON deposit_withdraw_intents (status, id);

-- Funds found where staff must decide (late payment with no refund address ...).
CREATE TABLE IF NOT EXISTS staff_flags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_uuid VARCHAR(36) NULL,
    reason VARCHAR(255) NOT NULL,
    amount VARCHAR(80) NULL,
    created_at VARCHAR(19) NOT NULL,
    resolved_at VARCHAR(19) NULL
);
CREATE INDEX IF NOT EXISTS idx_staff_flags_open ON staff_flags (resolved_at, id);

CREATE TABLE IF NOT EXISTS config (
    name VARCHAR(64) PRIMARY KEY,
    value VARCHAR(255) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
);

CREATE TABLE IF NOT EXISTS cron_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at VARCHAR(19) NOT NULL,
    finished_at VARCHAR(19) NULL,
    duration_ms INTEGER NULL,
    ok INTEGER NOT NULL DEFAULT 0,
    summary TEXT NULL,
    errors TEXT NULL
);

-- The newest block each chain's provider reported to cron (shown by /health).
CREATE TABLE IF NOT EXISTS chain_heads (
    chain_id INTEGER PRIMARY KEY,
    block_number BIGINT NOT NULL,
    seen_at VARCHAR(19) NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time VARCHAR(19) NOT NULL,
    user_uuid VARCHAR(36) NULL,
    action VARCHAR(32) NOT NULL,
    target VARCHAR(128) NULL,
    detail VARCHAR(255) NULL,
    ip VARCHAR(45) NULL
);
CREATE INDEX IF NOT EXISTS idx_audit_log_action ON audit_log (action, id);

-- Current payment status per order: the status row with the highest id. The
-- correlated MAX(id) uses idx_transaction_statuses_tx, so a lookup of one order or
-- a page of orders never scans the whole status table. An order that cron has
-- not yet given an escrow address has no status row and counts as PENDING.
-- Filtering these views on current_status computes it for every order ever made (seconds
-- at 1,000,000 orders); selections of open orders (cron) start instead from
-- evm_transactions.closed_at IS NULL (idx_evm_transactions_open), which append_status
-- sets when it appends a final status, and compute the current status only for those.
CREATE VIEW IF NOT EXISTS v_current_transaction_statuses AS
SELECT t.uuid AS transaction_uuid,
       COALESCE(s.status, 'PENDING') AS current_status,
       COALESCE(s.amount, '0') AS current_amount,
       s.id AS status_id,
       COALESCE(s.time, t.created_at) AS updated_at
FROM transactions t
LEFT JOIN transaction_statuses s
  ON s.id = (SELECT MAX(s2.id) FROM transaction_statuses s2 WHERE s2.transaction_uuid = t.uuid);

CREATE VIEW IF NOT EXISTS v_current_evm_transaction_statuses AS
SELECT t.uuid AS transaction_uuid,
       COALESCE(s.status, 'PENDING') AS current_status,
       COALESCE(s.amount, '0') AS current_amount,
       s.id AS status_id,
       COALESCE(s.time, t.created_at) AS updated_at,
       e.chain_id, e.currency, e.token_contract, e.decimals, e.required_amount,
       e.received_amount, e.escrow_address, e.derivation_index, e.refund_address
FROM transactions t
JOIN evm_transactions e ON e.transaction_uuid = t.uuid
LEFT JOIN transaction_statuses s
  ON s.id = (SELECT MAX(s2.id) FROM transaction_statuses s2 WHERE s2.transaction_uuid = t.uuid);
