"""Marketplace test helpers: tokens with rates, stores, items, packages, orders in a status.

    world = market.world(db)      # vendor with a store, item, $100 package; buyer; staff; stranger
    order = market.order(db, world, status="COMPLETED")
"""
import datetime

import pytest

from lib import catalog, orders, status_machine as sm, tokens
from lib.db import utc_now
from tests.factories import make_user

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"     # mainnet USDC (checksummed)
DAI = "0x6B175474E89094C44Da98b954EedeAC495271d0F"      # mainnet DAI (checksummed)
ADDR_A = "0x52908400098527886E0F7030069857D2E4169EE7"   # EIP-55 test vectors
ADDR_B = "0x8617E340B3D01FA5F11F306F4090FD50E238070D"
ADDR_C = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
ADDR_D = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
BAD_CHECKSUM = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"   # one letter's case flipped
NO_CHECKSUM = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"    # all lower case


def ago(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def add_token(db, chain_id=1, symbol="ETH", contract="", decimals=None, status="active",
              manual_usd_price=None):
    """An accepted token, active by default (as if cron had verified it)."""
    token = tokens.add_token(db, chain_id, symbol, contract, decimals, manual_usd_price)
    if status != "unverified":
        tokens.set_status(db, token["id"], status, decimals=token["decimals"] if token["decimals"] is not None
                          else decimals)
    return tokens.get_token(db, token["id"])


def set_rate(db, chain_id, symbol, usd, age_seconds=0, contract=""):
    """The USD rate cron would have stored `age_seconds` ago."""
    db.upsert("prices", {"chain_id": chain_id, "symbol": symbol},
              {"contract_address": contract, "usd_price": str(usd), "fetched_at": ago(age_seconds)})


def store(db, owner, name="shop", tier="free"):
    s = catalog.create_store(db, owner, name, "a store", True)
    if tier != "free":
        db.execute("UPDATE stores SET tier = ? WHERE uuid = ?", (tier, s["uuid"]))
    return s


def item(db, owner, store_uuid, name="widget"):
    return catalog.create_item(db, owner, store_uuid, name, "an item", None)


def package(db, owner, item_uuid, price="100", name="one"):
    return catalog.create_package(db, owner, item_uuid, name, "a package", price)


class World(dict):
    __getattr__ = dict.__getitem__


def world(db, price="100", eth_rate="2000"):
    """Vendor (owner of `shop`), buyer, staff, admin, stranger; ETH on chain 1 at eth_rate."""
    w = World()
    w["vendor"] = make_user(db, "vendor1")
    w["buyer"] = make_user(db, "buyer1")
    w["staff"] = make_user(db, "staff1", role="staff")
    w["admin"] = make_user(db, "admin1", role="admin")
    w["stranger"] = make_user(db, "stranger1")
    w["store"] = store(db, w["vendor"], "shop")
    w["vendor"]["role"] = "vendor"
    w["item"] = item(db, w["vendor"], w["store"]["uuid"])
    w["package"] = package(db, w["vendor"], w["item"]["uuid"], price)
    w["eth"] = add_token(db, 1, "ETH")
    set_rate(db, 1, "ETH", eth_rate)
    return w


# Status paths from no status row to each status (what cron would append).
PATHS = {
    "PENDING": [],
    "COMPLETED": ["PENDING", "COMPLETED"],
    "FROZEN": ["PENDING", "COMPLETED", "FROZEN"],
    "RELEASED": ["PENDING", "COMPLETED", "RELEASED"],
    "CANCELLED": ["PENDING", "CANCELLED"],
    "FAILED": ["PENDING", "FAILED"],
}


def order(db, w, status="PENDING", buyer=None, dispatched=False, confirmed=False, currency="ETH",
          chain_id=1):
    """A new order of w.package by the buyer, moved to `status` as cron would."""
    buyer = buyer or w["buyer"]
    result = orders.create_order(db, buyer, w["package"]["uuid"], currency, chain_id, ADDR_A)
    uuid = result["uuid"]
    required = db.value("SELECT required_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))
    for s in PATHS[status]:
        sm.append_status(db, uuid, s, required if s != "PENDING" else "0")
    if dispatched:
        sm.append_shipping(db, uuid, sm.DISPATCHED)
    if confirmed:
        db.execute("UPDATE transactions SET buyer_confirmed_at = ? WHERE uuid = ?", (utc_now(), uuid))
    return uuid


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch):
    """Cheaper scrypt for the users these tests create (the parameters are stored with
    each hash, so verification still works); password hashing has its own tests."""
    from lib import users
    monkeypatch.setattr(users, "SCRYPT_N", 2 ** 10)
