"""The payout engine of real chains.

- intents: `failures` and `next_attempt_at` (cron-opened intents are retried with
  backoff), `asset` and `flag_id` (a staff rescue of funds in the wrong place); the new
  status `needs_attention` keeps the order's open_key, so nothing else moves its funds
  until staff decide.
- payouts: EIP-1559 fee fields, the gas limit, the block hash a receipt was seen in,
  what the token's Transfer log delivered, replacement count, and `retry_of` /
  `redirect_to` for legs staff retry or redirect. `payout_attempts` keeps every signed
  attempt of a leg (same nonce, raised fees): any of them may be the one mined.
- staff_flags: a kind, the intent, chain, address and asset, and who resolved it how.
- evm_transactions: what is knowingly left in a closed escrow (unused fee headroom,
  legs staff settled off-platform), so reconcile does not refund it as a late payment.
- chain_heads: the gas station and fee figures cron saw, for /health.php and staff.

Payouts the previous release signed (legacy transactions, one attempt each) get their
attempt row and gas fields from their own signed bytes, so cron follows them as before.
"""
from lib.db import utc_now
from lib.migrate import add_column

PAYOUT_ATTEMPTS = """
CREATE TABLE IF NOT EXISTS payout_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payout_id INTEGER NOT NULL,
    tx_hash VARCHAR(66) NOT NULL UNIQUE,
    raw_tx TEXT NOT NULL,
    amount VARCHAR(80) NOT NULL,
    tx_type INTEGER NOT NULL DEFAULT 2,
    max_fee_per_gas VARCHAR(40) NOT NULL,
    max_priority_fee_per_gas VARCHAR(40) NULL,
    created_at VARCHAR(19) NOT NULL,
    FOREIGN KEY (payout_id) REFERENCES payouts (id)
);
CREATE INDEX IF NOT EXISTS idx_payout_attempts_payout ON payout_attempts (payout_id, id);
CREATE INDEX IF NOT EXISTS idx_staff_flags_intent ON staff_flags (intent_uuid, id);
CREATE INDEX IF NOT EXISTS idx_transaction_intents_next ON transaction_intents (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS idx_transaction_intents_flag ON transaction_intents (flag_id);
"""


def up(db):
    for table in ("transaction_intents", "deposit_withdraw_intents"):
        add_column(db, table, "failures", "INTEGER NOT NULL DEFAULT 0")
        add_column(db, table, "next_attempt_at", "VARCHAR(19) NULL")
    add_column(db, "transaction_intents", "asset", "VARCHAR(42) NULL")
    add_column(db, "transaction_intents", "flag_id", "INTEGER NULL")

    for name, definition in (
            ("retry_of", "INTEGER NULL"),
            ("redirect_to", "VARCHAR(42) NULL"),
            ("tx_type", "INTEGER NOT NULL DEFAULT 0"),
            ("gas_limit", "BIGINT NULL"),
            ("max_fee_per_gas", "VARCHAR(40) NULL"),
            ("max_priority_fee_per_gas", "VARCHAR(40) NULL"),
            ("sent_block", "BIGINT NULL"),
            ("block_hash", "VARCHAR(66) NULL"),
            ("gas_used", "BIGINT NULL"),
            ("effective_gas_price", "VARCHAR(40) NULL"),
            ("delivered_amount", "VARCHAR(80) NULL"),
            ("replacements", "INTEGER NOT NULL DEFAULT 0"),
            ("settled_by", "VARCHAR(36) NULL")):
        add_column(db, "payouts", name, definition)

    for name, definition in (
            ("kind", "VARCHAR(32) NULL"),
            ("intent_uuid", "VARCHAR(36) NULL"),
            ("chain_id", "INTEGER NULL"),
            ("address", "VARCHAR(42) NULL"),
            ("token_contract", "VARCHAR(42) NULL"),
            ("resolved_by", "VARCHAR(36) NULL"),
            ("resolution", "VARCHAR(255) NULL")):
        add_column(db, "staff_flags", name, definition)

    add_column(db, "evm_transactions", "retained_amount", "VARCHAR(80) NOT NULL DEFAULT '0'")
    add_column(db, "evm_transactions", "retained_native", "VARCHAR(80) NOT NULL DEFAULT '0'")

    for name, definition in (
            ("gas_station_address", "VARCHAR(42) NULL"),
            ("gas_station_balance", "VARCHAR(80) NULL"),
            ("gas_station_min_balance", "VARCHAR(80) NULL"),
            ("base_fee_per_gas", "VARCHAR(40) NULL"),
            ("max_fee_ceiling", "VARCHAR(40) NULL"),
            ("confirmations", "VARCHAR(16) NULL")):
        add_column(db, "chain_heads", name, definition)

    db.run_script(PAYOUT_ATTEMPTS)
    backfill_attempts(db)


def _legacy_fields(raw_tx):
    """(gas price, gas limit) of a signed legacy transaction: RLP [nonce, gasPrice, gas, ...]."""
    import rlp
    raw = bytes.fromhex(raw_tx[2:] if raw_tx.startswith("0x") else raw_tx)
    if raw[0] < 0xc0:
        raise ValueError("not a legacy transaction")
    fields = rlp.decode(raw)
    return int.from_bytes(fields[1], "big"), int.from_bytes(fields[2], "big")


def backfill_attempts(db):
    rows = db.query("SELECT p.* FROM payouts p WHERE p.raw_tx <> '' AND NOT EXISTS "
                    "(SELECT 1 FROM payout_attempts a WHERE a.payout_id = p.id)")
    for row in rows:
        gas_price, gas_limit = _legacy_fields(row["raw_tx"])
        with db.transaction():
            db.execute("UPDATE payouts SET tx_type = 0, gas_limit = ?, max_fee_per_gas = ? WHERE id = ?",
                       (gas_limit, str(gas_price), row["id"]))
            db.insert("payout_attempts", {"payout_id": row["id"], "tx_hash": row["tx_hash"], "raw_tx": row["raw_tx"],
                                          "amount": row["amount"], "tx_type": 0, "max_fee_per_gas": str(gas_price),
                                          "max_priority_fee_per_gas": None, "created_at": row["created_at"] or utc_now()})
