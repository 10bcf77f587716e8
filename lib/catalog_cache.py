"""Rendered public catalog pages, kept per process while the catalog is unchanged.

The catalog version is one row (`catalog_version`, id 1): every write of lib/ that
changes what a public catalog page shows calls `changed(db)` inside its own
transaction, so the bump commits (or rolls back) with the write itself. Writers
today: stores (create, settings, tokens, tier, suspension), items, packages and
categories (lib/catalog.py), accepted tokens and their manual prices (lib/tokens.py),
bans (lib/users.py) and settings (lib/config.py: the vendor bond, price_max_age). A new
kind of write that shows on these pages adds one `catalog_cache.changed(db)` call in
its transaction.

What cron writes is followed without it: the newest `prices.fetched_at`,
`accepted_tokens.updated_at` and `deposits.updated_at` (the vendor bond) are read in
the same statement as the version, each from the end of an index. A guest's request
(no session cookie, no API key, no agent token) for a cached page thus costs one
read; the entry is used only when all four equal what they were before it was
rendered. Entries whose quotes or bond go stale with time also carry the moment they do.
Signed-in requests are never served from or stored in the cache, so no CSRF token
or personal bit can be cached. Every answer carries an ETag (a hash of the body);
a matching If-None-Match gets 304 without the body.

A script's `get` is `serve(request, render)`; wsgi.py first asks `cached(environ)`,
which answers a guest's request for a page this process holds and is still valid the
same way, before a Request is built or the script is found (most catalog reads).
"""
import collections
import hashlib
import threading
import time

from lib import replica
from lib.http import Response
from lib.session import COOKIE as SESSION_COOKIE

MAX_ENTRIES = 2000              # URLs per process (least recently used ones leave first) ...
MAX_BYTES = 16 * 1024 * 1024    # ... and at most this much body in all
MAX_BODY = 512 * 1024           # larger bodies are rendered every time
CREDENTIAL_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_X_API_KEY", "HTTP_X_AGENT_IDENTITY")

_entries = collections.OrderedDict()
_bytes = 0
_lock = threading.Lock()
# `script`: the public/ script that rendered it (what the metrics count a hit under).
Entry = collections.namedtuple("Entry", "version expires body content_type etag script")


def changed(db):
    """Mark the catalog changed (call inside the transaction of the write)."""
    db.execute("UPDATE catalog_version SET version = version + 1 WHERE id = 1")


# The tables cron writes (rates, token checks, deposit balances behind the vendor bond)
# are followed by their newest time stamp, each the end of an index (migration 011).
VERSION_SQL = ("SELECT c.version, (SELECT MAX(p.fetched_at) FROM prices p) AS prices_at, "
               "(SELECT MAX(t.updated_at) FROM accepted_tokens t) AS tokens_at, "
               "(SELECT MAX(d.updated_at) FROM deposits d) AS deposits_at "
               "FROM catalog_version c WHERE c.id = 1")


def ensure_version_row(db):
    """Create the version row when missing. It starts at the time in milliseconds, so a
    database emptied and seeded again never repeats a version a process has cached."""
    if db.value("SELECT id FROM catalog_version WHERE id = 1") is None:
        db.execute("INSERT INTO catalog_version (id, version) VALUES (1, ?)", (int(time.time() * 1000),))


def version(db):
    """What a cached body depends on: (catalog version, newest stamps of cron's tables)."""
    row = db.one(VERSION_SQL)
    return (row["version"], row["prices_at"], row["tokens_at"], row["deposits_at"]) if row else None


def _settled(current):
    """False while a stamp is of this second or the last: a second write within the same
    second would leave the stamp as it is, so such a render is not kept."""
    recent = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 1))
    return all(stamp is None or stamp < recent for stamp in current[1:])


def is_guest(request):
    """True when the request carries nothing that could sign anyone in (other cookies,
    such as the login form's csrf_pre, change nothing on these pages)."""
    environ = request.environ
    if any(environ.get(h) for h in CREDENTIAL_HEADERS) or "token" in request.query:
        return False
    return not environ.get("HTTP_COOKIE") or not request.cookies.get(SESSION_COOKIE)


def _etag(body):
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _matches(environ, etag):
    wanted = environ.get("HTTP_IF_NONE_MATCH")
    if not wanted:
        return False
    return wanted.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in wanted.split(",")]


def _answer(environ, body, content_type, etag):
    headers = [("ETag", etag), ("Cache-Control", "no-cache"), ("Vary", "Cookie, Authorization")]
    if _matches(environ, etag):
        return Response(b"", 304, None, headers)
    return Response(body, 200, content_type, headers)


def _key(request):
    return request.path + "?" + request.query_string


def _valid(key, current):
    """The entry of `key` when it was rendered at catalog version `current` and has not
    gone out of date since, else None."""
    entry = _entries.get(key)
    if entry is None or entry.version != current or (entry.expires is not None and time.time() >= entry.expires):
        return None
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
    return entry


def cached(environ):
    """(script, Response): what `serve` answers a guest's GET or HEAD of a page this
    process holds and that is still valid, or None (then the request is routed to its
    script). Read from the WSGI environ alone, before any Request is built: a request
    with a cookie (it may be a session) or a credential header goes the long way. That no
    `token` is in the query needs no check: an entry exists only for a query string
    without one."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or environ.get("HTTP_COOKIE"):
        return None
    key = environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
    # PATH_INFO is latin-1 decoded bytes; the keys hold the UTF-8 text: equal when ASCII.
    if key not in _entries or not key.isascii() or any(environ.get(h) for h in CREDENTIAL_HEADERS):
        return None
    entry = _valid(key, version(replica.replica_or_primary()))
    if entry is None:
        return None
    return entry.script, _answer(environ, entry.body, entry.content_type, entry.etag)


def serve(request, render, valid_until=None):
    """The response of `render(request, db)` (a Response; `db` is the one this read may
    use, lib/replica.py) for this URL, from the cache for guests.

    `valid_until(db)`: a Unix time after which the rendered page is out of date even
    though nothing was written (a quote's rate going stale), or None. Only 200
    answers to guests are kept; everyone gets an ETag and 304 on a match."""
    db = replica.read_db(request)
    if request.method not in ("GET", "HEAD"):
        return render(request, db)
    if not is_guest(request):
        response = render(request, db)
        if response.status == 200:
            etag = _etag(response.body)
            response.headers += [("ETag", etag), ("Cache-Control", "private, no-cache")]
            if _matches(request.environ, etag):
                return Response(b"", 304, None, [h for h in response.headers if h[0] != "Content-Type"])
        return response
    key = _key(request)
    current = version(db)
    entry = _valid(key, current)
    if entry is not None:
        return _answer(request.environ, entry.body, entry.content_type, entry.etag)
    response = render(request, db)
    if response.status != 200 or any(k.lower() == "set-cookie" for k, _ in response.headers):
        return response
    content_type = next((v for k, v in response.headers if k.lower() == "content-type"), None)
    etag = _etag(response.body)
    if current is not None and _settled(current) and len(response.body) <= MAX_BODY:
        expires = valid_until(db) if valid_until else None
        _keep(key, Entry(current, expires, response.body, content_type, etag,
                         getattr(request, "script", None)))
    return _answer(request.environ, response.body, content_type, etag)


def _keep(key, entry):
    global _bytes
    with _lock:
        old = _entries.pop(key, None)
        if old is not None:
            _bytes -= len(old.body)
        _entries[key] = entry
        _bytes += len(entry.body)
        while len(_entries) > MAX_ENTRIES or _bytes > MAX_BYTES:
            _bytes -= len(_entries.popitem(last=False)[1].body)


def clear():
    """Forget every entry of this process (tests)."""
    global _bytes
    with _lock:
        _entries.clear()
        _bytes = 0
