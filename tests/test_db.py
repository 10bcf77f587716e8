"""The Db class on SQLite and MariaDB: the same SQL, dict rows, transactions, upsert."""
import threading

import pytest

from lib.db import Db, DbError, IntegrityError, parse_dsn


def test_schema_has_every_table_of_the_spec(db):
    spec_tables = """users sessions stores store_users item_categories items packages package_prices
    transactions evm_transactions transaction_statuses shipping_statuses transaction_intents payouts
    payment_receipts referral_payments disputes dispute_claims deposits deposit_history
    deposit_withdraw_intents accepted_tokens prices config api_keys api_key_requests login_attempts
    cron_runs audit_log schema_migrations""".split()
    assert set(spec_tables) <= set(db.tables())


def test_init_is_idempotent(db):
    from lib import migrate
    before = db.tables()
    migrate.init(db)
    migrate.init(db)
    assert db.tables() == before


def test_rows_are_dicts_with_question_mark_placeholders(db):
    db.insert("config", {"name": "k1", "value": "50%", "updated_at": "2026-01-01 00:00:00"})
    assert db.query("SELECT name, value FROM config WHERE name = ?", ("k1",)) == [
        {"name": "k1", "value": "50%"}]
    assert db.one("SELECT value FROM config WHERE name = ?", ("k1",)) == {"value": "50%"}
    assert db.value("SELECT value FROM config WHERE name = ?", ("nope",), "dflt") == "dflt"
    # A literal % in SQL text survives the MariaDB placeholder translation.
    assert db.value("SELECT name FROM config WHERE value LIKE '50%' AND name = ?", ("k1",)) == "k1"


def test_upsert_inserts_then_updates(db):
    db.upsert("config", {"name": "k"}, {"value": "1", "updated_at": "a"})
    db.upsert("config", {"name": "k"}, {"value": "2", "updated_at": "b"})
    assert db.query("SELECT name, value, updated_at FROM config") == [
        {"name": "k", "value": "2", "updated_at": "b"}]


def test_transaction_commits(db):
    with db.transaction():
        db.insert("config", {"name": "a", "value": "1", "updated_at": "x"})
        with db.transaction():  # nested joins the outer one
            db.insert("config", {"name": "b", "value": "2", "updated_at": "x"})
    assert db.value("SELECT COUNT(*) FROM config") == 2


def test_transaction_rolls_back_everything_on_error(db):
    with pytest.raises(RuntimeError):
        with db.transaction():
            db.insert("config", {"name": "a", "value": "1", "updated_at": "x"})
            with db.transaction():
                db.insert("config", {"name": "b", "value": "2", "updated_at": "x"})
            raise RuntimeError("boom")
    assert db.value("SELECT COUNT(*) FROM config") == 0
    assert not db.in_transaction


def test_unique_violation_is_integrity_error_and_writes_nothing(db):
    db.insert("config", {"name": "a", "value": "1", "updated_at": "x"})
    with pytest.raises(IntegrityError):
        with db.transaction():
            db.insert("config", {"name": "z", "value": "1", "updated_at": "x"})
            db.insert("config", {"name": "a", "value": "2", "updated_at": "x"})
    assert db.query("SELECT name, value FROM config ORDER BY name") == [{"name": "a", "value": "1"}]


def test_foreign_keys_are_enforced(db):
    with pytest.raises(IntegrityError):
        db.insert("transaction_statuses", {"transaction_uuid": "no-such-order", "time": "t",
                                           "amount": "0", "status": "PENDING"})


def test_big_amounts_are_exact_strings(db):
    huge = str(10 ** 40 + 7)  # beyond 64-bit integers
    db.insert("config", {"name": "big", "value": huge, "updated_at": "x"})
    assert db.value("SELECT value FROM config WHERE name = 'big'") == huge


def test_unicode_round_trip(db):
    db.insert("config", {"name": "u", "value": "Zoë ✓ 🚀", "updated_at": "x"})
    assert db.value("SELECT value FROM config WHERE name = 'u'") == "Zoë ✓ 🚀"


def test_one_connection_per_thread(db):
    seen = []
    barrier = threading.Barrier(4)

    def work(n):
        seen.append(id(db.connection()))
        barrier.wait()  # all four alive at once, so no connection object is reused
        db.insert("config", {"name": f"t{n}", "value": "1", "updated_at": "x"})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4
    assert db.value("SELECT COUNT(*) FROM config") == 4


def test_mariadb_connection_is_reopened_after_server_drops_it(request):
    db = request.getfixturevalue("mariadb_db")
    conn_id = db.value("SELECT CONNECTION_ID()")
    other = Db(db.dsn, db.user, db.password)
    other.execute(f"KILL {int(conn_id)}")
    other.close()
    assert db.value("SELECT 1") == 1  # reopened transparently outside a transaction
    assert db.value("SELECT CONNECTION_ID()") != conn_id


def test_sqlite_pragmas(request):
    db = request.getfixturevalue("sqlite_db")
    assert db.value("PRAGMA journal_mode") == "wal"
    assert db.value("PRAGMA foreign_keys") == 1
    assert db.value("PRAGMA busy_timeout") == 30000


@pytest.mark.parametrize("dsn,expected", [
    ("sqlite:db/store.sqlite", "sqlite"),
    ("mysql:host=127.0.0.1;port=3306;dbname=store;charset=utf8mb4", "mysql"),
])
def test_parse_dsn(dsn, expected):
    assert parse_dsn(dsn)[0] == expected


def test_parse_dsn_values():
    assert parse_dsn("mysql:host=h;port=1;dbname=d")[1] == {"host": "h", "port": "1", "dbname": "d"}


@pytest.mark.parametrize("dsn", ["nonsense", "postgres:host=x", "mysql:host"])
def test_bad_dsn_is_refused(dsn):
    with pytest.raises(DbError):
        parse_dsn(dsn)


def test_numbered_migrations_run_once_and_are_recorded(db, tmp_path, monkeypatch):
    from lib import migrate
    (tmp_path / "001_add_notes.sql").write_text(
        "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body VARCHAR(64) NOT NULL);\n"
        "CREATE INDEX IF NOT EXISTS idx_notes_body ON notes (body);\n")
    (tmp_path / "002_seed_notes.sql").write_text("INSERT INTO notes (body) VALUES ('first');\n")
    (tmp_path / "README.txt").write_text("not a migration")
    monkeypatch.setattr(migrate, "MIGRATIONS", str(tmp_path))
    # The project's own migrations are recorded already: set them aside for this test.
    real = db.query("SELECT * FROM schema_migrations")
    db.execute("DELETE FROM schema_migrations")
    try:
        assert migrate.init(db) == [1, 2]
        assert migrate.init(db) == []  # recorded: never applied twice
        assert db.value("SELECT COUNT(*) FROM notes") == 1
        rows = db.query("SELECT version, name FROM schema_migrations ORDER BY version")
        assert rows == [{"version": 1, "name": "001_add_notes.sql"},
                        {"version": 2, "name": "002_seed_notes.sql"}]
    finally:
        db.execute("DROP TABLE IF EXISTS notes")
        db.execute("DELETE FROM schema_migrations")
        for row in real:
            db.insert("schema_migrations", row)
