"""The router and request handling of wsgi.py (SPEC section 2)."""
import pytest


def test_root_is_ok_text_for_non_browsers(client):
    r = client.get("/")
    assert r.status == 200
    assert r.text == "OK"
    assert r.header("Content-Type").startswith("text/plain")


def test_root_is_html_for_browsers(client):
    r = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/html")
    assert "<html" in r.text


@pytest.mark.parametrize("path", ["/health.php", "/health"])
def test_health_with_and_without_php(client, path):
    r = client.get(path)
    assert r.status == 200
    body = r.json()
    assert body["ok"] is True and body["database"] == "reachable"
    assert body["last_cron_run"] is None and body["chains"] == []


def test_health_reports_last_cron_run_and_heads(client, db):
    db.insert("cron_runs", {"started_at": "2026-01-01 00:00:00", "finished_at": "2026-01-01 00:00:01",
                            "ok": 1, "duration_ms": 1000})
    db.insert("chain_heads", {"chain_id": 31337, "block_number": 42, "seen_at": "2026-01-01 00:00:01"})
    body = client.get("/health.php").json()
    assert body["last_cron_run"]["ok"] is True
    assert body["last_cron_run"]["age_seconds"] > 0
    assert body["chains"] == [{"chain_id": 31337, "head_block": 42, "seen_at": "2026-01-01 00:00:01"}]


@pytest.mark.parametrize("path", [
    "/nope", "/nope.php", "/api/nope.php", "/_private", "/.env", "/api/../wsgi",
    "/../wsgi.py", "/..%2fwsgi", "/%2e%2e/wsgi", "/static/../../wsgi.py", "/static/.hidden",
    "/lib/db", "/index.py", "/api//keys", "/a\\b", "/static/", "/health.php/extra",
])
def test_unknown_hidden_and_traversal_paths_are_404(client, path):
    assert client.get(path).status == 404


def test_api_404_is_json(client):
    r = client.get("/api/does-not-exist.php")
    assert r.status == 404
    assert r.json() == {"error": "not found"}


def test_wrong_method_is_405_with_allow(client):
    r = client.request("DELETE", "/health.php")
    assert r.status == 405
    assert r.header("Allow") == "GET, HEAD"


def test_head_returns_headers_without_body(client):
    r = client.request("HEAD", "/")
    assert r.status == 200 and r.body == b""


def test_static_files_are_served_with_cache_headers(client):
    r = client.get("/static/style.css")
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/css")
    assert "max-age" in r.header("Cache-Control")


def test_dash_in_url_maps_to_underscore(tmp_path, monkeypatch):
    import wsgi
    assert wsgi.script_path("/api/transaction-actions.php") in (
        None, wsgi.os.path.join(wsgi.PUBLIC, "api", "transaction_actions.py"))
    # A URL with an underscore is the same file name as with a dash.
    assert wsgi.script_path("/health") == wsgi.script_path("/health.php")


def test_dir_slash_maps_to_index(client):
    import wsgi
    assert wsgi.script_path("/") == wsgi.os.path.join(wsgi.PUBLIC, "index.py")


def test_scripts_are_imported_once(client):
    import wsgi
    client.get("/health.php")
    module = wsgi._modules[wsgi.script_path("/health.php")]
    client.get("/health")
    assert wsgi._modules[wsgi.script_path("/health")] is module


def test_unhandled_exception_is_500_with_request_id_and_no_traceback(client, monkeypatch, caplog):
    import wsgi
    module = wsgi.load_script(wsgi.script_path("/health.php"))

    def boom(request):
        raise RuntimeError("secret internal detail")
    monkeypatch.setattr(module, "get", boom)
    r = client.get("/health.php")
    assert r.status == 500
    assert "request id" in r.text
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    request_id = r.text.split("request id ")[1].split(")")[0]
    assert request_id in caplog.text and "secret internal detail" in caplog.text
