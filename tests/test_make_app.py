"""wsgi.make_app(db, settings): an application built from its database and settings, so
two apps live side by side in one process without a global Db or os.environ between them."""
import pytest

from lib import db as dbmod
from lib import migrate
from tests.client import Client
from tests.factories import make_user
from wsgi import make_app


@pytest.fixture
def two_databases(tmp_path):
    dbs = []
    for name in ("a", "b"):
        db = dbmod.Db(f"sqlite:{tmp_path / name}.sqlite")
        migrate.init(db)
        dbs.append(db)
    yield dbs
    for db in dbs:
        db.close()


def test_each_app_answers_from_its_own_database(two_databases):
    a, b = two_databases
    alice = make_user(a, "alice")
    app_a, app_b = Client(make_app(a)), Client(make_app(b))
    assert app_a.get("/api/auth-user.php", headers=alice["headers"]).json()["username"] == "alice"
    assert app_b.get("/api/auth-user.php", headers=alice["headers"]).status == 401  # b has no such key


def test_each_app_reads_its_own_settings(two_databases):
    a, _ = two_databases
    browser = {"Accept": "text/html"}
    named = Client(make_app(a, {"SITE_NAME": "Shop A"})).get("/", headers=browser)
    plain = Client(make_app(a)).get("/", headers=browser)
    assert "<title>" in named.text and "Shop A" in named.text
    assert "Shop A" not in plain.text


def test_settings_the_web_may_not_read_are_refused(two_databases):
    a, _ = two_databases
    with pytest.raises(KeyError, match="MNEMONIC"):
        Client(make_app(a, {"MNEMONIC": "test test test"})).get("/health.php")


def test_a_streamed_body_is_read_with_the_apps_database_and_settings(two_databases, monkeypatch):
    """The server reads a streamed body after the application returned: each chunk still
    sees the app's Db and settings, and the body is closed once read."""
    import wsgi
    from lib import env
    a, _ = two_databases
    closed = []

    def streaming(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])

        def chunks():
            try:
                for _ in range(2):
                    yield f"{dbmod.get_db() is a} {env.get('SITE_NAME')}\n".encode()
            finally:
                closed.append(True)
        return chunks()

    monkeypatch.setattr(wsgi, "application", streaming)
    body = make_app(a, {"SITE_NAME": "Shop A"})({"REQUEST_METHOD": "GET"}, lambda *args: None)
    assert b"".join(body) == b"True Shop A\nTrue Shop A\n"
    assert closed == [True]
