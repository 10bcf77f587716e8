"""Network fees of payouts: EIP-1559 prices under an operator ceiling, and bumps.

- Chains with a base fee get type-2 transactions: tip = eth_maxPriorityFeePerGas (or a
  middle eth_feeHistory reward when the node lacks it), maxFeePerGas = 2 x base fee + tip,
  which survives several full blocks of base-fee growth; only base fee + tip is charged,
  the rest of the reservation stays with the sender.
- Chains without one get legacy (type-0) transactions at the node's gas price plus
  GAS_PRICE_MARGIN_PERCENT (25).
- MAX_FEE_GWEI_<CHAIN_ID> caps what a payout may ever pay per gas. maxFeePerGas is cut
  to the ceiling; when even base fee + tip is above it nothing is signed (FeeTooHigh)
  and the intent waits, with the reason shown to staff.
- A replacement (same nonce) raises BOTH fee fields by at least REPLACEMENT_BUMP (12.5%,
  above go-ethereum's 10% and what other clients require), and to the current market
  price if that is higher; never above the ceiling.
"""
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

GWEI = 10 ** 9
# Ceilings per chain in gwei: Ethereum's worst fee storms stayed below 1,000 gwei for
# minutes; 300 lets a payout through anything short of that. Base and other L2s run at
# a fraction of a gwei. Polygon's gas token is cheap and its fees spike to thousands.
DEFAULT_MAX_FEE_GWEI = {1: 300, 11155111: 1000, 8453: 50, 137: 5000, 31337: 1000}
FALLBACK_MAX_FEE_GWEI = 500
REPLACEMENT_BUMP = Fraction(9, 8)


class FeeTooHigh(Exception):
    """The network's price is above the operator's ceiling: nothing is signed."""


@dataclass(frozen=True)
class Fees:
    tx_type: int             # 2 (EIP-1559) or 0 (legacy)
    max_fee: int             # maxFeePerGas, or gasPrice for legacy
    tip: int = None          # maxPriorityFeePerGas (type 2 only)
    base_fee: int = None     # the base fee seen when they were chosen

    def tx_fields(self):
        if self.tx_type == 2:
            return {"type": 2, "maxFeePerGas": self.max_fee, "maxPriorityFeePerGas": self.tip}
        return {"gasPrice": self.max_fee}


def ceiling(env, chain_id):
    """The highest price per gas (wei) a payout on this chain may pay."""
    text = (env.get("MAX_FEE_GWEI_%d" % int(chain_id)) or "").strip()
    if text:
        try:
            gwei = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError("MAX_FEE_GWEI_%d must be a number of gwei, not %r" % (chain_id, text))
        if gwei <= 0:
            raise ValueError("MAX_FEE_GWEI_%d must be positive" % chain_id)
    else:
        gwei = DEFAULT_MAX_FEE_GWEI.get(int(chain_id), FALLBACK_MAX_FEE_GWEI)
    return int(gwei * GWEI)


def current(env, rpc, chain_id):
    """What a payout signed now should offer (Fees), or FeeTooHigh."""
    limit = ceiling(env, chain_id)
    data = rpc.fee_data()
    if data.eip1559:
        tip = data.max_priority_fee_per_gas
        wanted = 2 * data.base_fee_per_gas + tip
        if data.base_fee_per_gas + tip > limit:
            raise FeeTooHigh("network fee %s gwei (base %s + tip %s) is above the ceiling of %s gwei "
                             "(MAX_FEE_GWEI_%d): nothing is signed until it falls"
                             % (_gwei(data.base_fee_per_gas + tip), _gwei(data.base_fee_per_gas), _gwei(tip),
                                _gwei(limit), chain_id))
        max_fee = min(wanted, limit)
        return Fees(2, max_fee, min(tip, max_fee), data.base_fee_per_gas)
    margin = int(env.get("GAS_PRICE_MARGIN_PERCENT") or 25)
    price = data.gas_price * (100 + margin) // 100
    if data.gas_price > limit:
        raise FeeTooHigh("gas price %s gwei is above the ceiling of %s gwei (MAX_FEE_GWEI_%d)"
                         % (_gwei(data.gas_price), _gwei(limit), chain_id))
    return Fees(0, min(price, limit))


def _up(value):
    return math.ceil(value * REPLACEMENT_BUMP)


def bumped(old, now, limit):
    """Fees for a replacement of a transaction signed with `old`, given the market `now`.

    None when the bump would pass the ceiling (the transaction is left to wait).
    """
    if old.tx_type == 2:
        tip = max(_up(old.tip), now.tip if now.tx_type == 2 else 0)
        max_fee = max(_up(old.max_fee), now.max_fee, tip)
        if max_fee > limit:
            return None
        return Fees(2, max_fee, tip, now.base_fee)
    price = max(_up(old.max_fee), now.max_fee)
    if price > limit:
        return None
    return Fees(0, price)


def _gwei(wei):
    """Wei as gwei text for messages ('12', '0.875')."""
    value = Decimal(int(wei)) / GWEI
    return str(value.quantize(Decimal("0.001")).normalize()) if value != value.to_integral() else str(int(value))
