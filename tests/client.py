"""An in-process WSGI test client with a cookie jar (no network, no threads). It calls the
app through wsgiref.validate.validator, which fails a test on any breach of the WSGI spec
by either side (pass validate=False to send a request the spec forbids on purpose)."""
import io
import json
import urllib.parse
from http.cookies import SimpleCookie
from wsgiref.validate import validator


class Result:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers            # list of (name, value)
        self.body = body
        self.text = body.decode("utf-8", "replace")

    def header(self, name):
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.text)

    def __repr__(self):
        return f"<Result {self.status} {self.text[:200]!r}>"


class Client:
    def __init__(self, app, remote_addr="127.0.0.1", validate=True):
        self.app = validator(app) if validate else app
        self.cookies = {}
        self.remote_addr = remote_addr

    def request(self, method, path, data=None, json_body=None, headers=None, body=None,
                content_type=None):
        path, _, query = path.partition("?")
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = "application/json"
        elif data is not None:
            body = urllib.parse.urlencode(data).encode()
            content_type = content_type or "application/x-www-form-urlencoded"
        body = body or b""
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": urllib.parse.unquote(path, "latin-1"),
            "QUERY_STRING": query, "SERVER_NAME": "testserver", "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": self.remote_addr,
            "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
            "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "SCRIPT_NAME": "", "CONTENT_LENGTH": str(len(body)),
        }
        if content_type:
            environ["CONTENT_TYPE"] = content_type
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key == "CONTENT_LENGTH":
                environ["CONTENT_LENGTH"] = value
            else:
                environ["HTTP_" + key] = value
        captured = {}

        def start_response(status, response_headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            captured["headers"] = response_headers

        chunks = self.app(environ, start_response)
        try:
            out = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return self.keep_cookies(Result(captured["status"], captured["headers"], out))

    def keep_cookies(self, result):
        """Put the cookies `result` sets into the jar (an empty or Max-Age=0 one is removed)."""
        for value in result.header_all("Set-Cookie"):
            jar = SimpleCookie()
            jar.load(value)
            for key, morsel in jar.items():
                if morsel["max-age"] == "0" or morsel.value == "":
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = morsel.value
        return result

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, data=None, **kw):
        return self.request("POST", path, data=data, **kw)
