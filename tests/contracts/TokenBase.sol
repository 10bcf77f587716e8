// SPDX-License-Identifier: MIT
// Shared state and internals of every ERC-20 test token (TestToken and the odd ones:
// FalseToken, FeeToken, NoReturnToken, BlacklistToken). Test-suite only, never deployed
// outside a local anvil chain. Abstract: build.js writes no JSON for it.
//
// Every token has the constructor (string name_, string symbol_, uint8 decimals_,
// uint256 supply_) minting supply_ to msg.sender, the standard
// name/symbol/decimals/totalSupply/balanceOf/allowance getters and the Transfer and
// Approval events. The external transfer/transferFrom/approve are TestToken's (FalseToken
// and FeeToken build on it) or a token's own where their shape differs (NoReturnToken
// returns nothing, BlacklistToken checks its lists first).
pragma solidity ^0.8.20;

abstract contract TokenBase {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    uint256 public totalSupply;

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        totalSupply = supply_;
        balanceOf[msg.sender] = supply_;
        emit Transfer(address(0), msg.sender, supply_);
    }

    function _approve(address owner, address spender, uint256 value) internal {
        allowance[owner][spender] = value;
        emit Approval(owner, spender, value);
    }

    /// Reverts when the allowance is short (an allowance of type(uint256).max is never spent).
    function _spendAllowance(address from, address spender, uint256 value) internal {
        uint256 allowed = allowance[from][spender];
        if (allowed != type(uint256).max) {
            require(allowed >= value, "ERC20: insufficient allowance");
            allowance[from][spender] = allowed - value;
        }
    }

    /// Moves value and emits one Transfer; reverts on a short balance.
    function _transfer(address from, address to, uint256 value) internal virtual {
        require(to != address(0), "ERC20: transfer to zero address");
        uint256 bal = balanceOf[from];
        require(bal >= value, "ERC20: transfer amount exceeds balance");
        unchecked {
            balanceOf[from] = bal - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
