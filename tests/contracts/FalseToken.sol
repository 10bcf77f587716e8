// SPDX-License-Identifier: MIT
// ERC-20 that reports failure by returning false instead of reverting (like some
// pre-2018 tokens). Test-suite only.
//
// transfer and transferFrom return false, move nothing and emit nothing when
//   - the failure switch is on (setFail(true), callable by anyone: tests only), or
//   - the balance (or, for transferFrom, the allowance) is insufficient.
// Otherwise they behave like TestToken. A transfer to address(0) still reverts.
pragma solidity ^0.8.20;

import "./TestToken.sol";

contract FalseToken is TestToken {
    bool public fail;

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply_)
        TestToken(name_, symbol_, decimals_, supply_) {}

    function setFail(bool fail_) external {
        fail = fail_;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        if (fail || balanceOf[msg.sender] < value) return false;
        _transfer(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        if (fail || balanceOf[from] < value) return false;
        uint256 allowed = allowance[from][msg.sender];
        if (allowed < value) return false;
        if (allowed != type(uint256).max) allowance[from][msg.sender] = allowed - value;
        _transfer(from, to, value);
        return true;
    }
}
