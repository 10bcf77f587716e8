"""Two web nodes behind one nginx (deploy/nginx.conf's upstream with two uwsgi
instances, deploy/localstack.py Stack(nodes=2)), on SQLite and on MariaDB.

Each check repeats its step over many requests and reads both instances' own request
counters (their stats sockets): both nodes answered, and the session, the CSRF token,
the login and key limits and the guests' catalog cache behaved the same whichever did. With CI=true missing nginx/uwsgi
fail instead of skipping.
"""
import json
import re

import pytest

from lib import users
from tests import stacks
from tests.factories import make_user
from tests.stacks import settled_request_count
from tests.test_deploy import Browser, unique

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def nodes(request):
    with stacks.started(request, "mkt-2nodes-", processes=1, nodes=2) as ([s], db):
        yield s, db


class Counts:
    """Requests each node answered while the block ran."""

    def __init__(self, stack):
        self.stack = stack

    def __enter__(self):
        self.before = [settled_request_count(_Node(self.stack, n)) for n in (1, 2)]
        return self

    def __exit__(self, *exc):
        after = [settled_request_count(_Node(self.stack, n)) for n in (1, 2)]
        self.served = [a - b for a, b in zip(after, self.before)]


class _Node:
    """settled_request_count() of one node."""

    def __init__(self, stack, node):
        self.stack, self.node = stack, node

    def stats(self):
        return self.stack.stats(self.node)


def test_the_upstream_spreads_requests_over_both_nodes(nodes):
    s, _db = nodes
    with Counts(s) as counts:
        for _ in range(10):
            assert s.request("GET", "/")[0] == 200
    assert counts.served[0] >= 1 and counts.served[1] >= 1, counts.served
    assert sum(counts.served) == 10


def test_a_session_and_its_csrf_token_work_on_either_node(nodes):
    s, db = nodes
    user = make_user(db, unique("two"))
    b = Browser(s)
    status, _h, page = b.request("GET", "/login.php", headers=HTML)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    status, _h, body = b.request("POST", "/login.php", headers=HTML, form={
        "username": user["username"], "password": user["password"], "csrf_token": token})
    assert status == 303, body
    with Counts(s) as counts:
        for _ in range(8):
            status, _h, body = b.request("GET", "/api/auth-user.php")
            assert status == 200 and json.loads(body)["username"] == user["username"], body
    assert min(counts.served) >= 1, counts.served
    status, _h, body = b.request("GET", "/api/auth-user.php")
    csrf_token = json.loads(body)["csrf_token"]
    # The token one node handed out is accepted by both; without it both refuse.
    with Counts(s) as counts:
        for i in range(6):
            status, _h, body = b.request("POST", "/api/keys.php", form={"name": f"k{i}", "csrf_token": csrf_token})
            assert status == 200, body
            status, _h, body = b.request("POST", "/api/keys.php", form={"name": f"bad{i}"},
                                         headers={"Sec-Fetch-Site": "same-origin"})
            assert status == 403, body
    assert min(counts.served) >= 2, counts.served
    assert db.value("SELECT COUNT(*) FROM api_keys WHERE user_uuid = ? AND name LIKE 'k%'", (user["uuid"],)) == 6
    assert db.value("SELECT COUNT(*) FROM api_keys WHERE user_uuid = ? AND name LIKE 'bad%'", (user["uuid"],)) == 0


def test_the_login_limit_counts_failures_on_both_nodes_together(nodes):
    s, db = nodes
    user = make_user(db, unique("lim"))
    source = "127.0.0.%d" % (20 + (1 if db.is_sqlite else 2))   # an address of its own
    statuses = []
    with Counts(s) as counts:
        for _ in range(users.LOGIN_FAILS_PER_USERNAME_IP + 3):
            status, _h, _b = Browser(s, source=source).request(
                "POST", "/login.php", form={"username": user["username"], "password": "wrong password"})
            statuses.append(status)
    assert min(counts.served) >= 2, counts.served
    limit = users.LOGIN_FAILS_PER_USERNAME_IP
    assert 429 not in statuses[:limit] and statuses[limit:] == [429] * 3, statuses
    # Even the right password waits now, whichever node answers.
    for _ in range(2):
        status, _h, _b = Browser(s, source=source).request(
            "POST", "/login.php", form={"username": user["username"], "password": user["password"]})
        assert status == 429


def test_the_api_key_rate_limit_is_one_count_over_both_nodes(nodes):
    from lib import api_keys
    s, db = nodes
    user = make_user(db, unique("rate"))
    statuses = []
    with Counts(s) as counts:
        for _ in range(api_keys.RATE_LIMIT + 3):
            status, _h, _b = s.request("GET", "/api/auth-user.php", headers=user["headers"])
            statuses.append(status)
    assert min(counts.served) >= 2, counts.served
    assert statuses == [200] * api_keys.RATE_LIMIT + [429] * 3, statuses


def test_the_catalog_cache_serves_the_same_page_on_both_nodes_and_no_stale_one(nodes):
    import time

    from lib import catalog, catalog_cache
    from tests import market
    s, db = nodes
    owner = make_user(db, unique("cat"), role="vendor")
    shop = market.store(db, owner, unique("shop")[:16])
    market.item(db, owner, shop["uuid"], name="first thing")
    url = "/api/items.php?store_uuid=" + shop["uuid"]
    while not catalog_cache._settled(catalog_cache.version(db)):   # so that both nodes keep it
        time.sleep(0.2)

    def reads(n=8, headers=None):
        out = []
        for _ in range(n):
            status, got, body = s.request("GET", url, headers=headers)
            out.append((status, dict((k.lower(), v) for k, v in got).get("etag"), body))
        return out
    with Counts(s) as counts:
        first = reads()
    assert min(counts.served) >= 1, counts.served
    assert {(st, tag) for st, tag, _ in first} == {(200, first[0][1])}   # one body, one ETag, both nodes
    with Counts(s) as counts:                     # a tag one node gave is a 304 on the other
        assert {st for st, _t, _b in reads(headers={"If-None-Match": first[0][1]})} == {304}
    assert min(counts.served) >= 1, counts.served
    catalog.create_item(db, owner, shop["uuid"], "second thing", "new", None)
    with Counts(s) as counts:
        after = reads()
    assert min(counts.served) >= 1, counts.served
    assert all(st == 200 and b"second thing" in body for st, _t, body in after)   # no node serves the old page
