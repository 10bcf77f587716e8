// SPDX-License-Identifier: MIT
// Fee-on-transfer probe for token verification (cron/token_probe.py). Never deployed:
// cron runs its runtime code (deployedBytecode in TransferProbe.json, copied into
// cron/token_probe.py as PROBE_RUNTIME) in an eth_call whose state override puts it at
// the address of an account that holds the token. probe(token, to, amount) then calls
// token.transfer(to, amount) from that holder's own balance and reports what moved.
// Nothing is spent: eth_call changes no state.
//
// Stateless on purpose: the overridden account keeps its storage, so the probe reads
// and writes none. Every external call is low-level, so the probe itself never
// reverts (a revert of the whole eth_call means the node did not run this code).
//
// Returns (magic, status, toBefore, toAfter, fromBefore, fromAfter, revertData):
//   magic   MAGIC, so the caller can tell a node that ignored the override
//   status  0 transfer returned true      1 returned nothing (USDT style)
//           2 returned false              3 reverted (revertData: its return data)
//           4 balanceOf failed            5 returned malformed data (1..31 bytes)
//   to/from balances of the recipient and of the holder (this address) before and
//   after the transfer (after = before when the transfer reverted).
pragma solidity ^0.8.20;

contract TransferProbe {
    bytes32 internal constant MAGIC = keccak256("escrow-marketplace TransferProbe v1");

    function probe(address token, address to, uint256 amount)
        external
        returns (bytes32 magic, uint256 status, uint256 toBefore, uint256 toAfter,
                 uint256 fromBefore, uint256 fromAfter, bytes memory revertData)
    {
        magic = MAGIC;
        bool ok1;
        bool ok2;
        (ok1, toBefore) = _balanceOf(token, to);
        (ok2, fromBefore) = _balanceOf(token, address(this));
        if (!ok1 || !ok2) return (magic, 4, toBefore, toBefore, fromBefore, fromBefore, revertData);

        (bool success, bytes memory ret) = token.call(abi.encodeWithSelector(0xa9059cbb, to, amount));
        if (!success) {
            if (ret.length > 256) {
                assembly { mstore(ret, 256) }   // keep the reply small
            }
            return (magic, 3, toBefore, toBefore, fromBefore, fromBefore, ret);
        }
        if (ret.length == 0) {
            status = 1;
        } else if (ret.length < 32) {
            status = 5;
        } else {
            status = abi.decode(ret, (uint256)) == 0 ? 2 : 0;
        }
        (ok1, toAfter) = _balanceOf(token, to);
        (ok2, fromAfter) = _balanceOf(token, address(this));
        if (!ok1 || !ok2) return (magic, 4, toBefore, toBefore, fromBefore, fromBefore, revertData);
    }

    function _balanceOf(address token, address who) private view returns (bool, uint256) {
        (bool success, bytes memory ret) = token.staticcall(abi.encodeWithSelector(0x70a08231, who));
        if (!success || ret.length < 32) return (false, 0);
        return (true, abi.decode(ret, (uint256)));
    }
}
