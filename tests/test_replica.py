"""The read replica (lib/replica.py) against a real MariaDB primary and replica.

The test starts two `mariadbd` (tests/mariadb_pair.py) and sets up replication between
them. To see which database a page read, the replica alone is given a different item
name (written on the replica directly, so it does not flow back): a page showing
"Replica copy" read the replica, one showing "Primary copy" read the primary.
With CI=true missing MariaDB binaries fail the test instead of skipping it.
"""
import time

import pytest

from lib import catalog_cache, db as dbmod
from lib import migrate, replica
from tests import market
from tests.client import Client
from tests.conftest import empty_tables, missing
from tests.factories import login, make_user
from tests.mariadb_pair import Pair, available

DATABASE = "mkt_h17_replica"
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def pair():
    if not available():
        missing("mariadbd / mariadb-install-db are not installed (apt-get install mariadb-server)")
    p = Pair().start()
    p.primary.sql(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    primary = dbmod.Db(p.primary.dsn(DATABASE), "root", "")
    migrate.init(primary)
    p.wait_caught_up()
    p.db = primary
    yield p
    primary.close()
    p.stop()


@pytest.fixture
def settings(pair):
    """The app's replica is the pair's replica."""
    return {"DB_REPLICA_DSN": pair.replica.dsn(DATABASE), "DB_REPLICA_USER": "root",
            "DB_REPLICA_CHECK_SECONDS": "0",      # check the replica on every request
            "DB_REPLICA_MAX_LAG": "1", "DB_REPLICA_STICKY_SECONDS": "7"}


@pytest.fixture
def replica_app(pair, settings):
    """make_app(settings) -> the app over the pair's primary with `settings` over the test's."""
    from wsgi import make_app
    return lambda more=None: make_app(pair.db, dict(settings, **(more or {})))


@pytest.fixture
def world(pair, monkeypatch):
    """An item named "Primary copy" everywhere and "Replica copy" on the replica only."""
    monkeypatch.setattr(replica, "_replica", None)
    empty_tables(pair.db)
    owner = make_user(pair.db, "vendor1", role="vendor")
    shop = market.store(pair.db, owner)
    item = market.item(pair.db, owner, shop["uuid"], name="Primary copy")
    market.package(pair.db, owner, item["uuid"])
    pair.wait_caught_up()
    pair.replica.sql(f"UPDATE {DATABASE}.items SET name = 'Replica copy' WHERE uuid = %s", (item["uuid"],))
    yield {"owner": owner, "store": shop, "item": item}
    replica._replica = None


def shown(client, path, **kw):
    # The rows differ behind replication's back (the catalog version does not move), so the
    # guests' page cache is emptied: each read here renders from the database chosen.
    catalog_cache.clear()
    r = client.get(path, headers=dict(HTML, **kw.pop("headers", {})))
    assert r.status == 200, r
    if "Replica copy" in r.text:
        return "replica"
    assert "Primary copy" in r.text, r.text[:500]
    return "primary"


def test_catalog_pages_and_listings_read_the_replica(replica_app, world):
    client = Client(replica_app())
    item, shop = world["item"], world["store"]
    assert shown(client, "/marketplace.php") == "replica"
    assert shown(client, f"/item.php?uuid={item['uuid']}") == "replica"
    assert shown(client, f"/store.php?uuid={shop['uuid']}") == "replica"
    r = client.get("/api/items.php")
    assert r.status == 200 and [i["name"] for i in r.json()["items"]] == ["Replica copy"]
    # An API client (no cookies) reads the primary: it sees what it has just written.
    r = client.get("/api/items.php", headers=world["owner"]["headers"])
    assert [i["name"] for i in r.json()["items"]] == ["Primary copy"]


def test_a_write_goes_to_the_primary_and_the_writer_reads_the_primary(replica_app, world, pair):
    client = Client(replica_app())
    assert shown(client, "/marketplace.php") == "replica"
    token = login(client, "vendor1")     # a POST: the login is written on the primary
    assert client.cookies.get(replica.READ_PRIMARY_COOKIE) == "1"
    r = client.post("/api/items.php", data={"csrf_token": token, "store_uuid": world["store"]["uuid"],
                                            "name": "Fresh item", "description": "just saved"})
    assert r.status in (200, 201), r
    assert pair.db.value("SELECT COUNT(*) FROM items WHERE name = 'Fresh item'") == 1
    set_cookie = [v for k, v in r.headers if k.lower() == "set-cookie" and replica.READ_PRIMARY_COOKIE in v]
    assert set_cookie and "Max-Age=7" in set_cookie[0]
    # Right after the write this client reads the primary: its new item is there.
    assert shown(client, "/marketplace.php") == "primary"
    assert "Fresh item" in client.get("/marketplace.php", headers=HTML).text
    # Another visitor still reads the replica (which has the new item by now too).
    other = Client(replica_app())
    pair.wait_caught_up()
    page = other.get("/marketplace.php", headers=HTML).text
    assert "Replica copy" in page and "Fresh item" in page


def test_stopped_replication_falls_back_to_the_primary(replica_app, world, pair):
    client = Client(replica_app())
    assert shown(client, "/marketplace.php") == "replica"
    pair.replica.sql("STOP SLAVE SQL_THREAD")   # Seconds_Behind_Master becomes NULL
    try:
        assert shown(client, "/marketplace.php") == "primary"
    finally:
        pair.replica.sql("START SLAVE SQL_THREAD")
    pair.wait_caught_up()
    assert shown(client, "/marketplace.php") == "replica"


def test_a_lagging_replica_falls_back_to_the_primary(replica_app, world, pair):
    client = Client(replica_app())
    pair.replica.sql("STOP SLAVE")
    pair.replica.sql("CHANGE MASTER TO MASTER_DELAY = 600")
    pair.replica.sql("START SLAVE")
    try:
        pair.db.execute("INSERT INTO config (name, value, updated_at) VALUES ('h17_lag', '1', ?)",
                        (dbmod.utc_now(),))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            lag = pair.replica_status()["Seconds_Behind_Master"]
            if lag is not None and lag > 1:      # above DB_REPLICA_MAX_LAG
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the replica did not fall behind: {pair.replica_status()}")
        assert shown(client, "/marketplace.php") == "primary"
    finally:
        pair.replica.sql("STOP SLAVE")
        pair.replica.sql("CHANGE MASTER TO MASTER_DELAY = 0")
        pair.replica.sql("START SLAVE")
        pair.db.execute("DELETE FROM config WHERE name = 'h17_lag'")
    pair.wait_caught_up()
    assert shown(client, "/marketplace.php") == "replica"


def test_a_replica_that_is_down_falls_back_to_the_primary(replica_app, world, pair):
    # The replica's health is known good for a minute: it dies within that minute.
    replica._replica = None
    client = Client(replica_app({"DB_REPLICA_CHECK_SECONDS": "60"}))
    assert shown(client, "/marketplace.php") == "replica"
    pair.replica.stop()                  # the last test of the module: the server stays down
    started = time.monotonic()
    # The page's first statement on the replica fails: it runs on the primary instead.
    assert shown(client, "/marketplace.php") == "primary"
    assert [i["name"] for i in client.get("/api/items.php").json()["items"]] == ["Primary copy"]
    # Checked on every request, the replica that refuses connections is skipped at once.
    replica._replica = None
    client = Client(replica_app({"DB_REPLICA_CHECK_SECONDS": "0"}))
    assert shown(client, f"/item.php?uuid={world['item']['uuid']}") == "primary"
    assert not replica.replica().healthy()
    assert time.monotonic() - started < 5

