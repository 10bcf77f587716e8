"""Agent identity: `X-Agent-Identity: <token>` verified by an identity provider.

Off unless AGENT_IDENTITY_VERIFY_URL is set (the header is then ignored). With it, a request
carrying the header and no other credentials (no API key, no live session) is verified by
POSTing {"token": ...} as JSON to that URL (timeout AGENT_IDENTITY_TIMEOUT seconds, default 3);
the provider answers {"valid": true, "agent_id": "...", "name": "..."} (or valid false / a
4xx for a bad token). This is the one outbound call the web process makes; its answer is
cached in process for CACHE_SECONDS (a minute, also for invalid tokens), so a busy agent
does not reach the provider on every request.

The agent maps to a user created on first use (username derived from the name, unique,
role customer, a password hash that matches no password, so no password login) and to an
api_keys row with its `agent_id` (never usable as a key): that row gives the agent the API
key rate limiter (lib.api_keys.count_request) of its own. Its scopes are
AGENT_IDENTITY_SCOPES (lib/scopes.py names, comma-separated; default full).

Errors: invalid token -> 401; provider unreachable, timing out or answering nonsense -> 503
with a message saying so (never 500).
"""
import hashlib
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid as uuidlib

from lib import api_keys, audit, env, scopes, users
from lib.db import IntegrityError, utc_now
from lib.http import Forbidden, HttpError, ServiceUnavailable, Unauthorized

log = logging.getLogger("agent_identity")

HEADER = "x-agent-identity"
CACHE_SECONDS = 60
CACHE_MAX = 10000
TOKEN_MAX = 4096
AGENT_ID_MAX = 128
NO_PASSWORD = "!agent-identity"   # not a scrypt hash: lib.users.verify_password is always False
RESPONSE_MAX = 64 * 1024

_cache = {}
_cache_lock = threading.Lock()


def verify_url():
    return (env.get("AGENT_IDENTITY_VERIFY_URL", "") or "").strip()


def enabled():
    return bool(verify_url())


def token_from_request(request):
    """The X-Agent-Identity token when the feature is on, else None."""
    if not enabled():
        return None
    value = request.headers.get(HEADER)
    return None if value is None else value.strip()


def agent_scopes():
    raw = env.get("AGENT_IDENTITY_SCOPES", "") or ""
    try:
        return scopes.parse(raw)
    except HttpError:
        log.warning("AGENT_IDENTITY_SCOPES=%r is not a list of scopes; agents get 'read'", raw)
        return (scopes.READ,)


def _timeout():
    try:
        return max(0.5, min(30.0, float(env.get("AGENT_IDENTITY_TIMEOUT", "") or 3)))
    except ValueError:
        return 3.0


def clear_cache():
    with _cache_lock:
        _cache.clear()


def _unavailable(reason):
    log.warning("agent identity provider unavailable: %s", reason)
    return ServiceUnavailable("the agent identity provider is unavailable; try again later",
                     [("Retry-After", "30")])


def _ask_provider(token):
    """{"agent_id", "name"} for a valid token, None for an invalid one; HttpError 503 when
    the provider cannot answer."""
    body = json.dumps({"token": token}).encode("utf-8")
    req = urllib.request.Request(verify_url(), data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=_timeout()) as resp:
            raw = resp.read(RESPONSE_MAX + 1)
    except urllib.error.HTTPError as e:
        if e.code in (400, 401, 403, 404, 422):
            return None
        raise _unavailable(f"HTTP {e.code}")
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise _unavailable(str(e))
    if len(raw) > RESPONSE_MAX:
        raise _unavailable("answer too large")
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _unavailable("answer is not JSON")
    if not isinstance(answer, dict):
        raise _unavailable("answer is not a JSON object")
    if answer.get("valid") is not True:
        return None
    agent_id, name = answer.get("agent_id"), answer.get("name")
    if isinstance(agent_id, (int,)) and not isinstance(agent_id, bool):
        agent_id = str(agent_id)
    if not isinstance(agent_id, str) or not agent_id.strip() or len(agent_id.strip()) > AGENT_ID_MAX:
        raise _unavailable("a valid answer without a usable agent_id")
    return {"agent_id": agent_id.strip(), "name": name.strip() if isinstance(name, str) else ""}


def verify(token):
    """The verified agent ({"agent_id", "name"}) of a token (cached a minute); 401 invalid."""
    if not token or len(token) > TOKEN_MAX:
        raise Unauthorized("invalid agent identity token")
    digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None and hit[0] > now:
        agent = hit[1]
    else:
        agent = _ask_provider(token)      # 503 is not cached: the next request asks again
        with _cache_lock:
            if len(_cache) >= CACHE_MAX:
                for k in [k for k, v in _cache.items() if v[0] <= now] or list(_cache)[: CACHE_MAX // 10]:
                    _cache.pop(k, None)
            _cache[digest] = (now + CACHE_SECONDS, agent)
    if agent is None:
        raise Unauthorized("invalid agent identity token")
    return agent


_USERNAME_OK = re.compile(r"[^A-Za-z0-9_.\-]+")


def username_base(name, agent_id):
    base = _USERNAME_OK.sub("-", name or "").strip("-.")[:16].strip("-.")
    if not base:
        base = "agent"
    return base


def _candidates(base):
    yield base
    for n in range(2, 100):
        suffix = f"-{n}"
        yield base[: 16 - len(suffix)] + suffix
    while True:
        yield base[:9] + "-" + secrets.token_hex(3)


def _key_row(db, agent_id):
    return db.one("SELECT * FROM api_keys WHERE agent_id = ?", (agent_id,))


def user_for(db, agent):
    """(user dict, api_keys row) of a verified agent; the user and row are made on first use."""
    row = _key_row(db, agent["agent_id"])
    if row is None:
        base = username_base(agent["name"], agent["agent_id"])
        for username in _candidates(base):
            if db.value("SELECT 1 FROM users WHERE username_lower = ?", (username.lower(),)) is not None:
                continue
            now = utc_now()
            user_uuid = str(uuidlib.uuid4())
            try:
                with db.transaction():
                    if _key_row(db, agent["agent_id"]) is not None:
                        break      # another request created it meanwhile
                    db.insert("users", {"uuid": user_uuid, "username": username,
                                        "username_lower": username.lower(), "password_hash": NO_PASSWORD,
                                        "role": "customer", "banned": 0, "inviter_uuid": None,
                                        "created_at": now, "updated_at": now})
                    db.insert("api_keys", {
                        "user_uuid": user_uuid, "name": ("agent " + (agent["name"] or agent["agent_id"]))[:64],
                        "key_hash": hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                        "key_prefix": "agent", "created_at": now, "last_used_at": None, "revoked_at": None,
                        "scopes": scopes.FULL, "store_uuid": None, "agent_id": agent["agent_id"]})
                    audit.log(db, "agent_user_created", user_uuid, agent["agent_id"][:64], username, None)
                break
            except IntegrityError:
                if _key_row(db, agent["agent_id"]) is not None:
                    break      # a concurrent first request won
                continue       # the username was taken meanwhile: try the next one
        row = _key_row(db, agent["agent_id"])
    if row is None:
        raise ServiceUnavailable("could not create the agent's user; try again")
    if row["revoked_at"]:
        raise Unauthorized("this agent identity has been revoked")
    user = users.by_uuid(db, row["user_uuid"])
    if user is None:
        raise Unauthorized("invalid agent identity token")
    if user["banned"]:
        raise Forbidden("this account is banned")
    return user, row


def authenticate(db, request, token):
    """The user of a request's agent identity token; counts the request against the agent's
    rate limit and attaches its scopes. 401 invalid, 403 banned, 429 over the limit, 503
    provider down."""
    agent = verify(token)
    user, row = user_for(db, agent)
    api_keys.count_request(db, row["id"])
    request.api_key_id = row["id"]
    request.agent_id = agent["agent_id"]
    scopes.attach(request, agent_scopes())
    return user
