"""Cron on several hosts: database leases per duty and chain.

Unit tests of cron/leases.py on both databases (exclusive, atomic under a race of many
processes' connections, expiry, renewal, a lost lease's holder changes nothing), and
cron processes sharing one MariaDB against anvil: the payouts lease holder SIGKILLed in
the middle of payouts, the other host waits out the expiry and carries on, every
recipient paid exactly once on chain; a long run keeps its lease by renewing it;
per-chain workers on two chains run side by side.
"""
import re
import signal
import threading
import time

import pytest

from cron import leases
from lib import db as dbmod
from lib import intents
from lib import status_machine as sm
from tests.chain import AnvilNode, fresh_address
from tests.conftest import empty_tables
from tests.cron_support import (Parties, cron_env, cron_subprocess, escrow, fees, intent_row, make_order,
                                paid_order, payout_rows, run_cron, status)

ETH = 10 ** 18
SEPOLIA = 11155111


def other_connection(db):
    """A second Db on the same database (as another host would have)."""
    return dbmod.Db(db.dsn, db.user, db.password)


# -- the lease table ------------------------------------------------------------------

def test_a_lease_is_held_by_one_holder_until_released(db):
    a = leases.Leases(db, "host-a:1", 60)
    b = leases.Leases(other_connection(db), "host-b:1", 60)
    assert a.acquire("payouts", 31337)
    assert not b.acquire("payouts", 31337)
    assert b.acquire("payouts", 1)                  # another chain: its own lease
    assert b.acquire("prices")                      # chain 0: the duties not bound to a chain
    assert not a.acquire("prices")
    held = {(h["duty"], h["chain_id"]): h["holder"] for h in leases.holders(db)}
    assert held == {("payouts", 31337): "host-a:1", ("payouts", 1): "host-b:1", ("prices", 0): "host-b:1"}
    a.release("payouts", 31337)
    assert b.acquire("payouts", 31337)
    assert db.value("SELECT COUNT(*) FROM cron_leases") == 3
    a.release("payouts", 31337)                      # not a's any more: changes nothing
    assert not a.acquire("payouts", 31337)
    b.release_all()
    assert leases.holders(db) == []


def test_an_expired_lease_goes_to_the_next_host_and_the_old_holder_changes_nothing(db):
    a = leases.Leases(db, "host-a:1", 3)
    b = leases.Leases(other_connection(db), "host-b:1", 60)
    assert a.acquire("poll", 31337)
    assert not b.acquire("poll", 31337)
    time.sleep(3.2)                                  # a stopped renewing (killed, say)
    assert b.acquire("poll", 31337)
    assert a.renew() == [("poll", 31337)]            # a learns it lost the lease
    a.release("poll", 31337)
    row = db.one("SELECT holder, expires_at FROM cron_leases WHERE duty = 'poll' AND chain_id = 31337")
    assert row["holder"] == "host-b:1" and int(row["expires_at"]) > leases.db_now(db)
    b.release("poll", 31337)


def test_the_renewal_thread_keeps_a_lease_past_its_expiry(db):
    a = leases.Leases(db, "host-a:1", 3)
    b = leases.Leases(other_connection(db), "host-b:1", 3)
    lost = []
    a.on_lost = lost.append
    assert a.acquire("payouts", 31337)
    a.start()
    try:
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            assert not b.acquire("payouts", 31337)
            time.sleep(0.5)
    finally:
        a.stop()
    assert lost == []
    assert int(db.value("SELECT renewals FROM cron_leases WHERE duty = 'payouts' AND chain_id = 31337")) >= 2
    a.release_all()
    assert b.acquire("payouts", 31337)
    b.release_all()


def test_many_hosts_racing_for_one_lease_get_it_exactly_once(db):
    n = 8
    for round_ in range(5):
        hosts = [leases.Leases(other_connection(db), "host-%d:%d" % (i, round_), 60) for i in range(n)]
        barrier = threading.Barrier(n)
        won = []

        def race(lease):
            barrier.wait()
            if lease.acquire("payouts", 31337):
                won.append(lease.holder)
            lease.db.close()

        threads = [threading.Thread(target=race, args=(h,)) for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, won
        assert leases.holders(db)[0]["holder"] == won[0]
        db.execute("UPDATE cron_leases SET expires_at = 0")      # free for the next round


def test_a_duty_takes_the_free_chains_in_one_go_and_leaves_the_held_ones(db):
    a = leases.Leases(db, "host-a:1", 3)
    b = leases.Leases(other_connection(db), "host-b:1", 60)
    assert b.acquire("payouts", 137)
    assert a.acquire_many("payouts", [1, 137, 8453]) == [1, 8453]          # 137 is b's; 1, 8453 new rows
    assert a.acquire_many("payouts", [1]) == []                            # its own unexpired lease too
    assert b.acquire_many("payouts", [1, 8453, 31337]) == [31337]
    time.sleep(3.2)                                                        # a's two expire unrenewed
    assert b.acquire_many("payouts", [8453]) == [8453]
    assert a.renew() == [("payouts", 1), ("payouts", 8453)]
    a.release("payouts")                                                   # changes nothing of b's
    assert {(h["chain_id"], h["holder"]) for h in leases.holders(db)} == {
        (137, "host-b:1"), (8453, "host-b:1"), (31337, "host-b:1")}
    b.release("payouts", 137)
    assert sorted(h["chain_id"] for h in leases.holders(db)) == [8453, 31337]
    b.release_all()
    assert leases.holders(db) == []


@pytest.mark.parametrize("text, ok", [("", 120), ("5", 5), ("2", None), ("abc", None), ("1.5", None)])
def test_lease_seconds_setting(text, ok):
    if ok is None:
        with pytest.raises(ValueError, match="CRON_LEASE_SECONDS"):
            leases.lease_seconds({"CRON_LEASE_SECONDS": text})
    else:
        assert leases.lease_seconds({"CRON_LEASE_SECONDS": text}) == ok


def test_a_bad_lease_setting_stops_cron_before_it_runs(db, tmp_path):
    proc = cron_subprocess({"CRON_LEASE_SECONDS": "zero"}, db)
    assert proc.returncode == 2 and "CRON_LEASE_SECONDS must be a whole number" in proc.output
    assert db.value("SELECT COUNT(*) FROM cron_runs") == 0


def test_an_unknown_chain_worker_is_refused(db):
    proc = cron_subprocess({}, db, args=("--chain", "424242"))
    assert proc.returncode == 2 and "--chain 424242: not a supported chain" in proc.output
    assert db.value("SELECT COUNT(*) FROM cron_runs") == 0


def test_a_run_takes_no_chain_duty_another_process_holds(anvil, db, tmp_path):
    """In process: the payouts lease of the chain held elsewhere -> the intent waits."""
    env = cron_env(anvil.url, tmp_path)
    p = Parties(db)
    uuid, _addr = paid_order(anvil, db, env, p, ETH)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    other = leases.Leases(other_connection(db), "other-host:7", 60)
    assert other.acquire("payouts", 31337)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert "payouts/31337" in r["skipped"] and "deposits/31337" in r["skipped"]
    assert payout_rows(db, uuid) == [] and intent_row(db, uuid)["status"] == "pending"
    other.release_all()
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert len(payout_rows(db, uuid)) == 3 and r["skipped"] == []


# -- two cron processes on one MariaDB -------------------------------------------------

@pytest.fixture
def maria(mariadb_db):
    empty_tables(mariadb_db)
    with dbmod.using(mariadb_db):
        yield mariadb_db


def wait_for(what, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.1)


def lease_holder(db, duty, chain_id):
    for h in leases.holders(db):
        if h["duty"] == duty and h["chain_id"] == chain_id:
            return h["holder"]
    return None


def stop_loop(proc):
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    return out


def split(amount):
    commission = amount // 5
    referrer = commission // 2
    return amount - commission, referrer, commission - referrer


def test_sigkill_of_the_lease_holder_mid_payouts_another_host_pays_each_recipient_once(anvil, maria, tmp_path):
    db = maria
    env = cron_env(anvil.url, tmp_path, CRON_LEASE_SECONDS="4")
    p = Parties(db)
    amounts = [ETH + 11, 2 * ETH + 22, 3 * ETH + 33]
    orders = [paid_order(anvil, db, env, p, a) for a in amounts]
    for uuid, _addr in orders:
        intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    vendor0, referrer0, commission0 = (anvil.balance(p.vendor_addr), anvil.balance(p.referrer_addr),
                                       anvil.balance(env["COMMISSION_WALLET_DEV"]))

    # Host A takes the payouts lease and is killed once its first transaction is on chain.
    host_a = cron_subprocess(env, db, {"CRON_CRASH_AT": "after_broadcast", "CRON_TEST_PAUSE_BEFORE_CLAIM": "1"},
                             wait=False)
    holder_a = wait_for("host A's payouts lease", lambda: lease_holder(db, "payouts", 31337), 60)
    assert holder_a.endswith(":%d" % host_a.pid)
    # Host B: the same database, a run every second.
    host_b = cron_subprocess(env, db, wait=False, args=("--loop", "1"))
    try:
        out_a, _ = host_a.communicate(timeout=60)
        assert host_a.returncode == -signal.SIGKILL, out_a
        signed_by_a = [u for u, _a in orders if intent_row(db, u)["status"] == "processing"]
        assert signed_by_a                                      # A had claimed and signed ...
        assert sum(anvil.nonce(escrow(db, u), "latest") for u, _a in orders) == 1   # ... and sent one leg
        assert lease_holder(db, "payouts", 31337) == holder_a  # nobody renews it; it still counts
        a_expires = int(db.value("SELECT expires_at FROM cron_leases WHERE duty = 'payouts' AND chain_id = 31337"))
        taken_at = []

        def released():
            holder = db.value("SELECT holder FROM cron_leases WHERE duty = 'payouts' AND chain_id = 31337")
            if holder != holder_a and not taken_at:
                taken_at.append(leases.db_now(db))
            anvil.mine(1)
            return all(status(db, u) == sm.RELEASED for u, _a in orders)
        wait_for("every order RELEASED by host B", released, 120)
    finally:
        out_b = stop_loop(host_b)
    assert host_b.returncode == 0, out_b
    assert taken_at and taken_at[0] >= a_expires              # B took over only once A's lease ran out
    assert re.search(r"leased elsewhere: .*payouts/31337", out_b)      # B waited while A's lease lived
    assert "lost" not in out_b and "ERROR" not in out_b, out_b

    for uuid, _addr in orders:
        pid = host_a.pid if uuid in signed_by_a else host_b.pid
        assert intent_row(db, uuid)["claimed_by"].endswith(":%d" % pid)
    all_fees = 0
    for (uuid, addr), amount in zip(orders, amounts):
        rows = payout_rows(db, uuid)
        assert len(rows) == 3 and len({r["tx_hash"] for r in rows}) == 3, rows
        assert anvil.nonce(addr, "latest") == 3               # exactly three transactions left the escrow
        assert [h["status"] for h in sm.history(db, uuid)].count(sm.RELEASED) == 1
        row = intent_row(db, uuid)
        assert row["status"] == "completed" and row["attempts"] == 1
        all_fees += fees(rows)
    vendor = sum(split(a)[0] for a in amounts)
    referrer = sum(split(a)[1] for a in amounts)
    commission = sum(split(a)[2] for a in amounts)
    assert anvil.balance(p.vendor_addr) - vendor0 == vendor
    assert anvil.balance(p.referrer_addr) - referrer0 == referrer
    assert anvil.balance(env["COMMISSION_WALLET_DEV"]) - commission0 == commission - all_fees
    # Nothing left stuck: no lease held, nothing in flight, nothing open.
    assert leases.holders(db) == []
    assert db.value("SELECT COUNT(*) FROM payouts WHERE status IN ('signed', 'broadcast')") == 0
    assert db.value("SELECT COUNT(*) FROM transaction_intents WHERE open_key IS NOT NULL") == 0


def test_a_long_run_renews_its_lease_and_the_other_host_never_takes_it(anvil, maria, tmp_path):
    db = maria
    env = cron_env(anvil.url, tmp_path, CRON_LEASE_SECONDS="3")
    p = Parties(db)
    uuid, addr = paid_order(anvil, db, env, p, ETH + 5)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    # A's payouts take 8 s, well past the 3 s expiry of its lease.
    host_a = cron_subprocess(env, db, {"CRON_TEST_PAUSE_BEFORE_CLAIM": "8"}, wait=False)
    holder_a = wait_for("host A's payouts lease", lambda: lease_holder(db, "payouts", 31337), 60)
    host_b = cron_subprocess(env, db, wait=False, args=("--loop", "1"))
    renewals = 0
    try:
        while host_a.poll() is None:
            if lease_holder(db, "payouts", 31337) == holder_a:
                renewals = max(renewals, int(db.value(
                    "SELECT renewals FROM cron_leases WHERE duty = 'payouts' AND chain_id = 31337")))
            time.sleep(0.2)
        out_a, _ = host_a.communicate(timeout=60)
    finally:
        out_b = stop_loop(host_b)
    assert host_a.returncode == 0, out_a
    assert host_b.returncode == 0, out_b
    assert renewals >= 2                                      # every second, for 8 s
    assert "signed 3 transaction(s)" in out_a and "signed 3 transaction(s)" not in out_b
    assert re.search(r"leased elsewhere: .*payouts/31337", out_b)           # B found it held
    row = intent_row(db, uuid)
    assert row["attempts"] == 1 and row["claimed_by"].endswith(":%d" % host_a.pid)
    assert len(payout_rows(db, uuid)) == 3


def test_per_chain_workers_run_side_by_side(anvil, maria, tmp_path):
    """`cron.py --chain 31337` and `cron.py --chain 11155111` at the same time, each paying
    its own chain's order; neither touches the other's chain."""
    db = maria
    sepolia = AnvilNode(chain_id=SEPOLIA)
    try:
        env = cron_env(anvil.url, tmp_path, **{"RPC_URL_%d" % SEPOLIA: sepolia.url,
                                               "COMMISSION_WALLET_SEPOLIA": fresh_address()})
        db.upsert("config", {"name": "required_confirmations_%d" % SEPOLIA},
                  {"value": "3", "updated_at": "2026-01-01 00:00:00"})
        p = Parties(db)
        dev_uuid, dev_addr = paid_order(anvil, db, env, p, ETH + 1)
        sep_uuid = make_order(db, p.buyer, p.store, 2 * ETH + 2, refund=p.refund)
        db.execute("UPDATE evm_transactions SET chain_id = ? WHERE transaction_uuid = ?", (SEPOLIA, sep_uuid))
        r = run_cron(env, db)
        assert r["ok"], r["errors"]
        sep_addr = escrow(db, sep_uuid)
        sepolia.send_eth(1, sep_addr, 2 * ETH + 2)
        sepolia.mine(3)
        r = run_cron(env, db)
        assert r["ok"], r["errors"]
        assert status(db, sep_uuid) == sm.COMPLETED
        for uuid in (dev_uuid, sep_uuid):
            intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
        # Both workers hold their chain's payouts lease at once (each pauses before its claim).
        workers = {c: cron_subprocess(env, db, {"CRON_TEST_PAUSE_BEFORE_CLAIM": "3"}, wait=False,
                                      args=("--chain", str(c))) for c in (31337, SEPOLIA)}
        both = wait_for("both payouts leases", lambda: (lease_holder(db, "payouts", 31337)
                                                         and lease_holder(db, "payouts", SEPOLIA)
                                                         and (lease_holder(db, "payouts", 31337),
                                                              lease_holder(db, "payouts", SEPOLIA))), 60)
        assert both[0].endswith(":%d" % workers[31337].pid) and both[1].endswith(":%d" % workers[SEPOLIA].pid)
        outs = {c: w.communicate(timeout=60)[0] for c, w in workers.items()}
        assert all(w.returncode == 0 for w in workers.values()), outs
        assert intent_row(db, dev_uuid)["claimed_by"].endswith(":%d" % workers[31337].pid)
        assert intent_row(db, sep_uuid)["claimed_by"].endswith(":%d" % workers[SEPOLIA].pid)
        for _ in range(6):
            anvil.mine(3)
            sepolia.mine(3)
            for c in (31337, SEPOLIA):
                proc = cron_subprocess(env, db, args=("--chain", str(c)))
                assert proc.returncode == 0, proc.output
            if status(db, dev_uuid) == sm.RELEASED and status(db, sep_uuid) == sm.RELEASED:
                break
        assert status(db, dev_uuid) == sm.RELEASED and status(db, sep_uuid) == sm.RELEASED
        assert anvil.nonce(dev_addr, "latest") == 3 and sepolia.nonce(sep_addr, "latest") == 3
        assert anvil.balance(p.vendor_addr) == split(ETH + 1)[0]
        assert anvil.balance(env["COMMISSION_WALLET_DEV"]) == split(ETH + 1)[2] - fees(payout_rows(db, dev_uuid))
        assert sepolia.balance(p.vendor_addr) == split(2 * ETH + 2)[0]
        assert sepolia.balance(env["COMMISSION_WALLET_SEPOLIA"]) == split(2 * ETH + 2)[2] - fees(payout_rows(db, sep_uuid))
    finally:
        sepolia.stop()


# -- races the file lock used to hide ----------------------------------------------------

def test_expiry_decides_on_the_balance_inside_its_transaction(anvil, db, tmp_path, monkeypatch):
    """Another host's poll counts a payment after this host read the PENDING rows and
    before it expires the order: the order is not failed on the stale zero."""
    from cron import tasks
    from tests.cron_support import backdate
    env = cron_env(anvil.url, tmp_path)
    p = Parties(db)
    late, idle = (make_order(db, p.buyer, p.store, ETH, refund=p.refund) for _ in range(2))
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    for uuid in (late, idle):
        backdate(db, uuid, 30 * 86400)
    other = other_connection(db)
    real = tasks.open_intent_orders

    def another_host_polls_in_between(d):
        # What a concurrent poll commits: the payment it counted and its status row.
        with other.transaction():
            other.execute("UPDATE evm_transactions SET received_amount = ? WHERE transaction_uuid = ?",
                          (str(ETH // 2), late))
            sm.append_status(other, late, sm.PENDING, str(ETH // 2), comment="partial payment")
        return real(d)

    monkeypatch.setattr(tasks, "open_intent_orders", another_host_polls_in_between)
    ctx = tasks.Context(env, db, worker="w", log=None)
    ctx.polled = {late, idle}
    tasks.expire_pending(ctx)
    other.close()
    assert ctx.errors == []
    assert status(db, late) == sm.PENDING                    # not FAILED on the balance read before
    assert status(db, idle) == sm.FAILED
    assert ctx.counts["expire"] == {"failed": 1}
