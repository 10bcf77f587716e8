"""Prometheus metrics (served by public/metrics.py at /metrics).

Web side, counted by wsgi.application for every request:
  marketplace_http_requests_total{script, status}
  marketplace_http_request_duration_seconds{script}   (a histogram; streamed bodies:
                                                       until the first byte)
`script` is the public/ script that answered (`item`, `api/transactions`), `static`
or `none` (no script: 404), never the raw path, so clients cannot add label values.

Under uwsgi every worker is its own process: with PROMETHEUS_MULTIPROC_DIR set (a
directory only the web user writes, emptied before uwsgi starts) prometheus_client
writes each worker's values to files there and a scrape adds them up, whichever
worker answers it. The systemd unit points it at /run/marketplace/metrics, which systemd
empties at every start (a reload keeps it: counters of replaced workers still count). Without it (the development server) values live in the process.

Cron side, read from the database at scrape time (so any number of cron hosts can share
one database and whichever web node is scraped tells the same): the last run's duration
and age, errors per duty in the last run, runs failed in the last hour, open intents,
intents needing attention, payouts waiting, gas-station balance and the age of the head
block cron last saw, per chain.
"""
import datetime
import ipaddress
import json
import logging
import os
from decimal import Decimal

from lib import env

env.load()  # PROMETHEUS_MULTIPROC_DIR from .env must be in os.environ before the import
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], mode=0o700, exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4  # noqa: E402

# What generate_latest() writes: the classic text format every Prometheus reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
log = logging.getLogger("metrics")

REQUESTS = Counter("marketplace_http_requests", "HTTP requests answered, by script and status",
                   ["script", "status"])
LATENCY = Histogram("marketplace_http_request_duration_seconds",
                    "Time to answer a request (to the first byte of a streamed body), by script",
                    ["script"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def multiprocess():
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


_series = {}   # (script, status) -> its counter and histogram (labels() looks them up and locks)


def observe(script, status, seconds):
    series = _series.get((script, status))
    if series is None:
        series = _series[(script, status)] = (REQUESTS.labels(script, str(status)), LATENCY.labels(script))
    series[0].inc()
    series[1].observe(seconds)


def allowed(address):
    """Whether `address` is in METRICS_ALLOW (comma-separated addresses or networks;
    empty: nobody)."""
    try:
        addr = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    for part in (env.get("METRICS_ALLOW") or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if addr in ipaddress.ip_network(part, strict=False):
                return True
        except ValueError:
            continue  # a typo in one entry does not open or close the others
    return False


def _age_seconds(stamp, now):
    then = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return max(0, int((now - then).total_seconds()))


def _duty(error):
    """cron records errors as 'duty: message'."""
    return error.split(":", 1)[0].strip() or "unknown"


class CronCollector:
    """The cron figures, read from the database when Prometheus scrapes."""

    def __init__(self, db):
        self.db = db

    def collect(self):
        from lib import staff  # the operator figures /health.php shows
        db = self.db
        now = datetime.datetime.now(datetime.timezone.utc)
        last = db.one("SELECT id, started_at, finished_at, duration_ms, ok, summary, errors FROM cron_runs "
                      "WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1")
        duration = GaugeMetricFamily("marketplace_cron_last_run_duration_seconds",
                                     "Duration of the newest finished cron run")
        age = GaugeMetricFamily("marketplace_cron_last_run_age_seconds",
                                "Seconds since the newest finished cron run started")
        duty_errors = GaugeMetricFamily("marketplace_cron_duty_errors",
                                        "Errors per duty in the newest finished cron run", labels=["duty"])
        duty_duration = GaugeMetricFamily("marketplace_cron_duty_duration_seconds",
                                          "How long each duty took in the newest finished cron run",
                                          labels=["duty"])
        if last:
            duration.add_metric([], (last["duration_ms"] or 0) / 1000)
            age.add_metric([], _age_seconds(last["started_at"], now))
            per_duty = {}
            try:
                errors = json.loads(last["errors"]) if last["errors"] else []
            except ValueError:
                errors = ["unknown: unreadable errors"]
            for error in errors if isinstance(errors, list) else []:
                per_duty[_duty(str(error))] = per_duty.get(_duty(str(error)), 0) + 1
            for duty, n in sorted(per_duty.items()):
                duty_errors.add_metric([duty], n)
            try:
                timings = (json.loads(last["summary"]) if last["summary"] else {}).get("duty_ms") or {}
            except (ValueError, AttributeError):
                timings = {}
            for duty, ms in sorted(timings.items()):
                if isinstance(ms, int):
                    duty_duration.add_metric([str(duty)], ms / 1000)
        since = (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        failed = GaugeMetricFamily("marketplace_cron_failed_runs_last_hour",
                                   "Finished cron runs with an error in the last hour")
        failed.add_metric([], int(db.value("SELECT COUNT(*) FROM cron_runs WHERE started_at >= ? "
                                           "AND finished_at IS NOT NULL AND ok = 0", (since,)) or 0))
        yield from (duration, age, duty_errors, duty_duration, failed)

        figures = staff.payout_figures(db)
        # Every chain cron knows gets a value, 0 included (a missing series is not a zero).
        open_per_chain = {c["chain_id"]: 0 for c in figures["chains"]}
        for row in db.query("SELECT e.chain_id AS chain_id, COUNT(*) AS n FROM transaction_intents i "
                            "JOIN evm_transactions e ON e.transaction_uuid = i.transaction_uuid "
                            "WHERE i.status IN ('pending', 'processing') GROUP BY e.chain_id"):
            open_per_chain[int(row["chain_id"])] = int(row["n"])
        open_intents = GaugeMetricFamily("marketplace_intents_open",
                                         "Intents pending or processing, per chain", labels=["chain_id"])
        for chain_id, n in sorted(open_per_chain.items()):
            open_intents.add_metric([str(chain_id)], n)
        yield open_intents

        attention = GaugeMetricFamily("marketplace_intents_needing_attention",
                                      "Intents staff must act on, per chain", labels=["chain_id"])
        waiting = GaugeMetricFamily("marketplace_payouts_waiting",
                                    "Payouts signed or broadcast and not yet confirmed, per chain",
                                    labels=["chain_id"])
        balance = GaugeMetricFamily("marketplace_gas_station_balance",
                                    "Gas station balance in the chain's coin, as cron last read it",
                                    labels=["chain_id", "symbol"])
        head_age = GaugeMetricFamily("marketplace_chain_head_age_seconds",
                                     "Seconds since cron last saw the chain's head block (head block lag)",
                                     labels=["chain_id"])
        head_block = GaugeMetricFamily("marketplace_chain_head_block", "The newest block cron saw",
                                       labels=["chain_id"])
        for c in figures["chains"]:
            chain = str(c["chain_id"])
            attention.add_metric([chain], c["intents_needing_attention"])
            waiting.add_metric([chain], c["waiting"])
            if c["gas_station_balance"] is not None:
                # Prometheus values are floats: the exact balance is on /health.php and staff pages.
                balance.add_metric([chain, c["native_symbol"]], float(Decimal(c["gas_station_balance"])))
            if c["seen_at"]:
                head_age.add_metric([chain], _age_seconds(c["seen_at"], now))
            if c["head_block"] is not None:
                head_block.add_metric([chain], int(c["head_block"]))
        yield from (attention, waiting, balance, head_age, head_block)


def exposition(db):
    """The /metrics body: the web counters (every worker's, in multiprocess mode), the
    cron figures and `marketplace_database_up` (0, and no cron figures, when the database
    cannot be read: the scrape still succeeds and says so)."""
    if multiprocess():
        from prometheus_client import multiprocess as mp
        web = CollectorRegistry()
        mp.MultiProcessCollector(web)
    else:
        web = REGISTRY
    cron = CollectorRegistry()
    cron.register(CronCollector(db))
    up = GaugeMetricFamily("marketplace_database_up", "1 when the database answered this scrape")
    try:
        figures = generate_latest(cron)
        up.add_metric([], 1)
    except Exception as e:
        log.warning("metrics: the database could not be read: %s: %s", type(e).__name__, e)
        figures = b""
        up.add_metric([], 0)
    status = CollectorRegistry()
    status.register(_Fixed([up]))
    return generate_latest(web) + figures + generate_latest(status)


class _Fixed:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families
