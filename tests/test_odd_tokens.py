"""The odd ERC-20 test tokens (tests/contracts/*.sol) behave as documented, on anvil.

FalseToken returns false without reverting, FeeToken delivers value minus a fee,
NoReturnToken (USDT-style) returns no data, BlacklistToken (USDC-style) reverts for
blacklisted addresses and while paused. Each test deploys its own token and uses
fresh recipient addresses, so the shared session chain needs no snapshot.
"""
import json

import pytest

from tests.chain import REPO_ROOT, AnvilError, fresh_address

DEC = 10 ** 6          # deploy_odd_token's default decimals is 6
SUPPLY = 10 ** 15


def transfer_data(anvil, to, amount):
    return anvil.encode_call("transfer(address,uint256)", to, amount)


def call_uint(anvil, token, fn_signature, *args):
    return int(anvil.eth_call_raw(token, anvil.encode_call(fn_signature, *args)), 16)


def ok(receipt):
    return int(receipt["status"], 16) == 1


def test_artifacts_share_format_and_compiler():
    contracts = REPO_ROOT / "tests" / "contracts"
    ref = json.loads((contracts / "TestToken.json").read_text())
    for name in ("FalseToken", "FeeToken", "NoReturnToken", "BlacklistToken"):
        art = json.loads((contracts / ("%s.json" % name)).read_text())
        assert list(art) == ["contractName", "compiler", "evmVersion", "abi", "bytecode"]
        assert art["contractName"] == name
        assert (art["compiler"], art["evmVersion"]) == (ref["compiler"], ref["evmVersion"])
        assert art["bytecode"].startswith("0x60") and len(art["bytecode"]) > 1000
        ctor = [f for f in art["abi"] if f["type"] == "constructor"][0]
        assert [i["type"] for i in ctor["inputs"]] == ["string", "string", "uint8", "uint256"]
    noret = json.loads((contracts / "NoReturnToken.json").read_text())["abi"]
    for fn in ("transfer", "transferFrom", "approve"):
        assert [f["outputs"] for f in noret if f.get("name") == fn] == [[]]


@pytest.mark.parametrize("kind", ["false", "fee", "noreturn", "blacklist"])
def test_constructor_and_metadata(anvil, kind):
    tok = anvil.deploy_odd_token(kind, symbol="ODD%s" % kind.upper()[:3], decimals=6,
                                 supply=SUPPLY, from_index=3)
    assert anvil.token_balance(tok, anvil.dev_account(3)) == SUPPLY
    assert call_uint(anvil, tok, "totalSupply()") == SUPPLY
    assert call_uint(anvil, tok, "decimals()") == 6
    from eth_abi import decode
    sym, = decode(["string"], bytes.fromhex(anvil.eth_call_raw(tok, anvil.encode_call("symbol()"))[2:]))
    assert sym == "ODD%s" % kind.upper()[:3]
    with pytest.raises(ValueError):
        anvil.deploy_odd_token("nope")


def test_false_token_returns_false_and_moves_nothing(anvil):
    tok = anvil.deploy_odd_token("false")
    owner, to = anvil.dev_account(0), fresh_address()

    # switch off: a normal transfer returning true
    assert int(anvil.eth_call_raw(tok, transfer_data(anvil, to, 5 * DEC), owner), 16) == 1
    r = anvil.token_call(tok, 0, transfer_data(anvil, to, 5 * DEC))
    assert ok(r)
    assert anvil.transfer_logs(r) == [(tok, owner, to, 5 * DEC)]
    assert anvil.token_balance(tok, to) == 5 * DEC
    assert anvil.token_balance(tok, owner) == SUPPLY - 5 * DEC

    # insufficient balance: false, no revert, nothing moves
    res = anvil.eth_call_raw(tok, transfer_data(anvil, owner, 5 * DEC + 1), to)
    assert len(res) == 2 + 64 and int(res, 16) == 0
    anvil.send_eth(0, to, 10 ** 18)
    anvil.rpc("anvil_impersonateAccount", to)
    try:
        tx = anvil.rpc("eth_sendTransaction", {"from": to, "to": tok, "gas": hex(200_000),
                                               "data": transfer_data(anvil, owner, 5 * DEC + 1)})
        r = anvil.wait_receipt(tx)
    finally:
        anvil.rpc("anvil_stopImpersonatingAccount", to)
    assert ok(r) and r["logs"] == []
    assert anvil.token_balance(tok, to) == 5 * DEC

    # switch on: false without reverting, no Transfer log, balances untouched
    anvil.token_admin(tok, "setFail(bool)", True, from_index=4)   # anyone may flip it
    assert call_uint(anvil, tok, "fail()") == 1
    res = anvil.eth_call_raw(tok, transfer_data(anvil, to, 1), owner)
    assert len(res) == 2 + 64 and int(res, 16) == 0
    r = anvil.token_call(tok, 0, transfer_data(anvil, to, 1))
    assert ok(r) and anvil.transfer_logs(r) == [] and r["logs"] == []
    assert anvil.token_balance(tok, to) == 5 * DEC
    assert anvil.token_balance(tok, owner) == SUPPLY - 5 * DEC

    # transferFrom fails the same way while the switch is on
    spender = anvil.dev_account(1)
    anvil.token_admin(tok, "approve(address,uint256)", spender, 10 * DEC)
    data = anvil.encode_call("transferFrom(address,address,uint256)", owner, to, DEC)
    assert int(anvil.eth_call_raw(tok, data, spender), 16) == 0
    r = anvil.token_call(tok, 1, data)
    assert ok(r) and r["logs"] == []
    assert call_uint(anvil, tok, "allowance(address,address)", owner, spender) == 10 * DEC

    # switch off again: normal
    anvil.token_admin(tok, "setFail(bool)", False)
    assert int(anvil.eth_call_raw(tok, data, spender), 16) == 1
    r = anvil.token_call(tok, 1, data)
    assert anvil.transfer_logs(r) == [(tok, owner, to, DEC)]
    assert anvil.token_balance(tok, to) == 6 * DEC
    assert call_uint(anvil, tok, "allowance(address,address)", owner, spender) == 9 * DEC


def test_fee_token_delivers_net_and_pays_collector(anvil):
    tok = anvil.deploy_odd_token("fee", from_index=0)
    collector, holder, to = anvil.dev_account(0), anvil.dev_account(1), fresh_address()
    assert anvil.eth_call_raw(tok, anvil.encode_call("feeCollector()"))[-40:] == collector.lower()[2:]
    assert call_uint(anvil, tok, "feeBps()") == 100

    # collector -> holder: the 1% fee comes straight back to the collector
    r = anvil.token_call(tok, 0, transfer_data(anvil, holder, 100 * DEC))
    assert ok(r)
    assert anvil.transfer_logs(r) == [(tok, collector, holder, 99 * DEC), (tok, collector, collector, DEC)]
    assert anvil.token_balance(tok, holder) == 99 * DEC
    assert anvil.token_balance(tok, collector) == SUPPLY - 99 * DEC

    # holder -> fresh address: net to the recipient, fee to the collector, in that order
    r = anvil.token_call(tok, 1, transfer_data(anvil, to, 1_234_567))
    assert ok(r)
    assert anvil.transfer_logs(r) == [(tok, holder, to, 1_222_222), (tok, holder, collector, 12_345)]
    assert anvil.token_balance(tok, to) == 1_222_222
    assert anvil.token_balance(tok, holder) == 99 * DEC - 1_234_567
    assert anvil.token_balance(tok, collector) == SUPPLY - 99 * DEC + 12_345
    assert call_uint(anvil, tok, "totalSupply()") == SUPPLY

    # a fee rounding down to 0: one Transfer event, the full value delivered
    r = anvil.token_call(tok, 1, transfer_data(anvil, to, 99))
    assert anvil.transfer_logs(r) == [(tok, holder, to, 99)]
    assert anvil.token_balance(tok, to) == 1_222_321

    # setFeeBps (anyone, tests only) and transferFrom spending the full value
    anvil.token_admin(tok, "setFeeBps(uint256)", 250, from_index=5)
    assert call_uint(anvil, tok, "feeBps()") == 250
    assert not ok(anvil.token_admin(tok, "setFeeBps(uint256)", 10_001, check=False))
    spender, to2 = anvil.dev_account(2), fresh_address()
    anvil.token_admin(tok, "approve(address,uint256)", spender, 10 * DEC, from_index=1)
    r = anvil.token_call(tok, 2, anvil.encode_call("transferFrom(address,address,uint256)", holder, to2, 4 * DEC))
    assert ok(r)
    assert anvil.transfer_logs(r) == [(tok, holder, to2, 3_900_000), (tok, holder, collector, 100_000)]
    assert anvil.token_balance(tok, to2) == 3_900_000
    assert call_uint(anvil, tok, "allowance(address,address)", holder, spender) == 6 * DEC


def test_noreturn_token_returns_no_data(anvil):
    tok = anvil.deploy_odd_token("noreturn")
    owner, to = anvil.dev_account(0), fresh_address()

    assert anvil.eth_call_raw(tok, transfer_data(anvil, to, 7 * DEC), owner) == "0x"
    r = anvil.token_call(tok, 0, transfer_data(anvil, to, 7 * DEC))
    assert ok(r)
    assert anvil.transfer_logs(r) == [(tok, owner, to, 7 * DEC)]
    assert anvil.token_balance(tok, to) == 7 * DEC
    assert anvil.token_balance(tok, owner) == SUPPLY - 7 * DEC
    # the existing token_transfer helper works on it too (it only checks the receipt)
    anvil.token_transfer(tok, 0, to, 1)
    assert anvil.token_balance(tok, to) == 7 * DEC + 1

    spender, to2 = anvil.dev_account(1), fresh_address()
    approve = anvil.encode_call("approve(address,uint256)", spender, 3 * DEC)
    assert anvil.eth_call_raw(tok, approve, owner) == "0x"
    assert ok(anvil.token_call(tok, 0, approve))
    tf = anvil.encode_call("transferFrom(address,address,uint256)", owner, to2, 2 * DEC)
    assert anvil.eth_call_raw(tok, tf, spender) == "0x"
    r = anvil.token_call(tok, 1, tf)
    assert ok(r) and anvil.transfer_logs(r) == [(tok, owner, to2, 2 * DEC)]
    assert anvil.token_balance(tok, to2) == 2 * DEC

    # failures revert (no false return)
    too_much = transfer_data(anvil, owner, SUPPLY)
    with pytest.raises(AnvilError, match="exceeds balance"):
        anvil.eth_call_raw(tok, too_much, spender)
    r = anvil.token_call(tok, 1, too_much)
    assert not ok(r) and r["logs"] == []
    over_allowance = anvil.encode_call("transferFrom(address,address,uint256)", owner, to2, 2 * DEC)
    with pytest.raises(AnvilError, match="insufficient allowance"):
        anvil.eth_call_raw(tok, over_allowance, spender)
    assert anvil.token_balance(tok, to2) == 2 * DEC


def test_blacklist_token_reverts_when_blacklisted_or_paused(anvil):
    tok = anvil.deploy_odd_token("blacklist", from_index=0)
    owner, holder, to = anvil.dev_account(0), anvil.dev_account(1), fresh_address()
    assert anvil.eth_call_raw(tok, anvil.encode_call("owner()"))[-40:] == owner.lower()[2:]
    anvil.token_transfer(tok, 0, holder, 50 * DEC)

    def send(amount):
        return anvil.token_call(tok, 1, transfer_data(anvil, to, amount))

    def reverts(reason):
        with pytest.raises(AnvilError, match=reason):
            anvil.eth_call_raw(tok, transfer_data(anvil, to, DEC), holder)
        r = send(DEC)
        assert not ok(r) and r["logs"] == []

    r = send(DEC)
    assert ok(r) and anvil.transfer_logs(r) == [(tok, holder, to, DEC)]

    # recipient blacklisted
    anvil.token_admin(tok, "blacklist(address)", to)
    assert call_uint(anvil, tok, "isBlacklisted(address)", to) == 1
    reverts("Blacklistable: account is blacklisted")
    anvil.token_admin(tok, "unBlacklist(address)", to)
    assert ok(send(DEC))

    # sender blacklisted
    anvil.token_admin(tok, "blacklist(address)", holder)
    reverts("Blacklistable: account is blacklisted")
    tf = anvil.encode_call("transferFrom(address,address,uint256)", holder, to, DEC)
    anvil.token_admin(tok, "unBlacklist(address)", holder)
    anvil.token_admin(tok, "approve(address,uint256)", anvil.dev_account(2), 10 * DEC, from_index=1)
    anvil.token_admin(tok, "blacklist(address)", holder)
    assert not ok(anvil.token_call(tok, 2, tf))          # transferFrom from a blacklisted address
    anvil.token_admin(tok, "unBlacklist(address)", holder)
    assert call_uint(anvil, tok, "isBlacklisted(address)", holder) == 0
    assert ok(send(DEC))

    # paused: every transfer reverts, including the owner's
    anvil.token_admin(tok, "pause()")
    assert call_uint(anvil, tok, "paused()") == 1
    reverts("Pausable: paused")
    assert not ok(anvil.token_call(tok, 0, transfer_data(anvil, to, 1)))
    assert not ok(anvil.token_call(tok, 2, tf))
    anvil.token_admin(tok, "unpause()")
    r = anvil.token_call(tok, 2, tf)
    assert ok(r) and anvil.transfer_logs(r) == [(tok, holder, to, DEC)]
    assert ok(send(DEC))

    assert anvil.token_balance(tok, to) == 5 * DEC
    assert anvil.token_balance(tok, holder) == 45 * DEC

    # only the owner administers
    for sig, args in (("blacklist(address)", (to,)), ("unBlacklist(address)", (to,)),
                      ("pause()", ()), ("unpause()", ())):
        assert not ok(anvil.token_admin(tok, sig, *args, from_index=1, check=False))
    with pytest.raises(AnvilError, match="reverted"):
        anvil.token_admin(tok, "pause()", from_index=1)
    with pytest.raises(AnvilError, match="caller is not the owner"):
        anvil.eth_call_raw(tok, anvil.encode_call("pause()"), holder)
    assert call_uint(anvil, tok, "paused()") == 0
