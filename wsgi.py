"""WSGI entry point (`application`) and the router.

URL -> script (SPEC section 2):
  /            -> public/index.py
  /X, /X.php   -> public/X.py        (`-` in the URL is `_` in the file name)
  /dir/        -> public/dir/index.py
  /static/...  -> files under public/static/ (nginx serves these in production)
A script defines one function per HTTP method (`get`, `post`, ...) taking the
Request and returning a Response. Scripts are imported once per process.
Names starting with `_` or `.`, anything outside public/ and traversal are 404.

`python wsgi.py` runs a threaded development server on HOST:PORT (127.0.0.1:8000).
Started with a chain secret in its environment, it first re-executes itself without
it: deleting a key from os.environ leaves it readable in /proc/PID/environ.
"""
import importlib.util
import logging
import mimetypes
import os
import re
import sys
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.abspath(__file__))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lib import env  # noqa: E402


def clean_environment():
    """This process's environment without the keys the web process must never have."""
    return {k: v for k, v in os.environ.items() if not env.is_blocked(k)}


def reexec_without_secrets():
    """Dev server: replace this process by itself started with a clean environment, so
    /proc/PID/environ (the environment the process was started with) holds no secret."""
    blocked = sorted(k for k in os.environ if env.is_blocked(k))
    if blocked:
        print(f"warning: restarting without {', '.join(blocked)} (the web process never "
              f"has chain secrets)", file=sys.stderr, flush=True)
        os.execve(sys.executable, [sys.executable] + sys.argv, clean_environment())


def inherited_secrets():
    """Blocked keys in the environment this process was started with (/proc/self/environ)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            names = [item.split(b"=", 1)[0].decode("latin-1") for item in f.read().split(b"\0") if item]
    except OSError:
        return []
    return sorted({n for n in names if env.is_blocked(n)})


def under_uwsgi():
    try:
        import uwsgi  # noqa: F401 (only exists inside uwsgi)
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    reexec_without_secrets()
elif under_uwsgi() and inherited_secrets():
    # uwsgi started without deploy/clean_env.py: stop the whole uwsgi instance (a worker
    # exiting alone would only be respawned) rather than serve with the secrets readable
    # in /proc/PID/environ of the master and of every worker.
    import signal
    import uwsgi
    print("refusing to start: the web process was started with "
          f"{', '.join(inherited_secrets())} in its environment; start uwsgi through "
          "deploy/clean_env.py (the systemd unit does)", file=sys.stderr, flush=True)
    os.kill(uwsgi.masterpid() or os.getpid(), signal.SIGINT)
    raise SystemExit(1)

env.load()

from lib.http import HttpError, MethodNotAllowed, NotFound, Redirect, Request, Response  # noqa: E402
from lib import catalog_cache, db as dbmod, metrics, replica  # noqa: E402
from lib.web import error_response  # noqa: E402  (the application chooses JSON or HTML)

PUBLIC = os.path.join(ROOT, "public")
STATIC = os.path.join(PUBLIC, "static")
METHODS = ("get", "post", "put", "patch", "delete")
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

log = logging.getLogger("app")
logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                    format="%(asctime)s %(levelname)s %(name)s %(message)s")

_modules = {}
_modules_lock = threading.Lock()


_found = {}   # URL path -> script file, for the paths that have one (a finite set)


def script_path(path):
    """The file under public/ serving URL `path`, or None (404)."""
    file = _found.get(path)
    if file is None:
        file = _find_script(path)
        if file is not None:
            _found[path] = file
    return file


def _find_script(path):
    if "\x00" in path or "\\" in path:
        return None
    if path == "/" or path == "":
        parts = ["index"]
    else:
        if not path.startswith("/"):
            return None
        parts = path[1:].split("/")
        if parts[-1] == "":
            parts[-1] = "index"
        last = parts[-1]
        for suffix in (".php", ".json"):
            if last.endswith(suffix):
                last = last[: -len(suffix)]
                break
        parts[-1] = last
    if not all(SEGMENT.match(p) for p in parts):
        return None  # '..', '.x', '_x', empty segments, odd characters
    if parts[0] in ("static", "media"):
        return None
    file = os.path.join(PUBLIC, *[p.replace("-", "_") for p in parts]) + ".py"
    if not os.path.isfile(file):
        return None
    return file


def load_script(file):
    """Import a public/ script once per process."""
    module = _modules.get(file)
    if module is not None:
        return module
    with _modules_lock:
        module = _modules.get(file)
        if module is None:
            rel = os.path.relpath(file, ROOT)[:-3].replace(os.sep, ".")
            spec = importlib.util.spec_from_file_location(rel, file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _modules[file] = module
    return module


def serve_static(request):
    rel = request.path[len("/static/"):]
    parts = rel.split("/")
    if not rel or "\x00" in rel or "\\" in rel or \
            any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise NotFound("not found")
    file = os.path.realpath(os.path.join(STATIC, *parts))
    if not file.startswith(os.path.realpath(STATIC) + os.sep) or not os.path.isfile(file):
        raise NotFound("not found")
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed("method not allowed", [("Allow", "GET, HEAD")])
    ctype = mimetypes.guess_type(file)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "image/svg+xml"):
        ctype += "; charset=utf-8"
    with open(file, "rb") as f:
        body = f.read()
    return Response(body, 200, ctype, [("Cache-Control", "public, max-age=3600")])


MEDIA_NAME = re.compile(r"^items/[0-9a-f-]{36}(\.thumb)?\.(jpg|png|webp)$")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def serve_media(request):
    """Uploaded images under MEDIA_DIR (development; nginx serves /media/ in production).
    Only the names lib/images.py writes are served."""
    from lib import images
    rel = request.path[len("/media/"):]
    if not MEDIA_NAME.match(rel):
        raise NotFound("not found")
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed("method not allowed", [("Allow", "GET, HEAD")])
    try:
        with open(os.path.join(images.media_dir(), *rel.split("/")), "rb") as f:
            body = f.read()
    except OSError:
        raise NotFound("not found")
    return Response(body, 200, MEDIA_TYPES[rel.rsplit(".", 1)[1]], [("Cache-Control", "public, max-age=86400")])


def dispatch(request):
    if request.path.startswith("/static/"):
        request.script = "static"
        return serve_static(request)
    if request.path.startswith("/media/"):
        return serve_media(request)
    file = script_path(request.path)
    if file is None:
        raise NotFound("not found")
    request.script = os.path.relpath(file, PUBLIC)[:-3].replace(os.sep, "/")
    module = load_script(file)
    allowed = [m for m in METHODS if callable(getattr(module, m, None))]
    method = request.method.lower()
    if method == "head" and "get" in allowed:
        method = "get"
    if method not in allowed:
        allow = ", ".join(m.upper() for m in allowed + (["head"] if "get" in allowed else []))
        raise MethodNotAllowed(f"method {request.method} not allowed", [("Allow", allow)])
    return getattr(module, method)(request)


def security_headers(response):
    names = {k.lower() for k, _ in response.headers}
    if "x-content-type-options" not in names:
        response.headers.append(("X-Content-Type-Options", "nosniff"))
    ctype = next((v for k, v in response.headers if k.lower() == "content-type"), "")
    if ctype.startswith("text/html"):
        if "x-frame-options" not in names:
            response.headers.append(("X-Frame-Options", "DENY"))
        if "content-security-policy" not in names:
            response.headers.append(("Content-Security-Policy",
                                     "default-src 'self'; img-src 'self' data:; "
                                     "style-src 'self'; script-src 'self'; frame-ancestors 'none'"))
        response.headers.append(("Referrer-Policy", "same-origin"))


def new_request_id():
    """The id a failed request's log lines and error page share (only failures need one:
    the random bytes are a system call, and one while other threads wait for the GIL)."""
    return os.urandom(6).hex()


def streamed(chunks, environ):
    """A StreamResponse's body; an error half-way is logged and ends the transfer."""
    try:
        for chunk in chunks:
            yield chunk
    except Exception:
        log.error("request %s failed while streaming: %s %s\n%s", new_request_id(),
                  environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), traceback.format_exc())
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()


def application(environ, start_response):
    started = time.monotonic()
    hit = catalog_cache.cached(environ)       # most public catalog reads end here
    if hit is not None:
        script, response = hit
        return finish(environ, start_response, None, script, response, started)
    request = None
    try:
        request = Request(environ)
        response = dispatch(request)
    except Redirect as r:
        response = r.response
    except HttpError as e:
        response = error_response(request, e.status, e.message, e.headers)
    except Exception:
        request_id = new_request_id()
        log.error("request %s failed: %s %s\n%s", request_id,
                  environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), traceback.format_exc())
        response = error_response(request, 500, f"internal error (request id {request_id})")
    return finish(environ, start_response, request, getattr(request, "script", None), response, started)


def finish(environ, start_response, request, script, response, started):
    """Send `response` (to `request`, None for an answer from the catalog cache) and count
    it under `script`."""
    security_headers(response)
    if response.status < 400:
        replica.mark_write(request, response)
    metrics.observe(script or "none", response.status, time.monotonic() - started)
    headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
    if response.chunks is not None:
        start_response(response.status_line, headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return streamed(response.chunks, environ)
    body = response.body
    if environ.get("REQUEST_METHOD") == "HEAD":
        body = b""
    headers.append(("Content-Length", str(len(response.body))))
    start_response(response.status_line, headers)
    return [body]


def make_app(db=None, settings=None):
    """The application over `db` (default: the Db that DB_* names) with `settings` (a dict
    of the keys the web process may read) over the environment: what tests and embedders
    build instead of swapping the process-wide Db or patching os.environ."""
    def app(environ, start_response):
        with dbmod.using(db), env.overriding(settings):
            body = application(environ, start_response)
        return body if isinstance(body, list) else _read_within(body, db, settings)
    return app


def _read_within(body, db, settings):
    """A streamed body is read after the application returned: each chunk is made with the
    same Db and settings as the answer that started it."""
    chunks = iter(body)
    try:
        while True:
            with dbmod.using(db), env.overriding(settings):
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


# From the first token= to the end of the query string, as nginx's log_format does.
TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^\s\"]*")
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def loggable(text):
    """A request line fit for a log: ?token=KEY (and what follows it) redacted, control
    characters escaped."""
    text = TOKEN_IN_QUERY.sub(r"\1REDACTED", text)
    return UNPRINTABLE.sub(lambda m: "\\x%02x" % ord(m.group()), text)


def serve(host=None, port=None):
    """Threaded development server."""
    import socketserver
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True
        request_queue_size = 128  # the default 5 resets connections at ~30 concurrent clients

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, fmt, *args):
            log.info("%s %s", self.address_string(), loggable(fmt % args))

    host = host or env.get("HOST", "127.0.0.1")
    port = int(port or env.get("PORT", "8000"))
    server = make_server(host, port, application, server_class=ThreadingServer,
                         handler_class=QuietHandler)
    print(f"serving on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()


if __name__ == "__main__":
    serve()
