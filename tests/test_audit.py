"""The auditor: `make audit` is cron/audit.py.

On anvil, on both databases: after released, cancelled, paid and unpaid orders (native
and ERC-20) the audit is clean (exit 0, no flag); funds moved out of an escrow behind
the database's back, and a payout row the chain never saw, are each listed, raised once
as a staff flag and make it exit 1.
"""
import os

from lib import intents
from lib import status_machine as sm
from tests.cron_support import (ROOT, Parties, cron_subprocess, escrow, make_order, paid_order,
                                payout_rows, run_cron, settle, wallet)
from tests.chain import fresh_address

AUDIT = os.path.join(ROOT, "cron", "audit.py")
ETH = 10 ** 18


def audit(env, db):
    return cron_subprocess(env, db, script=AUDIT)


def audit_flags(db):
    return db.query("SELECT * FROM staff_flags WHERE kind = 'audit' ORDER BY id")


def a_marketplace(anvil, db, env):
    """Orders in every state the auditor meets, all settled by cron."""
    token = anvil.deploy_token(symbol="TUSD", decimals=6)
    anvil.mine(3)
    anvil.send_eth(3, wallet().gas_station_address(), ETH)
    p = Parties(db)
    released, released_addr = paid_order(anvil, db, env, p, ETH + 7)
    tok, _tok_addr = paid_order(anvil, db, env, p, 5000001, token=token, decimals=6, currency="TUSD")
    cancelled, _c = paid_order(anvil, db, env, p, 2 * ETH + 3)
    unreleased, unreleased_addr = paid_order(anvil, db, env, p, 3 * ETH)
    pending = make_order(db, p.buyer, p.store, ETH, refund=p.refund)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    anvil.send_eth(1, escrow(db, pending), ETH // 3)          # a partial payment
    anvil.mine(3)
    for uuid in (released, tok):
        intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    intents.open_intent(db, cancelled, sm.CANCEL, p.vendor["uuid"])
    settle(anvil, env, db, released, sm.RELEASED)
    settle(anvil, env, db, tok, sm.RELEASED)
    settle(anvil, env, db, cancelled, sm.CANCELLED)
    anvil.mine(3)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    return {"released": (released, released_addr), "unreleased": (unreleased, unreleased_addr), "token": token,
            "pending": pending, "tok": tok}


def test_a_clean_marketplace_audits_clean(anvil, db, env):
    m = a_marketplace(anvil, db, env)
    proc = audit(env, db)
    assert proc.returncode == 0, proc.output
    assert "audit: 5 escrow(s) on 1 chain(s), 0 left for later (payout in flight): no discrepancy" in proc.output
    assert "DISCREPANCY" not in proc.output
    # Received = paid out + fees + remaining, per escrow, chain and database alike.
    released, _addr = m["released"]
    paid = sum(int(r["delivered_amount"]) for r in payout_rows(db, released))
    line = next(x for x in proc.output.splitlines() if x.strip().startswith("order %s" % released))
    assert "received 1.000000000000000007 = paid out " in line
    assert "; vendor " in line and "; referrer " in line and "; commission " in line
    assert paid < ETH + 7
    assert "chain 31337 ETH totals: received" in proc.output and "chain 31337 TUSD totals: received" in proc.output
    assert audit_flags(db) == []


def test_funds_moved_behind_the_databases_back_are_listed_flagged_and_exit_1(anvil, db, env, client):
    m = a_marketplace(anvil, db, env)
    uuid, addr = m["unreleased"]
    index = db.value("SELECT derivation_index FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))
    thief = wallet().escrow_key(int(index))
    gas_price = 2 * int(anvil.rpc("eth_gasPrice"), 16)
    signed = thief.sign_transaction({"to": fresh_address(), "value": ETH, "gas": 21000, "gasPrice": gas_price,
                                     "nonce": 0, "chainId": 31337})
    anvil.rpc("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
    anvil.mine(3)
    proc = audit(env, db)
    assert proc.returncode == 1, proc.output
    assert "1 transaction(s) left the escrow on chain; the database records 0" in proc.output
    assert "the escrow holds 1.99995" in proc.output and "the database accounts for 3 (missing 1.00004" in proc.output
    assert "audit: 5 escrow(s) on 1 chain(s), 0 left for later (payout in flight): 2 discrepancy(ies), " \
           "2 new staff flag(s)" in proc.output
    flags = audit_flags(db)
    assert len(flags) == 2 and {f["transaction_uuid"] for f in flags} == {uuid}
    assert all(f["address"] == addr and int(f["chain_id"]) == 31337 and f["resolved_at"] is None for f in flags)
    assert sorted(f["amount"] for f in flags if f["amount"]) == [str(ETH + 21000 * gas_price)]
    again = audit(env, db)
    assert again.returncode == 1 and "2 discrepancy(ies), 0 new staff flag(s)" in again.output
    assert len(audit_flags(db)) == 2                      # raised once while unresolved
    # Staff see them on their dashboard.
    from tests.factories import login, make_user as make_account
    make_account(db, "auditstaff", role="admin")
    login(client, "auditstaff")
    page = client.get("/staff/")
    assert page.status == 200
    assert "audit: 1 transaction(s) left the escrow on chain; the database records 0" in page.text


def test_a_payout_row_the_chain_never_saw_is_listed_flagged_and_exit_1(anvil, db, env):
    m = a_marketplace(anvil, db, env)
    uuid, _addr = m["released"]
    real = next(r for r in payout_rows(db, uuid) if r["recipient_role"] == "vendor")
    fake = {k: v for k, v in real.items() if k != "id"}
    fake.update({"tx_hash": "0x" + "ab" * 32, "nonce": int(real["nonce"]) + 50, "amount": "12345",
                 "delivered_amount": "12345"})
    db.insert("payouts", fake)
    proc = audit(env, db)
    assert proc.returncode == 1, proc.output
    assert ("payout 0x%s (vendor 12345 to %s) is recorded as confirmed but is not on chain" % ("ab" * 32, real["to_address"])
            in proc.output)
    assert "3 transaction(s) left the escrow on chain; the database records 4" in proc.output
    flags = audit_flags(db)
    assert len(flags) >= 2 and {f["transaction_uuid"] for f in flags} == {uuid}
    # The other escrows stay clean.
    assert all(m["pending"] not in line for line in proc.output.splitlines() if "DISCREPANCY" in line)


def test_audit_waits_for_the_payouts_lease_and_gives_up_with_exit_2(anvil, db, env):
    from cron import leases
    from lib import db as dbmod
    p = Parties(db)
    paid_order(anvil, db, env, p, ETH)
    cron_elsewhere = leases.Leases(dbmod.Db(db.dsn, db.user, db.password), "cron-host:9", 60)
    assert cron_elsewhere.acquire("payouts", 31337)
    try:
        proc = cron_subprocess(dict(env, AUDIT_LEASE_WAIT_SECONDS="2"), db, script=AUDIT)
    finally:
        cron_elsewhere.release_all()
    assert proc.returncode == 2, proc.output
    assert "chain 31337 could not be audited: RuntimeError: cron's payouts on this chain held their lease for 2 s" \
        in proc.output
    assert audit_flags(db) == []
    proc = audit(env, db)
    assert proc.returncode == 0, proc.output
    assert leases.holders(db) == []                      # the auditor gave its lease back


def test_audit_cannot_start_without_its_database(tmp_path):
    proc = cron_subprocess({"DB_DSN_IGNORED": "1"}, type("D", (), {"dsn": "nosuch:driver", "user": "", "password": ""})(),
                           script=AUDIT)
    assert proc.returncode == 2 and "audit could not start" in proc.output
