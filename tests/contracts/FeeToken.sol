// SPDX-License-Identifier: MIT
// Fee-on-transfer ERC-20 (like STA, PAXG): the recipient gets value minus a fee.
// Test-suite only.
//
// Every transfer/transferFrom of value debits the sender value, credits the
// recipient value - fee and the feeCollector (the deployer) fee, where
// fee = value * feeBps / 10000 rounded down (feeBps defaults to 100 = 1%;
// setFeeBps is callable by anyone: tests only). It emits Transfer(from, to, net)
// and then Transfer(from, feeCollector, fee); the second event is left out when the
// fee is 0. The allowance is spent by the full value.
pragma solidity ^0.8.20;

import "./TestToken.sol";

contract FeeToken is TestToken {
    address public immutable feeCollector;
    uint256 public feeBps = 100;

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply_)
        TestToken(name_, symbol_, decimals_, supply_)
    {
        feeCollector = msg.sender;
    }

    function setFeeBps(uint256 feeBps_) external {
        require(feeBps_ <= 10000, "FeeToken: fee above 100%");
        feeBps = feeBps_;
    }

    function _transfer(address from, address to, uint256 value) internal override {
        require(to != address(0), "ERC20: transfer to zero address");
        uint256 bal = balanceOf[from];
        require(bal >= value, "ERC20: transfer amount exceeds balance");
        uint256 fee = value * feeBps / 10000;
        unchecked {
            balanceOf[from] = bal - value;
        }
        balanceOf[to] += value - fee;
        emit Transfer(from, to, value - fee);
        if (fee > 0) {
            balanceOf[feeCollector] += fee;
            emit Transfer(from, feeCollector, fee);
        }
    }
}
