"""Login and registration limits are exact under concurrency (the
attempt is reserved before the password is checked), on SQLite and MariaDB."""
from lib import users
from tests.concurrency import at_once, post
from tests.factories import make_user
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)


def test_concurrent_wrong_passwords_get_exactly_the_limit(live_server, db):
    make_user(db, "alice")
    statuses = at_once(40, lambda i: post(live_server + "/login.php",
                                          {"username": "alice", "password": f"wrong-{i}-pass"}))
    assert statuses.count(401) == users.LOGIN_FAILS_PER_USERNAME_IP, statuses
    assert statuses.count(429) == 40 - users.LOGIN_FAILS_PER_USERNAME_IP, statuses
    assert db.value("SELECT COUNT(*) FROM login_attempts WHERE kind = 'login' AND success = 0") \
        == users.LOGIN_FAILS_PER_USERNAME_IP


def test_concurrent_registrations_get_exactly_the_limit(live_server, db):
    statuses = at_once(30, lambda i: post(live_server + "/register.php",
                                          {"username": f"newbie{i}", "password": "password123"}))
    assert statuses.count(200) == users.REGISTRATIONS_PER_IP, statuses
    assert statuses.count(429) == 30 - users.REGISTRATIONS_PER_IP, statuses
    assert db.value("SELECT COUNT(*) FROM users") == users.REGISTRATIONS_PER_IP


def test_a_stranger_cannot_lock_a_user_out(live_server, app, db):
    """Concurrent wrong passwords from a stranger's address lock out that address only."""
    from tests.client import Client
    make_user(db, "bob")
    statuses = at_once(20, lambda i: post(live_server + "/login.php",
                                          {"username": "bob", "password": f"guess-{i}-xx"}))
    assert 429 in statuses and 200 not in statuses
    # live_server clients come from 127.0.0.1; bob logs in from his own address
    bob = Client(app, remote_addr="192.0.2.10")
    assert bob.post("/login.php", data={"username": "bob", "password": "password123"}).status == 200
