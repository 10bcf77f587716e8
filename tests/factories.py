"""Test factories for users, API keys and session logins (used by every test module).

    user = make_user(db, "alice", role="vendor")
    client.get("/api/transactions.php", headers=user["headers"])     # API key
    token = login(client, "alice")                                   # session
    client.post("/api/keys.php", data={"name": "x", "csrf_token": token})
"""
from lib import api_keys, users

DEFAULT_PASSWORD = "password123"


def make_user(db, username, role="customer", password=DEFAULT_PASSWORD, invite=None, banned=False):
    """Create a user with an API key. Returns the user dict plus `api_key`, `password`
    and `headers` ({"Authorization": "Bearer <key>"})."""
    user = users.create_user(db, username, password, role=role, invite=invite)
    key, row = api_keys.create_key(db, user["uuid"], "test")
    if banned:
        user = users.set_banned(db, user["uuid"], True)
    user["api_key"] = key
    user["api_key_id"] = row["id"]
    user["password"] = password
    user["headers"] = {"Authorization": f"Bearer {key}"}
    return user


def login(client, username, password=DEFAULT_PASSWORD):
    """Log the in-process client in by session cookie; return the session's CSRF token."""
    r = client.post("/login.php", data={"username": username, "password": password})
    assert r.status == 200, r
    r = client.get("/api/auth-user.php")
    assert r.status == 200, r
    return r.json()["csrf_token"]
