"""The demo's seed data (demo/seed.py, used by `make demo`) on both databases: the
marketplace shows its items priced in ETH on the dev chain, and its buyer can order."""
import pytest

from demo import seed
from lib import orders, users
from tests.chain import fresh_address
from tests.client import Client
from tests.factories import login

HTML = {"Accept": "text/html"}


@pytest.fixture
def settings():
    return {"ALLOW_DEV_CHAIN": "1"}


def test_demo_seed_makes_a_marketplace_to_buy_from(db, app):
    vendor_wallet, buyer_wallet = fresh_address(), fresh_address()
    people, store = seed.seed(db, vendor_wallet, buyer_wallet)
    assert {p["username"]: p["role"] for p in people.values()} == {
        "admin": "admin", "staff": "staff", "vendor": "customer", "buyer": "customer"}
    assert db.value("SELECT role FROM users WHERE username = 'vendor'") == "vendor"
    c = Client(app)
    r = c.get("/marketplace.php", headers=HTML)
    assert r.status == 200
    for name, _category, _description, _packages in seed.ITEMS:
        assert name in r.text
    login(c, "buyer", seed.common.PASSWORD)
    package = db.value("SELECT uuid FROM packages WHERE price_usd = '120'")
    order = orders.create_order(db, users.by_username(db, "buyer"), package, "ETH", 31337)
    assert order["required_amount"] == "0.06"  # $120 at the demo's $2,000 per ETH
    r = c.get("/payment.php?uuid=" + order["uuid"], headers=HTML)
    assert r.status == 200 and "pending" in r.text
    assert buyer_wallet in r.text  # the buyer's refund address from the seed
    assert db.value("SELECT payout_address FROM stores WHERE uuid = ?", (store["uuid"],)) == vendor_wallet


def test_demo_pay_needs_an_order():
    from demo import pay
    assert pay.main([]) == 2


def test_demo_pay_sends_what_is_still_due(db, anvil):
    """`make demo-pay`'s core against anvil: the remainder of a part-paid order, in wei, to
    its escrow address; nothing when paid; refused without an escrow address or for a token."""
    from demo import pay
    seed.seed(db, fresh_address(), fresh_address())
    package = db.value("SELECT uuid FROM packages WHERE price_usd = '4.99'")
    order = orders.create_order(db, users.by_username(db, "buyer"), package, "ETH", 31337)["uuid"]
    required = int(db.value("SELECT required_amount FROM evm_transactions WHERE transaction_uuid = ?", (order,)))
    assert required == 2495 * 10 ** 12  # $4.99 at $2,000
    with pytest.raises(pay.PayError, match="no escrow address"):
        pay.pay(db, order, anvil.url, wait_seconds=1, say=lambda m: None)
    with pytest.raises(pay.PayError, match="no order"):
        pay.pay(db, "nope", anvil.url, wait_seconds=1)
    escrow = fresh_address()
    db.execute("UPDATE evm_transactions SET escrow_address = ?, derivation_index = 5, received_amount = ? "
               "WHERE transaction_uuid = ?", (escrow, str(10 ** 15), order))
    said = []
    assert pay.pay(db, order, anvil.url, wait_seconds=1, say=said.append).startswith("0x")
    anvil.mine(1)
    assert anvil.balance(escrow) == required - 10 ** 15
    assert said[0].startswith("sent 0.001495 ETH from ")
    db.execute("UPDATE evm_transactions SET received_amount = required_amount WHERE transaction_uuid = ?", (order,))
    assert pay.pay(db, order, anvil.url, wait_seconds=1, say=said.append) is None
    assert said[-1] == "nothing is due: the order is paid"
    db.execute("UPDATE evm_transactions SET token_contract = ? WHERE transaction_uuid = ?", (fresh_address(), order))
    with pytest.raises(pay.PayError, match="ETH orders only"):
        pay.pay(db, order, anvil.url, wait_seconds=1)
