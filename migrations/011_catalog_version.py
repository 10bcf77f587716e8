"""The catalog version: one row whose `version` every write to what the public
catalog pages show increments in its own transaction (lib/catalog_cache.py). A web
process keeps a rendered page only while the version it was rendered at is current.
The indexes on the time stamps cron writes let the same read follow those tables."""

TABLE = """
CREATE TABLE IF NOT EXISTS catalog_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_prices_fetched ON prices (fetched_at);
CREATE INDEX IF NOT EXISTS idx_accepted_tokens_updated ON accepted_tokens (updated_at);
CREATE INDEX IF NOT EXISTS idx_deposits_updated ON deposits (updated_at)
"""


def up(db):
    from lib import catalog_cache
    db.run_script(TABLE)
    catalog_cache.ensure_version_row(db)
