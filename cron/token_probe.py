"""Fee-on-transfer detection for token verification (duty 8, cron/prices.py).

A simulated transfer, nothing spent: find an account that holds the token (the `to`
side of its recent Transfer events, newest first, with balanceOf > 0), then eth_call
that account with a state override that gives it the code of TransferProbe
(tests/contracts/TransferProbe.sol). The probe calls token.transfer(PROBE_RECIPIENT,
amount) from the holder's own balance and returns the recipient's and the holder's
balances before and after. The recipient getting less than `amount`, or the holder
losing more, is a fee-on-transfer token.

Best effort: no holder in the recent logs, a node that refuses (or ignores) state
overrides or eth_getLogs, or a transfer that reverts / returns false for every holder
tried (blacklisted or paused holder) give a result with ``skipped`` set, which
verification accepts (payout-time checks catch what slips through). Only transport
failures (RpcTransportError) are raised, so the token stays unverified for the next run.

Supported by geth, anvil, Alchemy and most providers: eth_call params
[call, block, {address: {"code": "0x..."}}].
"""
from dataclasses import dataclass
from typing import Optional

from cron.rpc_client import RpcCallError, RpcError, RpcTransportError
from lib.chains import keccak256, to_checksum_address

# Runtime bytecode of tests/contracts/TransferProbe.sol: the `deployedBytecode` field of
# tests/contracts/TransferProbe.json, written by `node tests/contracts/build.js`
# (solc-js 0.8.28, evmVersion cancun, optimizer 200 runs, bytecodeHash none). Copied
# here because production cron has no compiler; tests/test_token_probe.py checks that
# it still equals the JSON. Rebuild and copy again after editing the .sol.
PROBE_RUNTIME = (
    "0x608060405234801561000f575f5ffd5b5060043610610029575f3560e01c8063dd8e5ec91461002d575b5f5ffd5b61"
    "004061003b366004610340565b61005c565b6040516100539796959493929190610379565b60405180910390f35b7fa4"
    "52e9172d40d15db7824b23a1c198b6a12f71115f70b6c044418f84d6c5afc85f80808080606081806100908c8c610233"
    "565b9750915061009e8c30610233565b955090508115806100ad575080155b156100c457506004965085945083925061"
    "02269050565b6040516001600160a01b038c81166024830152604482018c90525f9182918f169063a9059cbb90606401"
    "6040516020818303038152906040529060e01b6020820180516001600160e01b03838183161783525050505060405161"
    "012791906103db565b5f604051808303815f865af19150503d805f8114610160576040519150601f19603f3d01168201"
    "6040523d82523d5f602084013e610165565b606091505b50915091508161019557610100815111156101805761010081"
    "525b60039950889750869550935061022692505050565b80515f036101a657600199506101e1565b6020815110156101"
    "b957600599506101e1565b808060200190518101906101cd91906103f1565b156101d8575f6101db565b60025b60ff16"
    "99505b6101eb8e8e610233565b985093506101f98e30610233565b96509250831580610208575082155b156102215750"
    "6004985087965085945061022692505050565b505050505b9397509397509397909450565b5f5f5f5f856001600160a0"
    "1b03166370a082318660405160240161026691906001600160a01b0391909116815260200190565b6040516020818303"
    "038152906040529060e01b6020820180516001600160e01b03838183161783525050505060405161029f91906103db56"
    "5b5f60405180830381855afa9150503d805f81146102d7576040519150601f19603f3d011682016040523d82523d5f60"
    "2084013e6102dc565b606091505b50915091508115806102ef575060208151105b15610301575f5f9350935050506103"
    "1e565b60018180602001905181019061031791906103f1565b9350935050505b9250929050565b80356001600160a01b"
    "038116811461033b575f5ffd5b919050565b5f5f5f60608486031215610352575f5ffd5b61035b84610325565b925061"
    "036960208501610325565b9150604084013590509250925092565b878152866020820152856040820152846060820152"
    "8360808201528260a082015260e060c08201525f82518060e0840152806020850161010085015e5f6101008285010152"
    "610100601f19601f83011684010191505098975050505050505050565b5f82518060208501845e5f9201918252509190"
    "50565b5f60208284031215610401575f5ffd5b505191905056fea164736f6c634300081c000a"
)

PROBE_MAGIC = keccak256(b"escrow-marketplace TransferProbe v1")
SEL_PROBE = "0x" + keccak256(b"probe(address,address,uint256)")[:4].hex()
TRANSFER_TOPIC = "0x" + keccak256(b"Transfer(address,address,uint256)").hex()
# A fixed address nobody has the key of; the probe measures its balance change only.
PROBE_RECIPIENT = to_checksum_address("0x" + keccak256(b"escrow-marketplace TransferProbe recipient")[12:].hex())
ZERO = "0x" + "0" * 40

LOG_BLOCKS = 2000       # how far back to look for Transfer events
MAX_LOG_CALLS = 16      # eth_getLogs calls per token (ranges are halved when a node refuses)
MAX_CANDIDATES = 20     # recipients whose balance is asked
MAX_HOLDERS = 3         # holders tried when a transfer reverts or returns false

STATUS_TRUE, STATUS_NO_RETURN, STATUS_FALSE, STATUS_REVERTED, STATUS_BALANCE_FAILED, STATUS_MALFORMED = range(6)
_STATUS_TEXT = {STATUS_TRUE: "returned true", STATUS_NO_RETURN: "returned nothing",
                STATUS_FALSE: "returned false", STATUS_REVERTED: "reverted",
                STATUS_BALANCE_FAILED: "balanceOf failed", STATUS_MALFORMED: "returned malformed data"}


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of probe_transfer.

    outcome: "ok" (amount delivered in full), "fee" (fee-on-transfer), or a skip:
    "no_holder", "no_logs" (eth_getLogs refused), "override_unsupported",
    "transfer_failed" (reverted / returned false for every holder tried).
    """
    outcome: str
    holder: Optional[str] = None
    amount: Optional[int] = None
    delivered: Optional[int] = None     # recipient's balance change
    debited: Optional[int] = None       # holder's balance change (positive = lost)
    status: Optional[int] = None        # the probe's transfer status (STATUS_*)
    detail: str = ""

    @property
    def fee_on_transfer(self):
        return self.outcome == "fee"

    @property
    def skipped(self):
        return self.outcome not in ("ok", "fee")

    @property
    def reason(self):
        """The rejection reason for a fee-on-transfer token, else a note for the log."""
        if self.outcome == "fee":
            if self.delivered is not None and self.delivered < self.amount:
                return "fee-on-transfer token: a transfer of %d delivered %d" % (self.amount, self.delivered)
            return "fee-on-transfer token: a transfer of %d debited the sender %d" % (self.amount, self.debited)
        if self.outcome == "ok":
            return "probe transfer of %d from %s delivered %d" % (self.amount, self.holder, self.delivered)
        return "probe skipped (%s): %s" % (self.outcome, self.detail)


def encode_probe_call(token, recipient, amount):
    return (SEL_PROBE + token.lower()[2:].rjust(64, "0") + recipient.lower()[2:].rjust(64, "0")
            + hex(amount)[2:].rjust(64, "0"))


def decode_probe_reply(value):
    """(status, toBefore, toAfter, fromBefore, fromAfter, revert data) or None when the
    reply is not the probe's (a node that ignored the state override)."""
    if not isinstance(value, str) or not value.startswith("0x"):
        return None
    try:
        data = bytes.fromhex(value[2:])
    except ValueError:
        return None
    if len(data) < 8 * 32 or data[:32] != PROBE_MAGIC:
        return None
    words = [int.from_bytes(data[i * 32:(i + 1) * 32], "big") for i in range(8)]
    status, to_before, to_after, from_before, from_after, offset = words[1:7]
    revert = b""
    if offset + 32 <= len(data):
        n = int.from_bytes(data[offset:offset + 32], "big")
        revert = data[offset + 32:offset + 32 + min(n, 256)]
    return status, to_before, to_after, from_before, from_after, revert


def _revert_text(data):
    # Error(string): 0x08c379a0 + offset + length + bytes
    if len(data) >= 68 and data[:4] == bytes.fromhex("08c379a0"):
        n = int.from_bytes(data[36:68], "big")
        return data[68:68 + n].decode("utf-8", "replace")
    return "0x" + data.hex()[:80] if data else "no reason"


def _topic_address(topic):
    if not isinstance(topic, str) or len(topic) != 66:
        return None
    return "0x" + topic[-40:].lower()


def recent_recipients(rpc, token, blocks=None, max_calls=MAX_LOG_CALLS, limit=MAX_CANDIDATES):
    """Distinct `to` addresses of the token's Transfer events in the last `blocks`
    blocks, newest first (lowercase). A range the node refuses (too many results,
    range limits) is halved, newer half first, within max_calls eth_getLogs calls.
    Returns (addresses, error text or None when no range could be read at all)."""
    blocks = LOG_BLOCKS if blocks is None else blocks
    head = rpc.block_number()
    ranges = [(max(0, head - blocks + 1), head)]     # stack: the newest range on top
    seen, out = set(), []
    calls = answered = 0
    last_error = None
    token_l = token.lower()
    while ranges and calls < max_calls and len(out) < limit:
        lo, hi = ranges.pop()
        calls += 1
        try:
            logs = rpc.get_logs({"address": token, "fromBlock": lo, "toBlock": hi, "topics": [TRANSFER_TOPIC]})
        except RpcCallError as e:
            last_error = str(e)
            if hi > lo:
                mid = (lo + hi) // 2
                ranges.append((lo, mid))
                ranges.append((mid + 1, hi))
            continue
        except RpcTransportError:
            raise
        except RpcError as e:       # a malformed reply
            last_error = str(e)
            continue
        answered += 1

        def order(log):
            try:
                return (int(log.get("blockNumber") or "0x0", 16), int(log.get("logIndex") or "0x0", 16))
            except (TypeError, ValueError):
                return (0, 0)
        for log in sorted((x for x in logs if isinstance(x, dict)), key=order, reverse=True):
            topics = log.get("topics") or []
            if len(topics) != 3:
                continue
            to = _topic_address(topics[2])
            if to is None or to in seen or to in (ZERO, token_l, PROBE_RECIPIENT.lower()):
                continue
            seen.add(to)
            out.append(to)
            if len(out) >= limit:
                break
    return out, (None if answered else (last_error or "no eth_getLogs call answered"))


def find_holders(rpc, token, candidates):
    """[(address, balance)] of the candidates holding a balance, in the candidates' order."""
    if not candidates:
        return []
    try:
        balances = rpc.erc20_balances(token, candidates)
    except RpcTransportError:
        raise
    except RpcError:
        balances = {}
        for a in candidates:        # one odd reply must not hide the other holders
            try:
                balances[a] = rpc.erc20_balance(token, a)
            except RpcTransportError:
                raise
            except RpcError:
                continue
    return [(a, balances[a]) for a in candidates if balances.get(a, 0) > 0]


def probe_holder(rpc, token, holder, amount, recipient=PROBE_RECIPIENT, block="latest"):
    """One simulated transfer of `amount` from `holder` to `recipient`.

    Returns the decoded probe reply (see decode_probe_reply) or raises RpcCallError
    (the node refused the call or the override) / RpcError (it ignored the override).
    """
    call = {"to": holder, "data": encode_probe_call(token, recipient, amount)}
    reply = rpc.call("eth_call", [call, block, {holder: {"code": PROBE_RUNTIME}}])
    decoded = decode_probe_reply(reply)
    if decoded is None:
        raise RpcError("the node ignored the state override (reply %r)" % (str(reply)[:80],))
    return decoded


def probe_transfer(rpc, token, decimals, holders=None, recipient=PROBE_RECIPIENT):
    """Simulate a transfer of the token and tell whether it takes a fee (ProbeResult).

    ``holders``: addresses to try instead of looking them up in the Transfer logs.
    The amount is min(holder's balance, 10**decimals), at least 1. Raises only
    RpcTransportError.
    """
    token = token.lower()
    if holders is None:
        candidates, log_error = recent_recipients(rpc, token)
        if log_error is not None:
            return ProbeResult("no_logs", detail="eth_getLogs: %s" % log_error)
    else:
        candidates = [h.lower() for h in holders]
    held = find_holders(rpc, token, candidates)
    if not held:
        return ProbeResult("no_holder", detail="no holder among %d recipients of Transfer events in the last %d blocks"
                           % (len(candidates), LOG_BLOCKS) if holders is None else
                           "none of the %d given addresses holds the token" % len(candidates))
    failures = []
    for holder, balance in held[:MAX_HOLDERS]:
        amount = max(1, min(balance, 10 ** int(decimals)))
        try:
            status, to_before, to_after, from_before, from_after, revert = probe_holder(
                rpc, token, holder, amount, recipient)
        except RpcTransportError:
            raise
        except RpcCallError as e:
            return ProbeResult("override_unsupported", holder=holder, amount=amount,
                               detail="the node refused the probe eth_call: %s" % e)
        except RpcError as e:
            return ProbeResult("override_unsupported", holder=holder, amount=amount, detail=str(e))
        if status not in (STATUS_TRUE, STATUS_NO_RETURN):
            what = _STATUS_TEXT.get(status, "status %d" % status)
            if status == STATUS_REVERTED:
                what += ": " + _revert_text(revert)
            failures.append("%s %s" % (to_checksum_address(holder), what))
            continue
        delivered = to_after - to_before
        debited = from_before - from_after
        result = dict(holder=to_checksum_address(holder), amount=amount, delivered=delivered,
                      debited=debited, status=status)
        if delivered < amount or debited > amount:
            return ProbeResult("fee", **result)
        return ProbeResult("ok", **result)
    return ProbeResult("transfer_failed", holder=to_checksum_address(held[0][0]),
                       detail="probe transfer failed from %s" % "; ".join(failures))
