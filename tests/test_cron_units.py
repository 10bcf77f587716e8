"""Pure parts of the cron layer: splits in integer base units, the fee policy, the
completion rule, the single-instance lock, the commission wallet lookup."""
import random
from decimal import Decimal

import pytest

from cron import payouts
from cron.tasks import is_paid
from lib import status_machine as sm


@pytest.mark.parametrize("balance", [0, 1, 7, 10 ** 18 + 1, 2 ** 256 - 1])
@pytest.mark.parametrize("c,rp", [(Decimal("0.20"), Decimal("0.50")), (Decimal("0.02"), Decimal("0.5")),
                                  (Decimal("0"), Decimal("0.5")), (Decimal("1"), Decimal("1")),
                                  (Decimal("0.0333"), Decimal("0.125"))])
def test_release_split_sums_exactly(balance, c, rp):
    for has_ref in (True, False):
        s = payouts.split_release(balance, c, rp, has_ref)
        assert sum(s.values()) == balance and min(s.values()) >= 0
        total = balance * int(c * 10000) // 10000
        assert s["vendor"] == balance - total
        assert s["referrer"] == (total * int(rp * 1000) // 1000 if has_ref else 0)


def test_release_split_of_one_eth_free_tier():
    s = payouts.split_release(10 ** 18, Decimal("0.20"), Decimal("0.50"), True)
    assert s == {"vendor": 8 * 10 ** 17, "referrer": 10 ** 17, "commission": 10 ** 17}


def test_partial_refund_split():
    s = payouts.split_partial_refund(10 ** 18 + 7, Decimal("0.10"), 30)
    assert s["resolver"] == (10 ** 18 + 7) // 10
    assert s["buyer"] == (10 ** 18 + 7 - s["resolver"]) * 30 // 100
    assert sum(s.values()) == 10 ** 18 + 7


def test_fees_come_out_of_the_commission_first():
    gross = {"vendor": 800, "referrer": 100, "commission": 100}
    net, fee = payouts.apply_native_fees(gross, {"vendor": 21, "referrer": 21, "commission": 21}, 1,
                                         payouts.FEE_ORDER[sm.RELEASE])
    assert fee == 63 and net == {"vendor": 800, "referrer": 100, "commission": 37}


def test_a_commission_share_smaller_than_the_fee_is_dropped_and_the_vendor_pays_the_rest():
    gross = {"vendor": 1000, "referrer": 0, "commission": 30}
    net, fee = payouts.apply_native_fees(gross, {"vendor": 21, "referrer": 21, "commission": 21}, 1,
                                         payouts.FEE_ORDER[sm.RELEASE])
    # Paying the commission wallet would cost 42 in fees for 30; one transaction is cheaper.
    assert net == {"vendor": 1009} and fee == 21


def test_nothing_to_pay_when_the_balance_is_below_one_fee():
    with pytest.raises(payouts.NothingToPay):
        payouts.apply_native_fees({"buyer": 20}, {"buyer": 21}, 1, ("buyer",))
    net, fee = payouts.apply_native_fees({"buyer": 22}, {"buyer": 21}, 1, ("buyer",))
    assert net == {"buyer": 1} and fee == 21


def test_fee_invariant_on_random_splits():
    rnd = random.Random(7)
    for _ in range(2000):
        roles = {"buyer": rnd.randint(0, 10 ** 6), "resolver": rnd.randint(0, 10 ** 5),
                 "vendor": rnd.randint(0, 10 ** 6)}
        gas = {r: rnd.choice([21000, 30000]) for r in roles}
        price = rnd.randint(1, 40)
        try:
            net, fee = payouts.apply_native_fees(roles, gas, price, payouts.FEE_ORDER[sm.PARTIAL_REFUND])
        except payouts.NothingToPay:
            assert sum(roles.values()) < max(gas.values()) * price * 3
            continue
        assert sum(net.values()) + fee == sum(roles.values())
        assert all(v > 0 for v in net.values())
        assert fee == sum(gas[r] for r in net) * price
        # Nobody receives more than their share, except a later fee bearer inheriting a dropped share.
        assert net.get("resolver", 0) <= roles["resolver"] + roles["buyer"]


def test_completion_rule_is_exact_at_any_size():
    required = 10 ** 40 + 1
    tol = Decimal("0.05")
    edge = required * 95 // 100 + (1 if required * 95 % 100 else 0)   # ceil(required * 0.95)
    assert is_paid(edge, required, tol) and not is_paid(edge - 1, required, tol)
    assert not is_paid(0, 0, tol)
    assert is_paid(10, 10, Decimal("0")) and not is_paid(9, 10, Decimal("0"))


def test_commission_wallet_by_chain_id_then_network():
    a, b = "0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D"
    assert payouts.commission_wallet({"COMMISSION_WALLET_MAINNET": a}, 1) == a
    assert payouts.commission_wallet({"COMMISSION_WALLET_MAINNET": a, "COMMISSION_WALLET_1": b}, 1) == b
    assert payouts.commission_wallet({"COMMISSION_WALLET_BASE": a.lower()}, 8453) == a
    with pytest.raises(payouts.PayoutRefused, match="COMMISSION_WALLET_137 or COMMISSION_WALLET_POLYGON"):
        payouts.commission_wallet({"COMMISSION_WALLET_MAINNET": a}, 137)
    with pytest.raises(payouts.PayoutRefused, match="not a valid address"):
        payouts.commission_wallet({"COMMISSION_WALLET_DEV": "0x1234"}, 31337)


@pytest.mark.parametrize("amount", [0, -1, 10 ** 18 * -1, 1.5, True])
def test_no_zero_negative_or_float_transfer_is_ever_signed(amount):
    from cron.escrow import HDWallet
    account = HDWallet("test test test test test test test test test test test junk").escrow_key(0)
    to = "0x52908400098527886E0F7030069857D2E4169EE7"
    with pytest.raises(ValueError, match="refusing to sign"):
        payouts._sign(account, 31337, 10 ** 9, 0, to, amount, 21000, "")
    with pytest.raises(ValueError, match="refusing to sign"):
        payouts._sign(account, 31337, 10 ** 9, 0, to, amount, 60000, "0x8617E340B3D01FA5F11F306F4090FD50E238070D")
    signed = payouts._sign(account, 31337, 10 ** 9, 0, to, 1, 21000, "")
    assert signed["raw_tx"].startswith("0x") and len(signed["tx_hash"]) == 66
