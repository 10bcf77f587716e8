-- Database leases for cron (cron/leases.py): one row per duty and chain (chain_id 0 for
-- the duties that are not bound to a chain). A host holds a lease while `expires_at`
-- (seconds since the epoch on the database's clock) is in the future and renews it
-- while its run works; a host that dies loses it when the time passes. `token` is new
-- at every acquisition, so a renewal or release by a host that lost the lease changes
-- nothing.
CREATE TABLE IF NOT EXISTS cron_leases (
    duty VARCHAR(32) NOT NULL,
    chain_id INTEGER NOT NULL,
    holder VARCHAR(128) NOT NULL,
    token VARCHAR(32) NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    renewals INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (duty, chain_id)
);
