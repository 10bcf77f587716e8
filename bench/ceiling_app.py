"""The ceiling of bench/web.py: a bare WSGI app answering a constant JSON body, run
under the same nginx and uwsgi settings as the marketplace (only the module differs)."""
BODY = b'{"ok": true, "stores": []}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
