"""Scoped API keys and agent identities.

api_keys:
- `scopes`: comma-separated read, orders, store, full (lib/scopes.py). Keys made before
  this migration get 'full', today's behaviour.
- `store_uuid`: the one store a `store`-scoped key may manage (NULL: every store of its user).
- `agent_id`: set on the key row that stands for an agent verified by X-Agent-Identity
  (lib/agent_identity.py). That row is never shown nor usable as a key (its hash is of a
  discarded random value); it gives the agent the API key rate limiter of its own.
"""
from lib.migrate import add_column


def up(db):
    add_column(db, "api_keys", "scopes", "VARCHAR(64) NOT NULL DEFAULT 'full'")
    add_column(db, "api_keys", "store_uuid", "VARCHAR(36) NULL")
    add_column(db, "api_keys", "agent_id", "VARCHAR(128) NULL")
    db.run_script("CREATE UNIQUE INDEX IF NOT EXISTS idx_api_keys_agent ON api_keys (agent_id);")
