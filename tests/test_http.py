"""Request parsing and error responses (lib/http.py)."""
import io
import json

import pytest

from lib import env
from lib.http import MAX_BODY, HttpError, Request
from lib.web import error_response


def environ(method="POST", path="/api/x.php", body=b"", content_type=None, headers=None,
            query="", remote="10.0.0.9", length=None):
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
           "REMOTE_ADDR": remote, "wsgi.input": io.BytesIO(body),
           "CONTENT_LENGTH": str(len(body) if length is None else length)}
    if content_type:
        env["CONTENT_TYPE"] = content_type
    for k, v in (headers or {}).items():
        env["HTTP_" + k.upper().replace("-", "_")] = v
    return env


def test_form_body():
    r = Request(environ(body=b"a=1&b=x+y&a=2", content_type="application/x-www-form-urlencoded"))
    assert r.data == {"a": "1", "b": "x y"}
    assert r.field("b") == "x y"


def test_json_body_and_scalar_fields():
    r = Request(environ(body=json.dumps({"n": 5, "ok": True, "s": " hi "}).encode(),
                        content_type="application/json; charset=utf-8"))
    assert r.field("n") == "5" and r.field("ok") == "1" and r.field("s") == "hi"


@pytest.mark.parametrize("body,ctype,message", [
    (b"{not json", "application/json", "malformed JSON body"),
    (b"[1, 2]", "application/json", "JSON body must be an object"),
    (b"\xff\xfe", "application/json", "request body is not valid UTF-8"),
    (b"a=\xff", "application/x-www-form-urlencoded", "request body is not valid UTF-8"),
    (b"a=%ff", "application/x-www-form-urlencoded", "malformed form body"),
])
def test_malformed_bodies_are_400(body, ctype, message):
    with pytest.raises(HttpError) as e:
        Request(environ(body=body, content_type=ctype)).data
    assert e.value.status == 400 and e.value.message == message


def test_body_over_one_mib_is_413_without_reading_it():
    stream = io.BytesIO(b"x" * 10)
    env = environ(length=MAX_BODY + 1)
    env["wsgi.input"] = stream
    with pytest.raises(HttpError) as e:
        Request(env).data
    assert e.value.status == 413
    assert stream.tell() == 0


def test_field_rules():
    r = Request(environ(body=b"name=abcdef&list=", content_type="application/x-www-form-urlencoded"))
    with pytest.raises(HttpError) as e:
        r.field("name", max_length=3)
    assert e.value.status == 400 and "name" in e.value.fields
    with pytest.raises(HttpError):
        r.field("missing", required=True)
    assert r.field("list", "dflt") == "dflt"
    r2 = Request(environ(body=json.dumps({"obj": {"a": 1}}).encode(), content_type="application/json"))
    with pytest.raises(HttpError):
        r2.field("obj")


def test_pagination_defaults_and_limits():
    assert Request(environ(method="GET")).page() == (50, 0)
    assert Request(environ(method="GET", query="limit=200&offset=10")).page() == (200, 10)
    for q in ("limit=201", "limit=0", "limit=x", "offset=-1"):
        with pytest.raises(HttpError) as e:
            Request(environ(method="GET", query=q)).page()
        assert e.value.status == 400


def test_query_must_be_utf8():
    with pytest.raises(HttpError) as e:
        Request(environ(method="GET", query="q=%ff"))
    assert e.value.status == 400


def test_cookies_and_headers():
    r = Request(environ(headers={"Cookie": "session=abc; other=1", "X-API-Key": "k"}))
    assert r.cookies == {"session": "abc", "other": "1"}
    assert r.headers["x-api-key"] == "k"


def test_forwarded_for_ignored_unless_from_trusted_proxy():
    headers = {"X-Forwarded-For": "1.2.3.4"}
    with env.overriding({"TRUSTED_PROXIES": None}):
        assert Request(environ(headers=headers, remote="127.0.0.1")).client_ip == "127.0.0.1"
        with env.overriding({"TRUSTED_PROXIES": "127.0.0.1"}):
            assert Request(environ(headers=headers, remote="127.0.0.1")).client_ip == "1.2.3.4"
            # Spoofed hops to the left of the one nginx appended are not believed.
            spoof = {"X-Forwarded-For": "6.6.6.6, 1.2.3.4"}
            assert Request(environ(headers=spoof, remote="127.0.0.1")).client_ip == "1.2.3.4"
            assert Request(environ(headers=headers, remote="10.1.1.1")).client_ip == "10.1.1.1"
        assert Request(environ(headers=headers, remote="127.0.0.1")).client_ip == "127.0.0.1"  # only inside


def test_error_response_forms():
    api = Request(environ(path="/api/x.php"))
    assert json.loads(error_response(api, 404, "not found").body) == {"error": "not found"}
    page = Request(environ(path="/x", headers={"Accept": "text/html"}))
    body = error_response(page, 400, "<b>bad</b>").body.decode()
    assert "&lt;b&gt;bad&lt;/b&gt;" in body and "<b>bad" not in body
    plain = Request(environ(path="/x"))
    assert error_response(plain, 400, "bad").body == b"bad\n"


def test_typed_errors_are_http_errors_with_their_status():
    from lib import http
    for cls, status in [(http.BadRequest, 400), (http.Unauthorized, 401), (http.Forbidden, 403),
                        (http.NotFound, 404), (http.MethodNotAllowed, 405), (http.Conflict, 409),
                        (http.PayloadTooLarge, 413), (http.TooManyRequests, 429),
                        (http.ServiceUnavailable, 503)]:
        e = cls("no", [("Retry-After", "1")], fields={"f": "bad"})
        assert isinstance(e, HttpError)
        assert (e.status, e.message, e.headers, e.fields) == (status, "no", [("Retry-After", "1")], {"f": "bad"})
    e = HttpError(418, "teapot")  # the base stays constructible with a status
    assert (e.status, e.message, e.headers, e.fields) == (418, "teapot", [], {})


def test_a_redirect_is_a_bare_response_not_an_error_page(client):
    r = client.get("/settings/user.php", headers={"Accept": "text/html"})
    assert r.status == 303
    assert r.header("Location") == "/login.php?next=%2Fsettings%2Fuser.php"
    assert r.body == b""
    r = client.get("/admin/config.php", headers={"Accept": "text/html"})
    assert r.status == 303 and r.header("Location").startswith("/login.php") and r.body == b""
