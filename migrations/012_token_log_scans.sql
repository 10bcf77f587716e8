-- Where cron's scan of ERC-20 Transfer logs has reached, per chain and token (cron/tasks.py,
-- poll_pending): the newest block scanned and its hash. A hash that no longer matches the
-- chain's block of that number means a reorganisation reached the scanned blocks, and the
-- scan goes back over them.
CREATE TABLE IF NOT EXISTS token_log_scans (
    chain_id INTEGER NOT NULL,
    token_contract VARCHAR(42) NOT NULL,
    scanned_block BIGINT NOT NULL,
    scanned_hash VARCHAR(66) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    PRIMARY KEY (chain_id, token_contract)
);
