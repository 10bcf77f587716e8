"""API keys and their rate limit.

A key is 64 hex characters, shown once at creation; the table keeps its SHA-256
(keys are 256 random bits, so a plain hash is enough) and the first 8
characters (`key_prefix`) for display. Revoked keys stop working at once: every
request looks the key up.

Scopes (lib/scopes.py): a key has `scopes` (read, orders, store, full; default
full, also for keys made before scopes existed) and optionally `store_uuid`, one of its
user's stores the store scope is limited to. A row with `agent_id` stands for an agent
identity (lib/agent_identity.py): it is not a usable key, not listed and not revocable here.

Rate limit: RATE_LIMIT requests per rolling RATE_WINDOW_MS per key, exact under
concurrency. Each request runs one transaction of three statements: it locks the
key's row by setting its last_used_at (MariaDB's row lock; SQLite's BEGIN IMMEDIATE
serializes writers), counts the key's api_key_requests rows inside the window (one
index range) and inserts one only when below the limit; otherwise 429 with
Retry-After. Refused requests are not counted. The key's rows older than the window
are deleted in the same transaction when there are any, so the table holds at most
RATE_LIMIT rows per key (plus those of idle keys, pruned now and then).
"""
import hashlib
import random
import re
import secrets
import time

from lib import audit, scopes, users
from lib.db import utc_now
from lib.http import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unauthorized

RATE_LIMIT = 60
RATE_WINDOW_MS = 60 * 1000
KEYS_PER_USER = 25
NAME_MAX = 64
KEY_RE = re.compile(r"[0-9a-fA-F]{64}")
LIST_FIELDS = ("id", "name", "key_prefix", "created_at", "last_used_at", "scopes", "store_uuid")


def key_hash(key):
    return hashlib.sha256(key.lower().encode("ascii")).hexdigest()


def validate_name(name):
    if not isinstance(name, str) or name.strip() == "":
        raise BadRequest("name is required", fields={"name": "required"})
    name = name.strip()
    if len(name) > NAME_MAX:
        raise BadRequest(f"name is longer than {NAME_MAX} characters",
                        fields={"name": f"at most {NAME_MAX} characters"})
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BadRequest("name must not contain control characters", fields={"name": "control characters"})
    return name


def validate_store(db, user_uuid, key_scopes, store_uuid):
    """The store a `store`-scoped key is limited to (None: not limited). 400 without the
    store scope, 404 unknown store, 403 a store the user is not a member of."""
    if store_uuid is None or store_uuid == "":
        return None
    if not isinstance(store_uuid, str) or len(store_uuid) > 36:
        raise BadRequest("store_uuid must be a store's uuid", fields={"store_uuid": "uuid"})
    if scopes.STORE not in key_scopes:
        raise BadRequest("store_uuid limits the 'store' scope: give scopes including store (not full)",
                        fields={"store_uuid": "needs the store scope"})
    if db.value("SELECT 1 FROM stores WHERE uuid = ?", (store_uuid,)) is None:
        raise NotFound("no such store")
    if db.value("SELECT 1 FROM store_users WHERE store_uuid = ? AND user_uuid = ?",
                (store_uuid, user_uuid)) is None:
        raise Forbidden("you are not a member of this store")
    return store_uuid


def create_key(db, user_uuid, name, ip=None, key_scopes=None, store_uuid=None):
    """Create a key; return (plaintext_key, row dict). The plaintext is never stored.
    `key_scopes`: a list or comma-separated string of lib.scopes names (default full);
    `store_uuid`: limit the store scope to one of the user's stores."""
    name = validate_name(name)
    granted = scopes.parse(key_scopes)
    store_uuid = validate_store(db, user_uuid, granted, store_uuid)
    key = secrets.token_hex(32)
    row = {"user_uuid": user_uuid, "name": name, "key_hash": key_hash(key),
           "key_prefix": key[:8], "created_at": utc_now(), "last_used_at": None, "revoked_at": None,
           "scopes": scopes.to_text(granted), "store_uuid": store_uuid}
    with db.transaction():
        db.one("SELECT id FROM users WHERE uuid = ? FOR UPDATE", (user_uuid,))
        active = db.value("SELECT COUNT(*) FROM api_keys WHERE user_uuid = ? AND revoked_at IS NULL "
                          "AND agent_id IS NULL", (user_uuid,), default=0)
        if int(active) >= KEYS_PER_USER:
            raise Conflict(f"at most {KEYS_PER_USER} active API keys; revoke one first")
        row["id"] = db.insert("api_keys", row)
        audit.log(db, "key_created", user_uuid, f"api_key:{row['id']}",
                  f"{row['key_prefix']} {name} [{row['scopes']}{' ' + store_uuid if store_uuid else ''}]", ip)
    return key, _public(row)


def _public(row):
    """A key row as the API shows it: scopes as a list."""
    out = {k: row.get(k) for k in LIST_FIELDS}
    out["scopes"] = list(scopes.from_text(row.get("scopes")))
    return out


def lookup(db, key):
    """The api_keys row of a plaintext key joined with its user's fields, or None.
    The result has key fields plus `user` (public user dict); revoked keys are
    returned too (check `revoked_at`)."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key.strip()):
        return None
    row = db.one("SELECT * FROM api_keys WHERE key_hash = ?", (key_hash(key.strip()),))
    if row is None or row.get("agent_id"):
        return None
    row["scopes"] = scopes.from_text(row.get("scopes"))
    row["user"] = users.by_uuid(db, row["user_uuid"])
    return row


def list_keys(db, user_uuid):
    """The user's active keys, newest first (never the key itself)."""
    rows = db.query("SELECT * FROM api_keys WHERE user_uuid = ? AND revoked_at IS NULL "
                    "AND agent_id IS NULL ORDER BY id DESC", (user_uuid,))
    return [_public(r) for r in rows]


def revoke(db, user_uuid, key_id, ip=None):
    """Revoke one of the user's own keys. 404 if it is not theirs, 409 if already revoked."""
    with db.transaction():
        row = db.one("SELECT * FROM api_keys WHERE id = ? AND user_uuid = ? AND agent_id IS NULL FOR UPDATE",
                     (key_id, user_uuid))
        if row is None:
            raise NotFound("no such API key")
        if row["revoked_at"]:
            raise Conflict("this API key is already revoked")
        db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (utc_now(), key_id))
        db.execute("DELETE FROM api_key_requests WHERE api_key_id = ?", (key_id,))
        audit.log(db, "key_revoked", user_uuid, f"api_key:{key_id}", row["key_prefix"], ip)
    return _public(row)


def count_request(db, key_id, now_ms=None):
    """Count one request against the key's limit; 429 when the rolling window is full.
    Returns the number of requests left in the window."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    window_start = now_ms - RATE_WINDOW_MS
    if not db.is_sqlite and not db.in_transaction:
        # READ COMMITTED for this transaction only: under REPEATABLE READ the DELETE's
        # next-key locks reach into other keys' index ranges and concurrent requests of
        # different keys deadlock (MariaDB 1213). The key row lock below still serializes
        # the requests of one key, and each statement then sees every committed request.
        db.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    now = utc_now()
    with db.transaction():
        # Serialize the requests of this key: the update locks the key's row first, so
        # the count and insert below see every committed request of the key.
        # (MariaDB counts a row set to the value it has as not affected: the key's
        # existence is read by the count.)
        db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key_id))
        counts = db.one("SELECT COUNT(r.id) AS rows_kept, SUM(CASE WHEN r.requested_ms > ? THEN 1 ELSE 0 END) "
                        "AS recent FROM api_keys k LEFT JOIN api_key_requests r ON r.api_key_id = k.id "
                        "WHERE k.id = ? GROUP BY k.id", (window_start, key_id))
        if counts is None:
            raise Unauthorized("invalid API key")
        recent = int(counts["recent"] or 0)
        if recent >= RATE_LIMIT:
            oldest = db.value("SELECT requested_ms FROM api_key_requests WHERE api_key_id = ? AND requested_ms > ? "
                              "ORDER BY requested_ms DESC LIMIT 1 OFFSET ?", (key_id, window_start, RATE_LIMIT - 1))
            retry = max(1, (oldest + RATE_WINDOW_MS - now_ms + 999) // 1000)
            raise TooManyRequests(f"rate limit: {RATE_LIMIT} requests per minute per API key; "
                                 f"retry in {retry} seconds",
                            [("Retry-After", str(retry)), ("X-RateLimit-Limit", str(RATE_LIMIT)),
                             ("X-RateLimit-Remaining", "0")])
        if int(counts["rows_kept"]) > recent:
            db.execute("DELETE FROM api_key_requests WHERE api_key_id = ? AND requested_ms <= ?",
                       (key_id, window_start))
        db.insert("api_key_requests", {"api_key_id": key_id, "requested_ms": now_ms})
    if random.random() < 0.01:
        prune(db, now_ms)
    return RATE_LIMIT - recent - 1


def prune(db, now_ms=None):
    """Delete request rows older than the window (all keys)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return db.execute("DELETE FROM api_key_requests WHERE requested_ms <= ?", (now_ms - RATE_WINDOW_MS,))
