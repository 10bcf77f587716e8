"""A small Request and Response over WSGI, and HttpError for clean 4xx answers.

The bottom layer of the web side: it imports nothing of lib/ but lib.env. How an error
reaches the client (JSON, the site's HTML page, plain text) is the application's choice:
lib.web.error_response, called by wsgi.py.
"""
import http.cookies
import ipaddress
import itertools
import json
import operator
import re
import urllib.parse

from lib import env

MAX_BODY = 1024 * 1024  # 1 MiB; nginx and uwsgi are configured to the same limit
# An image upload (one file of at most 5 MB plus the form's fields); only the scripts that
# call Request.allow_upload() take it, and nginx allows it only on their URLs.
MAX_UPLOAD_BODY = 6 * 1024 * 1024
MAX_MULTIPART_PARTS = 20
MAX_JSON_DEPTH = 32     # no endpoint takes more than a flat object; deeper is a crafted body
# Ids and numbers are ASCII digits only: str.isdigit() and int() also take '²', '٢', '１'.
ASCII_UINT = re.compile(r"[0-9]+")
MAX_ID = 2 ** 63 - 1    # the databases' BIGINT; a larger int overflows SQLite's driver

REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 302: "Found",
    303: "See Other", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
    413: "Payload Too Large", 415: "Unsupported Media Type", 429: "Too Many Requests",
    500: "Internal Server Error", 503: "Service Unavailable",
}


class HttpError(Exception):
    """Raise anywhere during a request to answer `status` with `message`. The subclasses
    below name the status (raise NotFound("no such order")); HttpError(status, message)
    stays the base for a status computed at run time."""

    def __init__(self, status, message, headers=None, fields=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []
        self.fields = fields or {}  # per-field errors for forms


class _StatusError(HttpError):
    status = 500

    def __init__(self, message, headers=None, fields=None):
        super().__init__(type(self).status, message, headers, fields)


def _typed(status, name, doc):
    """A subclass of HttpError for one status: raise it with the message alone."""
    return type(name, (_StatusError,), {"status": status, "__doc__": doc, "__module__": __name__})


# The typed errors: raise NotFound("no such order"), never HttpError(404, ...).
BadRequest = _typed(400, "BadRequest", "The input is wrong (fields names the bad ones).")
Unauthorized = _typed(401, "Unauthorized", "Not authenticated, or the credentials are wrong.")
Forbidden = _typed(403, "Forbidden", "Authenticated, and this person may not.")
NotFound = _typed(404, "NotFound", "No such thing.")
MethodNotAllowed = _typed(405, "MethodNotAllowed", "The URL does not take this method (headers: Allow).")
Conflict = _typed(409, "Conflict", "Not in this state, or it already exists.")
PayloadTooLarge = _typed(413, "PayloadTooLarge", "The body is larger than the limit.")
TooManyRequests = _typed(429, "TooManyRequests", "Over a rate limit (headers: Retry-After).")
ServiceUnavailable = _typed(503, "ServiceUnavailable", "Not available now; try again later.")


class Redirect(Exception):
    """Ends a request from inside a helper (the login check) with a redirect: the
    application answers `response` as it is (Location, no body); it is not an error."""

    def __init__(self, location, status=303):
        super().__init__(location)
        self.response = redirect(location, status)


def parse_id(value, field="id"):
    """A positive database id from user input: ASCII digits only, at most 2**63-1; 400 otherwise."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not ASCII_UINT.fullmatch(text) or len(text) > 19 or not 0 < int(text) <= MAX_ID:
        raise BadRequest(f"{field} must be a positive whole number", fields={field: "not an id"})
    return int(text)


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_JSON_BRACKETS = re.compile(r"[\[\]{}]")
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def json_depth(text):
    """How deeply a JSON text nests (exactly, once it has more than MAX_JSON_DEPTH
    brackets), counted before parsing it: the C parser recurses once
    per level and, under a raised recursion limit, a crafted body overflows the C stack
    (a crash, not a RecursionError). Linear, at C speed: with '[' and '{' as 2 and ']' and
    '}' as 0, the depth after the i-th bracket is the running sum minus i."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0 if not text.strip() else 1  # too few brackets to nest too deep (most bodies)
    brackets = "".join(_JSON_BRACKETS.findall(_JSON_STRING.sub("", text)))
    steps = brackets.encode("ascii").translate(_BRACKET_STEPS)
    return max(map(operator.sub, itertools.accumulate(steps), itertools.count(1)), default=0)


def check_json_value(value, depth_limit=MAX_JSON_DEPTH):
    """400 unless a parsed JSON body is at most `depth_limit` deep and every string in it
    (keys too) is valid UTF-8 text: JSON's \\ud800 escapes decode to lone surrogates that
    crash later when encoded for the database or the response. Iterative, so a deep body
    cannot exhaust the stack here."""
    stack = [(value, 1, None)]
    while stack:
        item, depth, field = stack.pop()
        if depth > depth_limit:
            raise BadRequest(f"JSON body is nested deeper than {depth_limit} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                name = field or key
                _check_text(key, name)
                stack.append((child, depth + 1, name))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, field) for child in item)
        elif isinstance(item, str):
            _check_text(item, field)


def _check_text(text, field):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        name = field if isinstance(field, str) and field.isprintable() and len(field) <= 64 else "a field"
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            name = "a field"
        raise BadRequest(f"{name} is not valid UTF-8 text (lone surrogate)",
                        fields={name: "not valid text"})


def _size(limit):
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"


_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^";\s]{1,70}))', re.I)
_PARAM = re.compile(r';\s*([A-Za-z*]+)="((?:[^"\\]|\\.)*)"')


def parse_multipart(body, content_type):
    """(fields, files) of a multipart/form-data body: a field keeps its first value; a
    file is {"filename", "content_type", "data"} (bytes). 400 for a malformed body."""
    match = _BOUNDARY.search(content_type)
    if not match:
        raise BadRequest("multipart body without a boundary")
    delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    parts = body.split(delimiter)
    if len(parts) < 3 or not parts[-1].startswith(b"--"):
        raise BadRequest("malformed multipart body")
    if len(parts) - 2 > MAX_MULTIPART_PARTS:
        raise BadRequest(f"a multipart body has at most {MAX_MULTIPART_PARTS} parts")
    fields, files = {}, {}
    for part in parts[1:-1]:
        head, sep, content = part.partition(b"\r\n\r\n")
        if not head.startswith(b"\r\n") or not sep or not content.endswith(b"\r\n"):
            raise BadRequest("malformed multipart body")
        content = content[:-2]
        try:
            lines = head[2:].decode("utf-8").split("\r\n")
        except UnicodeDecodeError:
            raise BadRequest("multipart headers are not valid UTF-8")
        headers = {}
        for line in lines:
            key, colon, value = line.partition(":")
            if not colon:
                raise BadRequest("malformed multipart body")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        if not disposition.lower().startswith("form-data"):
            raise BadRequest("multipart part without Content-Disposition: form-data")
        params = {k.lower(): v.replace('\\"', '"') for k, v in _PARAM.findall(disposition)}
        name = params.get("name")
        if not name:
            raise BadRequest("multipart part without a name")
        _check_text(name, "a field")
        if "filename" in params:
            files.setdefault(name, {"filename": params["filename"], "data": content,
                                    "content_type": headers.get("content-type", "")})
            continue
        try:
            value = content.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"{name} is not valid UTF-8 text", fields={name: "not valid text"})
        fields.setdefault(name, value)
    return fields, files


def _trusted_proxies():
    raw = env.get("TRUSTED_PROXIES", "") or ""
    nets = []
    for part in raw.split(","):
        part = part.strip()
        if part:
            nets.append(ipaddress.ip_network(part, strict=False))
    return nets


def _first_values(pairs):
    """A repeated field keeps its first value."""
    out = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


class Request:
    def __init__(self, environ):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        raw_path = environ.get("PATH_INFO", "") or "/"
        # WSGI gives PATH_INFO as latin-1 decoded bytes; recover the UTF-8 text.
        try:
            self.path = raw_path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            raise BadRequest("the URL is not valid UTF-8")
        self.query_string = environ.get("QUERY_STRING", "")
        try:
            self.query = _first_values(urllib.parse.parse_qsl(
                self.query_string, keep_blank_values=True, errors="strict"))
        except UnicodeError:
            raise BadRequest("the query string is not valid UTF-8")
        self.headers = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                self.headers[key[5:].replace("_", "-").lower()] = value
        if environ.get("CONTENT_TYPE"):
            self.headers["content-type"] = environ["CONTENT_TYPE"]
        self._body = None
        self._data = None
        self._files = None
        self.max_body = MAX_BODY
        self._cookies = None
        self.user = None          # set by lib.auth
        self.auth_method = None   # 'session' | 'api_key' | None
        self.session = None

    # -- routing facts ---------------------------------------------------
    @property
    def is_api(self):
        """API and admin scripts answer JSON, errors included."""
        return self.path.startswith(("/api/", "/admin/"))

    @property
    def wants_html(self):
        return "text/html" in self.headers.get("accept", "")

    @property
    def client_ip(self):
        remote = self.environ.get("REMOTE_ADDR", "") or ""
        forwarded = self.headers.get("x-forwarded-for") or self.headers.get("x-real-ip")
        if not forwarded:
            return remote
        try:
            addr = ipaddress.ip_address(remote)
        except ValueError:
            return remote
        trusted = _trusted_proxies()
        if not any(addr in net for net in trusted):
            return remote
        # The nearest untrusted hop, walking back from the right.
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):
            try:
                if not any(ipaddress.ip_address(hop) in net for net in trusted):
                    return hop
            except ValueError:
                return remote
        return hops[0] if hops else remote

    # -- body ------------------------------------------------------------
    @property
    def body(self):
        if self._body is None:
            try:
                length = int(self.environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                raise BadRequest("invalid Content-Length")
            if length > self.max_body:
                raise PayloadTooLarge(f"request body larger than {_size(self.max_body)}")
            stream = self.environ.get("wsgi.input")
            data = stream.read(length) if (stream is not None and length > 0) else b""
            self._body = data
        return self._body

    @property
    def content_type(self):
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def data(self):
        """The POST body as a dict: form fields (first value) or a JSON object."""
        if self._data is None:
            body = self.body
            if self.content_type == "multipart/form-data":
                self._data, self._files = parse_multipart(body, self.headers.get("content-type", ""))
            elif self.content_type == "application/json":
                try:
                    text = body.decode("utf-8")
                    if json_depth(text) > MAX_JSON_DEPTH:
                        raise BadRequest(f"JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
                    value = json.loads(text) if body else {}
                except UnicodeDecodeError:
                    raise BadRequest("request body is not valid UTF-8")
                except ValueError:
                    raise BadRequest("malformed JSON body")
                except RecursionError:
                    raise BadRequest(f"JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
                if not isinstance(value, dict):
                    raise BadRequest("JSON body must be an object")
                check_json_value(value)
                self._data = value
            else:
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise BadRequest("request body is not valid UTF-8")
                try:
                    self._data = _first_values(urllib.parse.parse_qsl(
                        text, keep_blank_values=True, errors="strict"))
                except (UnicodeError, ValueError):
                    raise BadRequest("malformed form body")
        return self._data

    def allow_upload(self):
        """Take a multipart body up to MAX_UPLOAD_BODY (call before anything reads the body)."""
        self.max_body = MAX_UPLOAD_BODY

    @property
    def files(self):
        """Uploaded files of a multipart body: {field: {"filename", "content_type", "data"}}."""
        if self._files is None:
            self.data
        return self._files or {}

    def field(self, name, default=None, max_length=None, required=False):
        """A body field as a stripped string (JSON numbers and booleans are stringified)."""
        value = self.data.get(name, default)
        if value is None or value == "":
            if required:
                raise BadRequest(f"{name} is required", fields={name: "required"})
            return default
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            raise BadRequest(f"{name} must be a string", fields={name: "must be a string"})
        value = value.strip()
        if max_length is not None and len(value) > max_length:
            raise BadRequest(f"{name} is longer than {max_length} characters",
                            fields={name: f"at most {max_length} characters"})
        if value == "" and required:
            raise BadRequest(f"{name} is required", fields={name: "required"})
        return value

    def arg(self, name, default=None):
        """A query-string parameter."""
        value = self.query.get(name)
        return default if value in (None, "") else value

    def required_arg(self, name, example=None):
        """A query-string parameter the page cannot do without: missing or empty is a 400
        naming it (and showing the URL with it: `example`, e.g. "/item.php?uuid=ITEM_UUID")."""
        value = self.arg(name)
        if value is None:
            raise BadRequest(f"{name} is required" + (f": {example}" if example else ""),
                             fields={name: "required"})
        return value

    def int_arg(self, name, default, minimum=0, maximum=None):
        raw = self.query.get(name)
        if raw in (None, ""):
            return default
        text = raw.strip()
        digits = text[1:] if text.startswith("-") else text
        if not ASCII_UINT.fullmatch(digits) or len(digits) > 18:
            raise BadRequest(f"{name} must be an integer")
        value = int(text)
        if value < minimum or (maximum is not None and value > maximum):
            raise BadRequest(f"{name} must be between {minimum} and {maximum}"
                            if maximum is not None else f"{name} must be at least {minimum}")
        return value

    def page(self):
        """(limit, offset) of a list endpoint: limit default 50, max 200; offset at most 10**9
        (a larger one does not fit the databases' integers and would be a 500)."""
        return self.int_arg("limit", 50, 1, 200), self.int_arg("offset", 0, 0, 10 ** 9)

    @property
    def cookies(self):
        if self._cookies is None:
            jar = http.cookies.SimpleCookie()
            try:
                jar.load(self.environ.get("HTTP_COOKIE", ""))
            except http.cookies.CookieError:
                pass
            self._cookies = {k: m.value for k, m in jar.items()}
        return self._cookies


class Response:
    chunks = None  # a StreamResponse's iterable body

    def __init__(self, body=b"", status=200, content_type="text/plain; charset=utf-8", headers=None):
        self.status = status
        self.headers = [("Content-Type", content_type)] if content_type else []
        self.headers.extend(headers or [])
        self.body = body.encode("utf-8") if isinstance(body, str) else body

    def header(self, name, value):
        self.headers.append((name, value))
        return self

    def set_cookie(self, name, value, max_age=None, secure=False, http_only=True, path="/"):
        parts = [f"{name}={value}", f"Path={path}", "SameSite=Lax"]
        if max_age is not None:
            parts.append(f"Max-Age={int(max_age)}")
        if http_only:
            parts.append("HttpOnly")
        if secure:
            parts.append("Secure")
        return self.header("Set-Cookie", "; ".join(parts))

    def delete_cookie(self, name, path="/"):
        return self.header("Set-Cookie", f"{name}=; Path={path}; Max-Age=0; SameSite=Lax; HttpOnly")

    @property
    def status_line(self):
        return f"{self.status} {REASONS.get(self.status, 'Status')}"


class StreamResponse(Response):
    """A response whose body is an iterable of bytes, sent as it is produced (no
    Content-Length): exports of any size without holding them in memory. The status and
    headers are final when the script returns, so check everything before the first
    chunk; an error while streaming is logged and cuts the connection (the client sees an
    incomplete transfer, never a complete-looking file)."""

    def __init__(self, chunks, status=200, content_type="text/plain; charset=utf-8", headers=None):
        super().__init__(b"", status, content_type, headers)
        self.chunks = chunks


def _json_default(value):
    # Decimals become strings: amounts are never floats on the wire.
    return str(value)


# The encoding of every JSON answer (also of pieces kept encoded, lib/order_rows.py, so a
# page put together from them is byte for byte the page encoded in one go).
json_text = json.JSONEncoder(default=_json_default, ensure_ascii=False).encode


def json_response(obj, status=200, headers=None):
    body = json_text(obj)
    return Response(body, status, "application/json", headers)


def one_or_page(request, one_name, one, page_name, page):
    """The GET of a list endpoint: ?uuid= -> {one_name: one(uuid)}, else {page_name:
    page(limit, offset), "limit", "offset"} (Request.page()). `page` gives the list, or
    the list's JSON text as json_response would encode it."""
    uuid = request.arg("uuid")
    if uuid is not None:
        return json_response({one_name: one(uuid)})
    limit, offset = request.page()
    items = page(limit, offset)
    if not isinstance(items, str):
        return json_response({page_name: items, "limit": limit, "offset": offset})
    return Response(f'{{{json.dumps(page_name)}: {items}, "limit": {limit}, "offset": {offset}}}', 200,
                    "application/json")


def html_response(text, status=200, headers=None):
    return Response(text, status, "text/html; charset=utf-8", headers)


def text_response(text, status=200, headers=None):
    return Response(text, status, "text/plain; charset=utf-8", headers)


def redirect(location, status=303):
    """An empty redirect; it names a Content-Type all the same, as WSGI servers expect."""
    return Response(b"", status, "text/plain; charset=utf-8", [("Location", location)])
