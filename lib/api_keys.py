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
concurrency. The key's row keeps the times of its last RATE_LIMIT accepted requests
(`request_times`, oldest first, 13 digits of milliseconds each). A request is accepted
when fewer than RATE_LIMIT are kept or the oldest kept one is outside the window; one
UPDATE checks that and appends the request's time (dropping the oldest), so the check
and the count are one statement under the row's lock (MariaDB) or the database's write
lock (SQLite), in autocommit: no transaction of several statements. Refused requests
are not counted (429 with Retry-After).
"""
import hashlib
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


# The key's fields and its user's (users.PUBLIC_FIELDS as u_<name>) in one read.
_LOOKUP_SQL = ("SELECT k.id, k.user_uuid, k.name, k.key_prefix, k.created_at, k.last_used_at, k.revoked_at, "
               "k.scopes, k.store_uuid, k.agent_id, "
               + ", ".join(f"u.{f} AS u_{f}" for f in users.PUBLIC_FIELDS + ("can_sell",))
               + " FROM api_keys k LEFT JOIN users u ON u.uuid = k.user_uuid WHERE k.key_hash = ?")


def lookup(db, key):
    """The api_keys row of a plaintext key joined with its user's fields, or None.
    The result has key fields plus `user` (public user dict, None when the user is
    gone); revoked keys are returned too (check `revoked_at`)."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key.strip()):
        return None
    row = db.one(_LOOKUP_SQL, (key_hash(key.strip()),))
    if row is None or row.get("agent_id"):
        return None
    user = {k[2:]: row.pop(k) for k in list(row) if k.startswith("u_")}
    row["scopes"] = scopes.from_text(row.get("scopes"))
    row["user"] = users.public(user) if user["uuid"] is not None else None
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
        audit.log(db, "key_revoked", user_uuid, f"api_key:{key_id}", row["key_prefix"], ip)
    return _public(row)


TIME_DIGITS = 13   # milliseconds since the epoch, zero-padded: text order is time order


def _count_sql(db):
    """The limiter's UPDATE: (last_used_at, kept, now, id, full, full, cutoff) where `full`
    is the length of RATE_LIMIT times and `kept` of one less."""
    times = "request_times"
    tail = f"CASE WHEN LENGTH({times}) <= ? THEN {times} ELSE SUBSTR({times}, LENGTH({times}) - ? + 1) END"
    return (f"UPDATE api_keys SET last_used_at = ?, {times} = {db.concat(tail, '?')} WHERE id = ? AND "
            f"(LENGTH({times}) < ? OR SUBSTR({times}, LENGTH({times}) - ? + 1, {TIME_DIGITS}) <= ?)")


def count_request(db, key_id, now_ms=None):
    """Count one request against the key's limit; 429 when the rolling window is full,
    401 when the key is gone."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    full, kept = TIME_DIGITS * RATE_LIMIT, TIME_DIGITS * (RATE_LIMIT - 1)
    cutoff = f"{now_ms - RATE_WINDOW_MS:0{TIME_DIGITS}d}"
    if db.execute(_count_sql(db), (utc_now(), kept, kept, f"{now_ms:0{TIME_DIGITS}d}", key_id,
                                   full, full, cutoff)):
        return
    times = db.value("SELECT request_times FROM api_keys WHERE id = ?", (key_id,))
    if times is None:
        raise Unauthorized("invalid API key")
    oldest = int(times[-full:][:TIME_DIGITS]) if len(times) >= full else now_ms - RATE_WINDOW_MS
    retry = max(1, (oldest + RATE_WINDOW_MS - now_ms + 999) // 1000)
    raise TooManyRequests(f"rate limit: {RATE_LIMIT} requests per minute per API key; retry in {retry} seconds",
                          [("Retry-After", str(retry)), ("X-RateLimit-Limit", str(RATE_LIMIT)),
                           ("X-RateLimit-Remaining", "0")])


def requests_in_window(db, key_id, now_ms=None):
    """How many of the key's accepted requests are inside the rolling window now."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    times = db.value("SELECT request_times FROM api_keys WHERE id = ?", (key_id,)) or ""
    cutoff = now_ms - RATE_WINDOW_MS
    return sum(1 for i in range(0, len(times), TIME_DIGITS) if int(times[i:i + TIME_DIGITS]) > cutoff)
