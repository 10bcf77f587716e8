"""Agent identity: `X-Agent-Identity` verified against a local fake
identity provider (http.server in a thread): off unless configured, valid and invalid
tokens, the user made on first use, the one-minute cache, the API key rate limit of the
agent's own, AGENT_IDENTITY_SCOPES, and a provider that is down, slow or talks nonsense
(503, never 500). SQLite and MariaDB."""
import http.server
import json
import threading
import time

import pytest

from lib import agent_identity, api_keys
from tests.conftest import free_port
from tests.factories import make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

AGENTS = {"tok-alice": ("agent-1", "Alice Agent"), "tok-alice2": ("agent-2", "Alice Agent"),
          "tok-long": ("agent-3", "A very long agent name, with punctuation!"), "tok-blank": ("agent-4", "")}


class Provider:
    def __init__(self):
        self.calls = []
        self.delay = 0
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                provider.calls.append((self.headers.get("Content-Type"), body))
                token = body.get("token")
                if provider.delay:
                    time.sleep(provider.delay)
                if token in AGENTS:
                    agent_id, name = AGENTS[token]
                    self.answer(200, {"valid": True, "agent_id": agent_id, "name": name})
                elif token == "boom":
                    self.answer(500, {"error": "down"})
                elif token == "garbage":
                    self.answer(200, b"<html>not json</html>")
                elif token == "reject":
                    self.answer(401, {"valid": False})
                else:
                    self.answer(200, {"valid": False})

            def answer(self, status, obj):
                data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/verify"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    p = Provider()
    agent_identity.clear_cache()
    yield p
    agent_identity.clear_cache()
    p.stop()


@pytest.fixture
def settings(request):
    """The app asks the test's provider, when the test starts one (else none is configured)."""
    if "provider" not in request.fixturenames:
        return {"AGENT_IDENTITY_VERIFY_URL": None}
    return {"AGENT_IDENTITY_VERIFY_URL": request.getfixturevalue("provider").url,
            "AGENT_IDENTITY_SCOPES": None, "AGENT_IDENTITY_TIMEOUT": "1"}


def me(client, token, **headers):
    return client.get("/api/auth-user.php", headers={"X-Agent-Identity": token, **headers})


def test_off_unless_configured(client, db):
    agent_identity.clear_cache()
    r = me(client, "tok-alice")
    assert r.status == 401 and "authentication required" in r.json()["error"]
    assert db.value("SELECT COUNT(*) FROM users") == 0


def test_valid_token_is_a_user_made_on_first_use_and_cached(client, db, provider):
    r = me(client, "tok-alice")
    assert r.status == 200, r
    body = r.json()
    assert body["username"] == "Alice-Agent" and body["role"] == "customer"
    assert provider.calls == [("application/json", {"token": "tok-alice"})]
    user = db.one("SELECT * FROM users WHERE uuid = ?", (body["user_uuid"],))
    assert user["role"] == "customer" and user["username"] == "Alice-Agent"
    row = db.one("SELECT * FROM api_keys WHERE agent_id = 'agent-1'")
    assert row["user_uuid"] == body["user_uuid"] and row["scopes"] == "full"
    # the same agent again: same user, and the provider is not asked again within the minute
    for _ in range(3):
        assert me(client, "tok-alice").json()["user_uuid"] == body["user_uuid"]
    assert len(provider.calls) == 1
    assert db.value("SELECT COUNT(*) FROM users") == 1
    # after the cache expires the provider is asked again, and it is still the same user
    agent_identity.clear_cache()
    assert me(client, "tok-alice").json()["user_uuid"] == body["user_uuid"]
    assert len(provider.calls) == 2
    # the agent's limiter row is not a key: not listed, not revocable, not usable as a key
    r = client.get("/api/keys.php", headers={"X-Agent-Identity": "tok-alice"})
    assert r.status == 200 and r.json()["keys"] == []
    r = client.post("/api/keys-revoke.php", data={"id": str(row["id"])}, headers={"X-Agent-Identity": "tok-alice"})
    assert r.status == 404
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'agent_user_created'") == 1


def test_agent_users_get_unique_usernames_and_cannot_log_in_with_a_password(client, db, provider):
    make_user(db, "Agent")
    a = me(client, "tok-alice").json()
    b = me(client, "tok-alice2").json()           # another agent with the same name
    c = me(client, "tok-long").json()
    d = me(client, "tok-blank").json()
    assert a["username"] == "Alice-Agent" and b["username"] == "Alice-Agent-2"
    assert c["username"] == "A-very-long-agen" and len(c["username"]) <= 16
    assert d["username"] == "agent-2"              # "agent" is taken (case-insensitively)
    assert len({a["user_uuid"], b["user_uuid"], c["user_uuid"], d["user_uuid"]}) == 4
    for password in ("", "!agent-identity", "password123"):
        r = client.post("/login.php", data={"username": "Alice-Agent", "password": password})
        assert r.status in (400, 401), (password, r)


def test_invalid_tokens_are_401(client, db, provider):
    for token in ("nope", "reject", "x" * 5000):
        r = me(client, token)
        assert r.status == 401 and r.json()["error"] == "invalid agent identity token", token
    assert db.value("SELECT COUNT(*) FROM users") == 0
    # an invalid answer is cached too: a retrying agent does not hammer the provider
    calls = len(provider.calls)
    assert me(client, "nope").status == 401 and len(provider.calls) == calls


@pytest.mark.parametrize("token", ["boom", "garbage", "slow", "down"])
def test_provider_trouble_is_503_with_a_clear_message(client, db, provider, token, make_client):
    if token == "slow":
        provider.delay = 2                   # longer than AGENT_IDENTITY_TIMEOUT=1
        token = "tok-alice"
    if token == "down":
        provider.stop()
        client = make_client({"AGENT_IDENTITY_VERIFY_URL": f"http://127.0.0.1:{free_port()}/verify"})
        token = "tok-alice"
    r = me(client, token)
    assert r.status == 503, r
    assert r.json()["error"] == "the agent identity provider is unavailable; try again later"
    assert r.header("Retry-After")
    assert db.value("SELECT COUNT(*) FROM users") == 0
    if token == "tok-alice" and provider.delay:
        provider.delay = 0
        assert me(client, token).status == 200      # trouble is not cached


def test_agents_are_rate_limited_like_a_key_of_their_own(client, db, provider):
    user = make_user(db, "bob")
    assert me(client, "tok-alice").status == 200
    key_id = db.value("SELECT id FROM api_keys WHERE agent_id = 'agent-1'")
    now_ms = int(time.time() * 1000)
    times = db.value("SELECT request_times FROM api_keys WHERE id = ?", (key_id,))
    earlier = "".join(f"{now_ms - 1000 - i:013d}" for i in range(api_keys.RATE_LIMIT - 2, 0, -1))
    db.execute("UPDATE api_keys SET request_times = ? WHERE id = ?", (earlier + times, key_id))  # 58 more
    assert me(client, "tok-alice").status == 200   # the 60th
    r = me(client, "tok-alice")
    assert r.status == 429 and r.header("Retry-After") and "rate limit" in r.json()["error"]
    # a key of another user is not affected, nor another agent
    assert client.get("/api/auth-user.php", headers=user["headers"]).status == 200
    assert me(client, "tok-alice2").status == 200


def test_scopes_of_agents(client, db, provider, make_client):
    store = {"storename": "agentshop", "description": "d", "vendorship_agree": "1"}
    r = client.post("/api/stores.php", data=store, headers={"X-Agent-Identity": "tok-alice"})
    assert r.status == 200, r                      # full by default
    client = make_client({"AGENT_IDENTITY_SCOPES": "read,orders"})
    store["storename"] = "another"
    r = client.post("/api/stores.php", data=store, headers={"X-Agent-Identity": "tok-alice"})
    assert r.status == 403 and r.json()["error"] == "this API key lacks the 'store' scope"
    assert client.get("/api/transactions.php", headers={"X-Agent-Identity": "tok-alice"}).status == 200


def test_other_credentials_win_and_banned_agents_are_refused(client, db, provider):
    bob = make_user(db, "bob")
    r = me(client, "tok-alice", Authorization=bob["headers"]["Authorization"])
    assert r.json()["username"] == "bob" and provider.calls == []
    uuid = me(client, "tok-alice").json()["user_uuid"]
    from lib import users
    users.set_banned(db, uuid, True)
    r = me(client, "tok-alice")
    assert r.status == 403 and "banned" in r.json()["error"]


@pytest.fixture
def patient(settings):
    """A provider timeout for eight verifications at once on a busy machine (the module's
    1 s is for the test of a provider slower than it)."""
    settings["AGENT_IDENTITY_TIMEOUT"] = "10"


def test_concurrent_first_requests_make_one_user(db, provider, patient, live_server):
    import urllib.request
    results = []

    def call():
        req = urllib.request.Request(live_server + "/api/auth-user.php", headers={"X-Agent-Identity": "tok-alice"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                results.append((resp.status, json.loads(resp.read())["user_uuid"]))
        except Exception as e:      # noqa: BLE001 (recorded and asserted below)
            results.append((getattr(e, "code", None), str(e)))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _ in results] == [200] * 8, results
    assert len({u for _, u in results}) == 1
    assert db.value("SELECT COUNT(*) FROM users") == 1
    assert db.value("SELECT COUNT(*) FROM api_keys WHERE agent_id = 'agent-1'") == 1
