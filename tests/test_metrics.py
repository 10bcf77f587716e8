"""/metrics (lib/metrics.py): the Prometheus text parses, request counters move, only
METRICS_ALLOW may read it, the cron figures come from the database (both databases),
and under real uwsgi with two worker processes the counts of both add up."""
import datetime
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.localstack import Stack, StackError
from lib import db as dbmod
from lib import migrate
from lib.db import utc_now
from tests import market
from tests.client import Client
from tests.stacks import need_stack_tools, settled_request_count


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition (parsing it is the test that
    it is valid Prometheus text)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def settings():
    return {"METRICS_ALLOW": "127.0.0.1, 10.9.0.0/16"}


def scrape(client):
    r = client.get("/metrics")
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4")
    return r.text


def test_requests_are_counted_by_script_and_status(app, db):
    client = Client(app)
    before = scrape(client)
    for _ in range(3):
        assert client.get("/vendors.php", headers={"Accept": "text/html"}).status == 200
    assert client.get("/item.php").status == 400          # uuid missing
    assert client.get("/no-such-page.php").status == 404
    after = scrape(client)
    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert moved("marketplace_http_requests_total", script="vendors", status="200") == 3
    assert moved("marketplace_http_requests_total", script="item", status="400") == 1
    assert moved("marketplace_http_requests_total", script="none", status="404") == 1
    assert moved("marketplace_http_request_duration_seconds_count", script="vendors") == 3
    assert moved("marketplace_http_request_duration_seconds_sum", script="vendors") > 0


def test_guest_reads_answered_from_the_catalog_cache_are_counted(app, db):
    from lib import catalog_cache
    import time
    market.world(db)
    while not catalog_cache._settled(catalog_cache.version(db)):   # so that the render is kept
        time.sleep(0.2)
    catalog_cache.clear()
    client = Client(app)
    before = scrape(client)
    for _ in range(3):
        assert client.get("/api/items.php").status == 200   # rendered, then from the cache
    assert catalog_cache._entries
    after = scrape(client)
    assert value(after, "marketplace_http_requests_total", script="api/items", status="200") \
        - value(before, "marketplace_http_requests_total", script="api/items", status="200") == 3
    assert value(after, "marketplace_http_request_duration_seconds_count", script="api/items") \
        - value(before, "marketplace_http_request_duration_seconds_count", script="api/items") == 3


def test_only_addresses_in_metrics_allow_get_metrics(app, db, make_client):
    assert Client(app, remote_addr="10.9.3.4").get("/metrics").status == 200
    for outside in ("10.8.0.1", "192.0.2.1", "::1"):
        r = Client(app, remote_addr=outside).get("/metrics")
        assert r.status == 404 and "marketplace_" not in r.text
    # An X-Forwarded-For from an untrusted peer changes nothing.
    r = Client(app, remote_addr="192.0.2.1").get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    assert r.status == 404
    assert make_client({"METRICS_ALLOW": ""}).get("/metrics").status == 404


def ago(seconds):
    return (datetime.datetime.now(datetime.timezone.utc)
            - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def test_cron_figures_are_read_from_the_database(app, db):
    w = market.world(db)
    open_order = market.order(db, w, status="COMPLETED")
    db.insert("transaction_intents", {"uuid": "i-open", "transaction_uuid": open_order,
                                      "action": "RELEASE", "status": "pending", "created_at": utc_now(),
                                      "updated_at": utc_now()})
    db.insert("transaction_intents", {"uuid": "i-failed", "transaction_uuid": open_order,
                                      "action": "CANCEL", "status": "failed", "error": "refused",
                                      "created_at": utc_now(), "updated_at": utc_now()})
    db.insert("cron_runs", {"started_at": ago(90), "finished_at": ago(88), "duration_ms": 2345, "ok": 0,
                            "summary": json.dumps({"duty_ms": {"poll": 1200, "payouts": 845}}),
                            "errors": json.dumps(["payouts: RpcError: timeout", "payouts: again",
                                                  "prices: HTTP 503"])})
    db.insert("cron_runs", {"started_at": ago(30), "ok": 0})     # still running: not the newest finished
    db.upsert("chain_heads", {"chain_id": 1}, {"block_number": 19000000, "seen_at": ago(40),
                                               "gas_station_balance": "250000000000000000"})
    text = scrape(Client(app))
    assert value(text, "marketplace_cron_last_run_duration_seconds") == 2.345
    assert 88 <= value(text, "marketplace_cron_last_run_age_seconds") <= 120
    assert value(text, "marketplace_cron_duty_errors", duty="payouts") == 2
    assert value(text, "marketplace_cron_duty_errors", duty="prices") == 1
    assert value(text, "marketplace_cron_duty_duration_seconds", duty="poll") == 1.2
    assert value(text, "marketplace_cron_duty_duration_seconds", duty="payouts") == 0.845
    assert value(text, "marketplace_cron_failed_runs_last_hour") == 1
    assert value(text, "marketplace_intents_open", chain_id="1") == 1
    assert value(text, "marketplace_gas_station_balance", chain_id="1", symbol="ETH") == 0.25
    assert value(text, "marketplace_chain_head_block", chain_id="1") == 19000000
    assert 40 <= value(text, "marketplace_chain_head_age_seconds", chain_id="1") <= 70
    assert ("marketplace_intents_needing_attention", frozenset({("chain_id", "1")})) in samples(text)
    assert ("marketplace_payouts_waiting", frozenset({("chain_id", "1")})) in samples(text)


def test_under_uwsgi_the_counts_of_both_workers_add_up():
    need_stack_tools()
    tmp = tempfile.mkdtemp(prefix="mkt-metrics-")
    db = dbmod.Db(f"sqlite:{tmp}/web.sqlite")
    migrate.init(db)
    env = {"ENV_FILE": os.path.join(tmp, "none.env"), "DB_DSN": db.dsn, "SESSION_SALT": "s" * 32,
           "CSRF_SALT": "x" * 32, "LOG_LEVEL": "WARNING", "METRICS_ALLOW": "127.0.0.1",
           "PROMETHEUS_MULTIPROC_DIR": os.path.join(tmp, "metrics")}
    s = Stack(env=env, tmp=tmp, processes=2, threads=2)
    try:
        s.start()
    except StackError as e:
        pytest.fail(str(e))
    try:
        def served_by_worker():
            return {w["id"]: w["requests"] for w in s.stats()["workers"]}
        settled_request_count(s)
        before_workers = served_by_worker()
        before = value(s.request("GET", "/metrics")[2].decode(), "marketplace_http_requests_total",
                       script="vendors", status="200")
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: s.request("GET", "/vendors.php")[0], range(60)))
        assert statuses == [200] * 60
        settled_request_count(s)
        after_workers = served_by_worker()
        assert all(after_workers[w] > before_workers.get(w, 0) for w in after_workers), \
            (before_workers, after_workers)
        # Whichever worker answers the scrape, it reports both workers' requests.
        for _ in range(4):
            text = s.request("GET", "/metrics")[2].decode()
            assert value(text, "marketplace_http_requests_total", script="vendors", status="200") - before == 60
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_grafana_dashboard_uses_only_metrics_that_exist(app, db):
    import re
    with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "deploy", "grafana-dashboard.json")) as f:
        dashboard = json.load(f)
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"marketplace_[a-z_]+", target["expr"])}
    db.insert("cron_runs", {"started_at": ago(60), "finished_at": ago(59), "duration_ms": 1000, "ok": 0,
                            "summary": json.dumps({"duty_ms": {"poll": 10}}), "errors": json.dumps(["poll: x"])})
    db.upsert("chain_heads", {"chain_id": 1}, {"block_number": 5, "seen_at": ago(5),
                                               "gas_station_balance": "1"})
    client = Client(app)
    client.get("/")
    exposed = {name for name, _labels in samples(scrape(client))}
    assert used and used <= exposed, used - exposed


def test_a_database_that_cannot_be_read_is_reported_not_a_500(app, db, monkeypatch):
    text = scrape(Client(app))
    assert value(text, "marketplace_database_up") == 1
    monkeypatch.setattr(db, "one", lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("database gone")))
    r = Client(app).get("/metrics")
    assert r.status == 200
    assert value(r.text, "marketplace_database_up") == 0
    assert "marketplace_cron_last_run_duration_seconds" not in r.text
    assert ("marketplace_http_requests_total", frozenset({("script", "metrics"), ("status", "200")})) in samples(r.text)
