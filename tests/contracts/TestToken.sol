// SPDX-License-Identifier: MIT
// Minimal ERC-20 used only by the test suite and `make demo` on a local anvil chain.
// Decimals are a constructor argument so the tests can cover both 6-decimal
// (USDC-like) and 18-decimal tokens with one contract.
pragma solidity ^0.8.20;

import "./TokenBase.sol";

contract TestToken is TokenBase {
    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply_)
        TokenBase(name_, symbol_, decimals_, supply_) {}

    function transfer(address to, uint256 value) public virtual returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) public virtual returns (bool) {
        _approve(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) public virtual returns (bool) {
        _spendAllowance(from, msg.sender, value);
        _transfer(from, to, value);
        return true;
    }
}
