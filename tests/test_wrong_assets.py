"""Money in the wrong place (reconcile, cron duty 7).

ETH in a token escrow and other accepted tokens in any escrow are flagged 'wrong_asset'
(never refunded automatically); late token amounts worth less than
LATE_REFUND_MIN_GAS_MULTIPLE x their refund's gas are flagged 'dust' and not refunded;
what the payout engine retained on purpose is not late. The duties are called directly
on a tasks.Context, without the payout engine.
"""
import pytest

from cron import tasks
from lib import intents
from lib import status_machine as sm
from lib.db import utc_now
from tests.cron_support import Parties, escrow, intent_row, make_order, make_user, status
from tests.duties import duty

ETH = 10 ** 18
CHAIN = 31337


def reconcile(env, db):
    return duty(env, db, tasks.reconcile)


def accept(db, symbol, contract="", decimals=18, manual=None, status="active"):
    now = utc_now()
    return db.insert("accepted_tokens", {"chain_id": CHAIN, "symbol": symbol, "contract_address": contract,
                                         "decimals": decimals, "status": status, "manual_usd_price": manual,
                                         "created_at": now, "updated_at": now})


def price(db, symbol, usd, contract=""):
    db.insert("prices", {"chain_id": CHAIN, "symbol": symbol, "contract_address": contract, "usd_price": usd,
                         "fetched_at": utc_now()})


def order(db, env, p, token="", decimals=18, currency="ETH", required=ETH // 10, final=None):
    """An order with its escrow (PENDING); with `final`, closed as that status (nothing paid in)."""
    uuid = make_order(db, p.buyer, p.store, required, currency=currency, token=token, decimals=decimals,
                      refund=p.refund)
    duty(env, db, tasks.fill_escrow_addresses)
    if final is not None:
        if final != sm.FAILED:
            sm.append_status(db, uuid, sm.COMPLETED, str(required), comment="paid (test)")
        sm.append_status(db, uuid, final, str(required), comment="closed (test)")
    assert status(db, uuid) == (final or sm.PENDING)
    return uuid, escrow(db, uuid)


def flags(db, uuid):
    return db.query("SELECT * FROM staff_flags WHERE transaction_uuid = ? ORDER BY id", (uuid,))


def open_flags(db, uuid):
    return [f for f in flags(db, uuid) if f["resolved_at"] is None]


@pytest.fixture
def tusd(anvil, db):
    """A 6-decimal token at $1 (manual price) beside ETH at $2000 (a `prices` row)."""
    token = anvil.deploy_token(symbol="TUSD", decimals=6)
    accept(db, "ETH")
    price(db, "ETH", "2000")
    accept(db, "TUSD", token, decimals=6, manual="1")
    return token


@pytest.mark.parametrize("final", [None, sm.CANCELLED])
def test_eth_sent_to_a_token_escrow_is_flagged_once_and_never_refunded(anvil, db, env, tusd, final):
    p = Parties(db)
    uuid, addr = order(db, env, p, token=tusd, decimals=6, currency="TUSD", required=10 ** 7, final=final)
    wei = ETH // 100 + 7
    anvil.send_eth(1, addr, wei)
    anvil.mine(3)
    ctx = reconcile(env, db)
    assert ctx.counts["reconcile"]["wrong_asset"] == 1
    got = flags(db, uuid)
    assert len(got) == 1
    f = got[0]
    assert f["kind"] == "wrong_asset" and f["amount"] == str(wei) and f["token_contract"] == ""
    assert f["address"] == addr and int(f["chain_id"]) == CHAIN and f["resolved_at"] is None
    assert str(wei) in f["reason"] and "TUSD escrow" in f["reason"]
    assert intent_row(db, uuid) is None                  # nothing refunded automatically
    ctx = reconcile(env, db)                             # once per (order, asset, amount)
    assert len(flags(db, uuid)) == 1 and "flagged" not in ctx.counts["reconcile"]
    assert intent_row(db, uuid) is None
    assert anvil.balance(addr) == wei
    # Staff rescue it: a RESCUE intent of the native coin; reconcile leaves the order to it.
    staff = make_user(db, "staffer", role="staff")
    out = intents.rescue(db, staff, f["id"])
    rescue = intent_row(db, uuid)
    assert out["ok"] and rescue["action"] == intents.RESCUE and rescue["asset"] == ""
    assert int(rescue["flag_id"]) == f["id"]
    reconcile(env, db)
    assert len(flags(db, uuid)) == 1


@pytest.mark.parametrize("final", [None, sm.RELEASED])
def test_another_accepted_token_in_an_eth_escrow_is_flagged(anvil, db, env, tusd, final):
    p = Parties(db)
    other = anvil.deploy_token(symbol="OTHR", decimals=8)
    accept(db, "OTHR", other, decimals=8, manual="3")
    ignored = anvil.deploy_token(symbol="NOPE", decimals=6)
    accept(db, "NOPE", ignored, decimals=6, status="rejected")        # not an active token: not read
    uuid, addr = order(db, env, p, final=final)
    anvil.token_transfer(tusd, 0, addr, 2_500_000)
    anvil.token_transfer(other, 0, addr, 12345)
    anvil.token_transfer(ignored, 0, addr, 999)
    anvil.mine(3)
    reconcile(env, db)
    got = {f["token_contract"]: f for f in flags(db, uuid)}
    assert set(got) == {tusd, other}
    assert got[tusd]["kind"] == "wrong_asset" and got[tusd]["amount"] == "2500000"
    assert "2.5 TUSD" in got[tusd]["reason"] and "ETH escrow" in got[tusd]["reason"]
    assert got[other]["kind"] == "wrong_asset" and got[other]["amount"] == "12345"
    assert intent_row(db, uuid) is None
    reconcile(env, db)
    assert len(flags(db, uuid)) == 2


def test_a_second_token_in_a_token_escrow_is_flagged(anvil, db, env, tusd):
    p = Parties(db)
    other = anvil.deploy_token(symbol="OTHR", decimals=18)
    accept(db, "OTHR", other, decimals=18, manual="3")
    uuid, addr = order(db, env, p, token=tusd, decimals=6, currency="TUSD", required=10 ** 7)
    anvil.token_transfer(other, 0, addr, 10 ** 14)
    anvil.token_transfer(tusd, 0, addr, 10 ** 7)          # the order's own payment: not reconcile's
    anvil.mine(3)
    reconcile(env, db)
    got = flags(db, uuid)
    assert [(f["kind"], f["token_contract"], f["amount"]) for f in got] == [("wrong_asset", other, str(10 ** 14))]


@pytest.mark.parametrize("final", [sm.RELEASED, sm.CANCELLED])
def test_dust_sent_to_a_closed_escrow_is_flagged_not_refunded(anvil, db, env, tusd, final):
    p = Parties(db)
    uuid, addr = order(db, env, p, token=tusd, decimals=6, currency="TUSD", required=10 ** 7, final=final)
    anvil.token_transfer(tusd, 0, addr, 1)               # $0.000001
    anvil.mine(3)
    ctx = reconcile(env, db)
    assert ctx.counts["reconcile"]["dust"] == 1
    got = flags(db, uuid)
    assert len(got) == 1 and got[0]["kind"] == "dust" and got[0]["amount"] == "1"
    assert got[0]["token_contract"] == tusd and "under 3 x the refund's gas" in got[0]["reason"]
    assert intent_row(db, uuid) is None                  # no LATE_REFUND
    reconcile(env, db)
    assert len(flags(db, uuid)) == 1
    anvil.token_transfer(tusd, 0, addr, 1)               # more dust: a new amount, the old flag superseded
    anvil.mine(3)
    reconcile(env, db)
    assert [f["amount"] for f in open_flags(db, uuid)] == ["2"]
    assert "superseded" in flags(db, uuid)[0]["resolution"]
    assert intent_row(db, uuid) is None
    assert anvil.token_balance(tusd, addr) == 2
    assert status(db, uuid) == final


def test_late_token_amount_is_refunded_from_exactly_three_times_its_gas(anvil, db, env, tusd):
    """The boundary of the dust rule: value >= 3 x (21000 + 100000) x gas price x ETH price."""
    p = Parties(db)
    at, at_addr = order(db, env, p, token=tusd, decimals=6, currency="TUSD", required=10 ** 7, final=sm.RELEASED)
    below, below_addr = order(db, env, p, token=tusd, decimals=6, currency="TUSD", required=10 ** 7,
                              final=sm.CANCELLED)
    anvil.token_transfer(tusd, 0, at_addr, 10 ** 6)       # 1 TUSD
    anvil.token_transfer(tusd, 0, below_addr, 10 ** 6 - 1)
    anvil.mine(3)
    gas_price = int(anvil.rpc("eth_gasPrice"), 16)       # no block is mined before reconcile reads it
    # 1 TUSD is worth exactly 3 x the refund's gas in USD (ETH at $2000).
    rate = tasks.fmt_units(3 * 121000 * gas_price * 2000, 18)
    db.execute("UPDATE accepted_tokens SET manual_usd_price = ? WHERE contract_address = ?", (rate, tusd))
    ctx = reconcile(env, db)
    assert ctx.counts["reconcile"]["late_refunds"] == 1
    refund = intent_row(db, at)
    assert refund["action"] == intents.LATE_REFUND and refund["status"] == "pending"
    assert refund["requested_by"] is None and refund["asset"] == tusd
    assert flags(db, at) == []
    assert intent_row(db, below) is None
    assert [(f["kind"], f["amount"]) for f in flags(db, below)] == [("dust", str(10 ** 6 - 1))]


def test_late_token_amount_without_any_price_is_dust(anvil, db, env):
    p = Parties(db)
    token = anvil.deploy_token(symbol="UNP", decimals=6)
    accept(db, "ETH", manual="2000")
    accept(db, "UNP", token, decimals=6)                 # no manual price, no prices row
    uuid, addr = order(db, env, p, token=token, decimals=6, currency="UNP", required=10 ** 7, final=sm.RELEASED)
    anvil.token_transfer(token, 0, addr, 10 ** 12)
    anvil.mine(3)
    reconcile(env, db)
    got = flags(db, uuid)
    assert [(f["kind"], f["amount"]) for f in got] == [("dust", str(10 ** 12))]
    assert "no USD price of UNP" in got[0]["reason"]
    assert intent_row(db, uuid) is None


def test_worthwhile_late_token_amount_opens_a_late_refund_and_covers_an_older_dust_flag(anvil, db, env, tusd):
    p = Parties(db)
    uuid, addr = order(db, env, p, token=tusd, decimals=6, currency="TUSD", required=10 ** 7, final=sm.RELEASED)
    anvil.token_transfer(tusd, 0, addr, 3)
    anvil.mine(3)
    reconcile(env, db)
    assert [f["kind"] for f in open_flags(db, uuid)] == ["dust"]
    anvil.token_transfer(tusd, 0, addr, 5 * 10 ** 6)     # $5: well above 3 x the gas
    anvil.mine(3)
    reconcile(env, db)
    refund = intent_row(db, uuid)
    assert refund["action"] == intents.LATE_REFUND and refund["status"] == "pending"
    assert open_flags(db, uuid) == []
    assert "LATE_REFUND" in flags(db, uuid)[0]["resolution"]
    reconcile(env, db)                                   # the open intent holds the order
    assert db.value("SELECT COUNT(*) FROM transaction_intents WHERE transaction_uuid = ?", (uuid,)) == 1


def test_retained_amounts_are_not_late(anvil, db, env, tusd):
    p = Parties(db)
    eth_uuid, eth_addr = order(db, env, p, final=sm.RELEASED)
    tok_uuid, tok_addr = order(db, env, p, token=tusd, decimals=6, currency="TUSD", required=10 ** 7,
                               final=sm.CANCELLED)
    kept = ETH // 100
    anvil.send_eth(1, eth_addr, kept)
    anvil.token_transfer(tusd, 0, tok_addr, 4 * 10 ** 6)
    anvil.send_eth(1, tok_addr, kept)
    anvil.mine(3)
    db.execute("UPDATE evm_transactions SET retained_amount = ? WHERE transaction_uuid = ?", (str(kept), eth_uuid))
    db.execute("UPDATE evm_transactions SET retained_amount = ?, retained_native = ? WHERE transaction_uuid = ?",
               (str(4 * 10 ** 6), str(kept), tok_uuid))
    ctx = reconcile(env, db)
    assert ctx.counts["reconcile"]["checked"] == 2
    assert flags(db, eth_uuid) == [] and flags(db, tok_uuid) == []
    assert intent_row(db, eth_uuid) is None and intent_row(db, tok_uuid) is None
    # Only what is above the retained amount counts: one base unit of TUSD is dust.
    anvil.token_transfer(tusd, 0, tok_addr, 1)
    anvil.mine(3)
    reconcile(env, db)
    assert [(f["kind"], f["amount"]) for f in flags(db, tok_uuid)] == [("dust", "1")]
    # Native: half of the ETH escrow's balance is no longer retained -> refunded.
    db.execute("UPDATE evm_transactions SET retained_amount = ? WHERE transaction_uuid = ?",
               (str(kept // 2), eth_uuid))
    reconcile(env, db)
    assert intent_row(db, eth_uuid)["action"] == intents.LATE_REFUND
    assert flags(db, eth_uuid) == []
