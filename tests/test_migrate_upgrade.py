"""Upgrading a running marketplace: a database made by the previous release's schema
(schema.sql alone, no migrations), holding an order whose refund the previous release
signed (a legacy transaction) but had not yet sent, is migrated with `make db-migrate`
(lib.migrate.init) on SQLite and on MariaDB, keeps every row, and the new payout engine
then sends, follows and finalizes that very transaction on anvil."""
import os
import subprocess
import sys
import uuid as uuidlib

import pytest

from lib import migrate
from lib import status_machine as sm
from lib.db import utc_now
from tests.cron_support import CHAIN, Parties, cron_env, run_cron, wallet

ETH = 10 ** 18


@pytest.fixture
def no_catalog_version(monkeypatch):
    """Rows written as a release before migration 011 wrote them: its code kept no catalog
    version (today's catalog writes bump it; call `.stop()` once the database is upgraded)."""
    from lib import catalog_cache

    class Writes:
        def stop(self):
            monkeypatch.setattr(catalog_cache, "changed", changed)
            monkeypatch.setattr(catalog_cache, "ensure_version_row", ensure)
    changed, ensure = catalog_cache.changed, catalog_cache.ensure_version_row
    monkeypatch.setattr(catalog_cache, "changed", lambda db: None)
    monkeypatch.setattr(catalog_cache, "ensure_version_row", lambda db: None)
    return Writes()


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


def test_previous_release_database_upgrades_and_its_signed_refund_is_paid(anvil, bare_db, tmp_path):
    db = bare_db
    db.run_script(previous_release_schema())
    assert "payout_attempts" not in db.tables()
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
    # The session's chain may carry a high base fee from an earlier test: the previous
    # release signed at a fixed 3 gwei, so the chain is brought below it first.
    anvil.rpc("anvil_setNextBlockBaseFeePerGas", hex(10 ** 9))
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
    assert {"chain_id", "token_contract", "scanned_block", "scanned_hash"} <= set(migrate.columns(db, "token_log_scans"))
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


def test_a_database_before_messages_upgrades_and_keeps_its_rows(bare_db, monkeypatch, no_catalog_version):
    """Migration 009 (messages, blocks, notifications) on a database at the previous schema
    (every earlier migration applied, with users, a store and an order in it)."""
    from lib import catalog, messages, notifications, users
    db = bare_db
    every = migrate.migration_files()
    monkeypatch.setattr(migrate, "migration_files", lambda: [m for m in every if m[0] < 9])
    migrate.init(db)
    assert "messages" not in db.tables() and "notifications" not in db.tables()
    monkeypatch.setattr(users, "SCRYPT_N", 2 ** 10)
    alice = users.create_user(db, "alice", "password123")
    bob = users.create_user(db, "bob", "password123")
    store = catalog.create_store(db, bob, "bobshop", "a store", True)
    monkeypatch.setattr(migrate, "migration_files", lambda: every)
    assert migrate.init(db) == [v for v, _ in every if v >= 9]
    no_catalog_version.stop()
    assert migrate.init(db) == []
    assert {"message_threads", "messages", "message_reads", "user_blocks", "notifications"} <= set(db.tables())
    assert [u["username"] for u in users.list_users(db)] == ["alice", "bob"]
    assert catalog.store_row(db, store["uuid"])["storename"] == "bobshop"
    sent = messages.send_private(db, alice, "bob", "hello after the upgrade")
    assert sent["thread"]["peer"]["username"] == "bob"
    assert notifications.unread_count(db, bob["uuid"]) == 1
    assert messages.private_thread(db, bob, "alice")["messages"][0]["body"] == "hello after the upgrade"
    assert notifications.unread_count(db, bob["uuid"]) == 0        # reading the thread read its notification


def test_a_database_at_migration_7_upgrades_to_tickets_and_warnings(bare_db, no_catalog_version):
    """Migration 008 (support tickets, store warnings) on a database the previous release
    left at 007, with its users and stores kept, on both databases."""
    from lib import store_warnings, tickets
    from lib import users as usersmod
    from tests.factories import make_user
    from tests.market import store as make_store
    db = bare_db
    with open(migrate.SCHEMA, encoding="utf-8") as f:
        db.run_script(f.read())
    for version, path in migrate.migration_files():
        if version >= 8:
            break
        if path.endswith(".py"):
            migrate._run_python(db, path)
        else:
            with open(path, encoding="utf-8") as f:
                db.run_script(f.read())
        db.insert("schema_migrations", {"version": version, "name": os.path.basename(path), "applied_at": utc_now()})
    migrate.seed_defaults(db)
    assert "support_tickets" not in db.tables()
    buyer = make_user(db, "oldbuyer")
    staff = usersmod.create_user(db, "oldstaff", "password123", role="staff")
    shop = make_store(db, make_user(db, "oldvendor"), "oldshop")
    applied = migrate.init(db)
    assert 8 in applied and 7 not in applied
    no_catalog_version.stop()
    assert {"support_tickets", "ticket_messages", "ticket_statuses", "store_warnings"} <= set(db.tables())
    ticket = tickets.create(db, buyer, "Still here?", "After the upgrade.")
    assert tickets.reply(db, staff, ticket["uuid"], "Yes.")["status"] == "answered"
    store_warnings.add(db, staff, "oldshop", "Watch out")
    assert [w["reason"] for w in store_warnings.active(db, shop["uuid"])] == ["Watch out"]
    assert migrate.init(db) == []


def test_a_database_before_reviews_and_images_upgrades_and_keeps_its_orders(bare_db, no_catalog_version):
    """Migration 010 (reviews, item_images) on a database at the schema before it: the
    released order it holds can then be reviewed, and the item takes images."""
    db = bare_db
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "schema.sql"), encoding="utf-8") as f:
        db.run_script(f.read())
    for version, path in migrate.migration_files():
        if version < 10:
            if path.endswith(".py"):
                migrate._run_python(db, path)
            else:
                with open(path, encoding="utf-8") as f:
                    db.run_script(f.read())
            db.insert("schema_migrations", {"version": version, "name": os.path.basename(path),
                                            "applied_at": utc_now()})
    assert "reviews" not in db.tables() and "item_images" not in db.tables()
    migrate.seed_defaults(db)
    from lib import reviews
    from tests import market
    w = market.world(db)
    order = market.order(db, w, status="RELEASED")
    assert 10 in migrate.init(db)
    no_catalog_version.stop()
    assert migrate.init(db) == []
    assert {"reviews", "item_images"} <= set(db.tables())
    assert db.value("SELECT COUNT(*) FROM transactions WHERE uuid = ?", (order,)) == 1
    review = reviews.add_review(db, w.buyer, order, 5, "kept")
    assert review["score"] == 5 and reviews.rating(db, store_uuid=w.store["uuid"]) == {"average": "5.00", "count": 1}
    assert db.value("SELECT COUNT(*) FROM item_images") == 0


def test_a_database_before_the_catalog_version_upgrades(bare_db, monkeypatch):
    """Migration 011: a database at 010 gets the catalog version row and the indexes the
    cache's one read uses; its catalog rows stay and the next write bumps the version."""
    from lib import catalog, catalog_cache
    from tests.factories import make_user
    db = bare_db
    every = migrate.migration_files()
    monkeypatch.setattr(migrate, "migration_files", lambda: [(v, p) for v, p in every if int(v) < 11])
    migrate.init(db)
    assert "catalog_version" not in db.tables()
    db.insert("stores", {"uuid": "5a000000-0000-4000-8000-000000000001", "storename": "oldshop",
                         "storename_lower": "oldshop", "description": "kept", "tier": "free", "suspended": 0,
                         "vendorship_agreed_at": utc_now(), "created_at": utc_now(), "updated_at": utc_now()})
    monkeypatch.setattr(migrate, "migration_files", lambda: every)
    applied = migrate.init(db)
    assert [int(v) for v in applied] == [v for v, _ in every if v >= 11]
    assert db.value("SELECT description FROM stores WHERE storename = 'oldshop'") == "kept"
    before = catalog_cache.version(db)
    assert before is not None and before[0] > 0
    catalog.create_store(db, make_user(db, "newvendor"), "newshop", None, True)
    assert catalog_cache.version(db)[0] == before[0] + 1
    names = {"idx_prices_fetched", "idx_accepted_tokens_updated", "idx_deposits_updated"}
    if db.is_sqlite:
        found = {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    else:
        found = {r["name"] for r in db.query("SELECT index_name AS name FROM information_schema.statistics "
                                             "WHERE table_schema = DATABASE()")}
    assert names <= found
    assert migrate.init(db) == []                                    # idempotent
