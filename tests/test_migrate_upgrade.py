"""Upgrading a running marketplace: a database made by the previous release's schema
(schema.sql alone, no migrations), holding an order whose refund the previous release
signed (a legacy transaction) but had not yet sent, is migrated with `make db-migrate`
(lib.migrate.init) on SQLite and on MariaDB, keeps every row, and the new payout engine
then sends, follows and finalizes that very transaction on anvil."""
import os
import subprocess
import sys
import uuid as uuidlib

from lib import db as dbmod
from lib import migrate
from lib import status_machine as sm
from lib.db import utc_now
from tests.cron_support import CHAIN, Parties, cron_env, run_cron, wallet

ETH = 10 ** 18


def previous_release_schema():
    """schema.sql as the previous release shipped it (git history when present, else the
    file itself, which later releases change only through migrations)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        return subprocess.run(["git", "show", "08f9064:schema.sql"], cwd=root, capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        with open(os.path.join(root, "schema.sql"), encoding="utf-8") as f:
            return f.read()


def sign_like_the_previous_release(account, nonce, to, amount, gas_price):
    """The previous release's payouts: legacy (type-0) transactions at a fixed gas price."""
    signed = account.sign_transaction({"to": to, "value": amount, "data": b"", "gas": 21000, "gasPrice": gas_price,
                                       "nonce": nonce, "chainId": CHAIN})
    return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()


def test_previous_release_database_upgrades_and_its_signed_refund_is_paid(anvil, bare_db, tmp_path, monkeypatch):
    db = bare_db
    db.run_script(previous_release_schema())
    assert "payout_attempts" not in db.tables()
    monkeypatch.setattr(dbmod, "_db", db)
    p = Parties(db)
    # An order of the previous release: paid, a vendor cancel claimed, its refund signed.
    from tests.cron_support import make_order
    uuid = make_order(db, p.buyer, p.store, ETH // 10, refund=p.refund)
    index = int.from_bytes(os.urandom(3), "big")      # a fresh escrow on the shared chain
    account = wallet().escrow_key(index)
    db.execute("UPDATE evm_transactions SET escrow_address = ?, derivation_index = ?, received_amount = ? "
               "WHERE transaction_uuid = ?", (account.address, index, str(ETH // 10), uuid))
    sm.append_status(db, uuid, sm.PENDING, "0")
    sm.append_status(db, uuid, sm.COMPLETED, str(ETH // 10))
    anvil.send_eth(1, account.address, ETH // 10)
    anvil.mine(3)
    gas_price = 3 * 10 ** 9
    fee = 21000 * gas_price
    raw, tx_hash = sign_like_the_previous_release(account, 0, p.refund_addr, ETH // 10 - fee, gas_price)
    now = utc_now()
    intent_uuid = str(uuidlib.uuid4())
    db.insert("transaction_intents", {"uuid": intent_uuid, "transaction_uuid": uuid, "action": "CANCEL",
                                      "status": "processing", "open_key": uuid, "requested_by": p.vendor["uuid"],
                                      "attempts": 1, "claimed_by": "old-host:1", "claimed_at": now,
                                      "created_at": now, "updated_at": now})
    db.insert("payouts", {"intent_uuid": intent_uuid, "transaction_uuid": uuid, "kind": "payout",
                          "recipient_role": "buyer", "chain_id": CHAIN, "currency": "ETH", "token_contract": "",
                          "from_address": account.address, "to_address": p.refund_addr,
                          "amount": str(ETH // 10 - fee), "fee": str(fee), "nonce": 0, "tx_hash": tx_hash,
                          "raw_tx": raw, "status": "signed", "created_at": now, "updated_at": now})
    db.insert("staff_flags", {"transaction_uuid": uuid, "reason": "an old flag", "amount": "5",
                              "created_at": now, "resolved_at": None})

    assert migrate.init(db) == [v for v, _ in migrate.migration_files()]     # 1 (payout engine) and later ones
    assert migrate.init(db) == []                       # recorded: never applied twice
    assert {"payout_attempts"} <= set(db.tables())
    for table, column in (("payouts", "max_fee_per_gas"), ("payouts", "block_hash"), ("transaction_intents", "failures"),
                          ("staff_flags", "kind"), ("evm_transactions", "retained_amount"),
                          ("chain_heads", "gas_station_balance")):
        assert column in migrate.columns(db, table)
    row = db.one("SELECT * FROM payouts WHERE tx_hash = ?", (tx_hash,))
    assert row["raw_tx"] == raw and row["tx_type"] == 0 and row["gas_limit"] == 21000
    assert int(row["max_fee_per_gas"]) == gas_price
    attempts = db.query("SELECT tx_hash, raw_tx FROM payout_attempts WHERE payout_id = ?", (row["id"],))
    assert attempts == [{"tx_hash": tx_hash, "raw_tx": raw}]
    assert db.value("SELECT reason FROM staff_flags WHERE kind IS NULL") == "an old flag"
    assert [h["status"] for h in sm.history(db, uuid)] == ["PENDING", "COMPLETED"]

    env = cron_env(anvil.url, tmp_path)
    for _ in range(3):
        r = run_cron(env, db)
        assert r["ok"], r["errors"]
        anvil.mine(3)
    assert sm.current_status(db, uuid)["status"] == sm.CANCELLED
    assert anvil.balance(p.refund_addr) == ETH // 10 - fee           # the very bytes signed before the upgrade
    assert db.value("SELECT uuid FROM payment_receipts WHERE transaction_uuid = ?", (uuid,)) == tx_hash
    assert anvil.balance(account.address) == 0                       # a legacy transaction uses its fee exactly


def test_migrations_run_from_the_command_line(tmp_path):
    """`make db-migrate` is `python -m lib.migrate`: it reports the versions it applied."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, DB_DSN="sqlite:%s" % (tmp_path / "cli.sqlite"), DB_DRIVER="sqlite",
               ENV_FILE=os.path.join(root, "tests", "no-such.env"))
    out = subprocess.run([sys.executable, "-m", "lib.migrate"], cwd=root, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "migrations applied: %s" % [v for v, _ in migrate.migration_files()] in out.stdout
    again = subprocess.run([sys.executable, "-m", "lib.migrate"], cwd=root, env=env, capture_output=True, text=True)
    assert "migrations applied: none" in again.stdout


def test_a_database_before_migration_013_gets_the_cron_lease_table(bare_db, monkeypatch):
    """The schema before 013 (every earlier migration applied) upgrades on both databases:
    cron_leases appears, earlier rows stay, and leases work on it."""
    from cron import leases
    db = bare_db
    every = migrate.migration_files()
    monkeypatch.setattr(migrate, "migration_files", lambda: [(v, p) for v, p in every if v < 13])
    migrate.init(db)
    assert "cron_leases" not in db.tables()
    run_id = db.insert("cron_runs", {"started_at": utc_now(), "ok": 1})
    monkeypatch.setattr(migrate, "migration_files", lambda: every)
    assert 13 in migrate.init(db)
    assert "cron_leases" in db.tables()
    assert db.value("SELECT ok FROM cron_runs WHERE id = ?", (run_id,)) == 1
    assert migrate.init(db) == []
    a, b = leases.Leases(db, "a:1", 60), leases.Leases(db, "b:1", 60)
    assert a.acquire("poll", CHAIN) and not b.acquire("poll", CHAIN)
