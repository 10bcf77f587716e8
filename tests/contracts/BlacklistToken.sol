// SPDX-License-Identifier: MIT
// USDC-style ERC-20 with a blacklist and a pause switch. Test-suite only.
//
// The owner (the deployer) can blacklist(address), unBlacklist(address), pause()
// and unpause(); anyone else calling them reverts "BlacklistToken: caller is not the owner".
// While paused, transfer/transferFrom/approve revert "Pausable: paused".
// transfer/transferFrom/approve revert "Blacklistable: account is blacklisted" when
// the caller, the from/to address or the spender is blacklisted (as in USDC's FiatToken).
pragma solidity ^0.8.20;

import "./TokenBase.sol";

contract BlacklistToken is TokenBase {
    address public owner;
    bool public paused;
    mapping(address => bool) public isBlacklisted;

    event Blacklisted(address indexed account);
    event UnBlacklisted(address indexed account);
    event Pause();
    event Unpause();

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply_)
        TokenBase(name_, symbol_, decimals_, supply_)
    {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "BlacklistToken: caller is not the owner");
        _;
    }

    modifier whenNotPaused() {
        require(!paused, "Pausable: paused");
        _;
    }

    modifier notBlacklisted(address account) {
        require(!isBlacklisted[account], "Blacklistable: account is blacklisted");
        _;
    }

    function blacklist(address account) external onlyOwner {
        isBlacklisted[account] = true;
        emit Blacklisted(account);
    }

    function unBlacklist(address account) external onlyOwner {
        isBlacklisted[account] = false;
        emit UnBlacklisted(account);
    }

    function pause() external onlyOwner {
        paused = true;
        emit Pause();
    }

    function unpause() external onlyOwner {
        paused = false;
        emit Unpause();
    }

    function transfer(address to, uint256 value)
        external whenNotPaused notBlacklisted(msg.sender) notBlacklisted(to) returns (bool)
    {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value)
        external whenNotPaused notBlacklisted(msg.sender) notBlacklisted(spender) returns (bool)
    {
        _approve(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value)
        external whenNotPaused notBlacklisted(msg.sender) notBlacklisted(from) notBlacklisted(to)
        returns (bool)
    {
        _spendAllowance(from, msg.sender, value);
        _transfer(from, to, value);
        return true;
    }
}
