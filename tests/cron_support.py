"""Helpers for the cron tests: settings, rows for users/stores/orders, running cron.

Orders are created through the JSON API when it exists (see `api_order`), or by
direct inserts (`make_order`), which mirror what POST /api/transactions.php stores:
transactions + evm_transactions rows with escrow_address NULL.
"""
import os
import signal
import subprocess
import sys
import time
import uuid as uuidlib

from lib import status_machine as sm
from lib.db import utc_now
from tests.chain import fresh_address

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRON = os.path.join(ROOT, "cron", "cron.py")
CHAIN = 31337
HOUR = 3600
# The cron wallet of the tests (NOT anvil's dev mnemonic: escrows must start empty).
MNEMONIC = "repair gaze vast hockey afraid senior sketch front name broken envelope penalty"


def cron_env(anvil_url, tmp_path, **extra):
    env = {
        "MNEMONIC": MNEMONIC,
        "RPC_URL_%d" % CHAIN: anvil_url,
        "ALLOW_DEV_CHAIN": "1",
        "COMMISSION_WALLET_DEV": fresh_address(),
        "CRON_RPC_TIMEOUT": "2",
        "CRON_RPC_RETRIES": "1",
        "CRON_RPC_BACKOFF": "0.05",
    }
    env.update({k: v for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env


def run_cron(env, db, worker="test-worker"):
    """One in-process cron run; returns the result dict of cron.cron.run_once."""
    from cron import cron as cronmain
    return cronmain.run_once(env, db, log=lambda m: None, worker=worker)


def cron_subprocess(env, db, extra_env=None, wait=True, timeout=120, args=(), script=CRON):
    """cron/cron.py (or another cron script) [args] as its own process against the test database.

    A process told to crash (CRON_CRASH_AT) takes its leases for CRON_LEASE_SECONDS=3
    unless told otherwise; after it is SIGKILLed this waits until its leases have
    expired, as the next host would, so the next run carries on where it died.
    """
    penv = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "RPC_URL_", "COMMISSION_WALLET_"))}
    penv.update(env)
    penv.update({"DB_DSN": db.dsn, "DB_USER": db.user or "", "DB_PASSWORD": db.password or "",
                 "ENV_FILE": os.path.join(ROOT, "tests", "no-such.env"), "PYTHONUNBUFFERED": "1"})
    if "CRON_CRASH_AT" in (extra_env or {}):
        penv.setdefault("CRON_LEASE_SECONDS", "3")
    penv.update(extra_env or {})
    proc = subprocess.Popen([sys.executable, script, *args], env=penv, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=timeout)
    proc.output = out
    if proc.returncode == -signal.SIGKILL:
        wait_leases_expired(db, timeout=int(penv.get("CRON_LEASE_SECONDS") or 120) + 5)
    return proc


def wait_leases_expired(db, timeout=10):
    """Wait until no cron lease is held (a killed holder's expire on the database's clock)."""
    from cron import leases
    deadline = time.monotonic() + timeout
    while leases.holders(db):
        if time.monotonic() > deadline:
            raise AssertionError("cron leases still held: %r" % leases.holders(db))
        time.sleep(0.2)


def wallet():
    from cron.escrow import HDWallet
    if not hasattr(wallet, "_w"):
        wallet._w = HDWallet(MNEMONIC)
    return wallet._w


# -- rows ---------------------------------------------------------------------------

def make_user(db, username, role="customer", inviter=None, payout=None, refund=None):
    now = utc_now()
    row = {"uuid": str(uuidlib.uuid4()), "username": username, "username_lower": username.lower(),
           "password_hash": "x", "role": role, "banned": 0, "inviter_uuid": inviter["uuid"] if inviter else None,
           "refund_address": refund, "payout_address": payout, "created_at": now, "updated_at": now}
    row["id"] = db.insert("users", row)
    return row


def make_store(db, owner, tier="free", payout=None, name=None):
    now = utc_now()
    name = name or ("s" + uuidlib.uuid4().hex[:10])
    store = {"uuid": str(uuidlib.uuid4()), "storename": name, "storename_lower": name.lower(),
             "description": "", "tier": tier, "payout_address": payout, "suspended": 0,
             "vendorship_agreed_at": now, "created_at": now, "updated_at": now}
    db.insert("stores", store)
    db.insert("store_users", {"store_uuid": store["uuid"], "user_uuid": owner["uuid"], "role": "owner",
                              "created_at": now})
    return store


def make_order(db, buyer, store, required, currency="ETH", token="", decimals=18, refund=None):
    """An order as the API stores it: escrow_address NULL, no status row yet."""
    now = utc_now()
    item = {"uuid": str(uuidlib.uuid4()), "store_uuid": store["uuid"], "name": "thing", "description": "",
            "category_id": None, "active": 1, "created_at": now, "updated_at": now}
    db.insert("items", item)
    package = {"uuid": str(uuidlib.uuid4()), "item_uuid": item["uuid"], "name": "one", "description": "",
               "price_usd": "10.00", "active": 1, "created_at": now, "updated_at": now}
    db.insert("packages", package)
    uuid = str(uuidlib.uuid4())
    db.insert("transactions", {"uuid": uuid, "type": "evm", "description": "test order",
                               "package_uuid": package["uuid"], "store_uuid": store["uuid"],
                               "buyer_uuid": buyer["uuid"], "price_usd": "10.00", "created_at": now,
                               "updated_at": now})
    db.insert("evm_transactions", {"transaction_uuid": uuid, "chain_id": CHAIN, "currency": currency,
                                   "token_contract": token, "decimals": decimals,
                                   "required_amount": str(required), "usd_rate": "2000",
                                   "refund_address": refund, "created_at": now})
    return uuid


def escrow(db, uuid):
    return db.value("SELECT escrow_address FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))


def status(db, uuid):
    row = sm.current_status(db, uuid)
    return row["status"] if row else None


def intent_row(db, uuid):
    return db.one("SELECT * FROM transaction_intents WHERE transaction_uuid = ? ORDER BY id DESC LIMIT 1", (uuid,))


def backdate(db, uuid, seconds):
    """Make an order (and its status/shipping rows) look `seconds` older."""
    import datetime

    def shift(stamp):
        t = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S") - datetime.timedelta(seconds=seconds)
        return t.strftime("%Y-%m-%d %H:%M:%S")
    for table, col, key in (("transactions", "created_at", "uuid"), ("transaction_statuses", "time", "transaction_uuid"),
                            ("shipping_statuses", "time", "transaction_uuid")):
        for r in db.query("SELECT id, %s FROM %s WHERE %s = ?" % (col, table, key), (uuid,)):
            db.execute("UPDATE %s SET %s = ? WHERE id = ?" % (table, col), (shift(r[col]), r["id"]))


class Parties:
    """Buyer (invited by a referrer), vendor with a store, fresh payout addresses."""

    def __init__(self, db, tier="free", referrer_payout=True, vendor_payout=True, refund=True):
        self.referrer_addr = fresh_address()
        self.vendor_addr = fresh_address()
        self.refund_addr = fresh_address()
        self.referrer = make_user(db, "ref", payout=self.referrer_addr if referrer_payout else None)
        self.buyer = make_user(db, "buyer", inviter=self.referrer)
        self.vendor = make_user(db, "vendor", role="vendor")
        self.store = make_store(db, self.vendor, tier=tier, payout=self.vendor_addr if vendor_payout else None)
        self.refund = self.refund_addr if refund else None


def paid_order(anvil, db, env, parties, amount, token="", decimals=18, currency="ETH", payer=1):
    """An order cron has given an escrow, paid in full and confirmed: COMPLETED."""
    uuid = make_order(db, parties.buyer, parties.store, amount, currency=currency, token=token,
                      decimals=decimals, refund=parties.refund)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    addr = escrow(db, uuid)
    if token:
        anvil.token_transfer(token, 0, addr, amount)
    else:
        anvil.send_eth(payer, addr, amount)
    anvil.mine(3)
    r = run_cron(env, db)
    assert r["ok"], r["errors"]
    assert status(db, uuid) == sm.COMPLETED
    return uuid, addr


def settle(anvil, env, db, uuid, final, rounds=4):
    """Run cron and mine until the order reaches `final` (payouts need confirmations)."""
    for _ in range(rounds):
        r = run_cron(env, db)
        assert r["ok"], r["errors"]
        if status(db, uuid) == final:
            return r
        anvil.mine(3)
    raise AssertionError("order %s is %s, not %s; intent %r" % (uuid, status(db, uuid), final, intent_row(db, uuid)))


def payout_rows(db, uuid):
    return db.query("SELECT * FROM payouts WHERE transaction_uuid = ? ORDER BY id", (uuid,))


def fees(rows):
    """Network fees paid out of the escrow (native legs only)."""
    return sum(int(r["fee"]) for r in rows if r["kind"] == "payout" and not r["token_contract"])


def paid_fees(rows):
    """Network fees the chain actually charged (gas used x effective price)."""
    return sum(int(r["gas_used"]) * int(r["effective_gas_price"]) for r in rows if r["gas_used"] is not None)


def retained(db, uuid):
    """What the payout engine recorded as knowingly left in the escrow (order asset, native)."""
    row = db.one("SELECT retained_amount, retained_native FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))
    return int(row["retained_amount"]), int(row["retained_native"])


def assert_native_escrow_emptied(anvil, db, uuid, addr):
    """A native escrow after its payout holds exactly the fee headroom the network did not
    charge (recorded as retained), nothing else."""
    rows = [r for r in payout_rows(db, uuid) if r["kind"] == "payout"]
    headroom = fees(rows) - paid_fees(rows)
    assert anvil.balance(addr) == headroom == retained(db, uuid)[0]
