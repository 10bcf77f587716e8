// SPDX-License-Identifier: MIT
// USDT-style ERC-20: transfer, transferFrom and approve return nothing (no outputs in
// the ABI, empty return data) and revert on failure. Test-suite only.
pragma solidity ^0.8.20;

import "./TokenBase.sol";

contract NoReturnToken is TokenBase {
    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply_)
        TokenBase(name_, symbol_, decimals_, supply_) {}

    function transfer(address to, uint256 value) external {
        _transfer(msg.sender, to, value);
    }

    function approve(address spender, uint256 value) external {
        _approve(msg.sender, spender, value);
    }

    function transferFrom(address from, address to, uint256 value) external {
        _spendAllowance(from, msg.sender, value);
        _transfer(from, to, value);
    }
}
