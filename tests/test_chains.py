"""lib/chains.py: chain table, explorer links, EIP-55 validation."""
import os

import pytest

from lib import chains
from lib.chains import (CHAINS, address_error, explorer_address_url, explorer_tx_url,
                        is_checksum_address, is_supported, network_name, to_checksum_address)

# EIP-55 reference vectors (from the EIP) plus anvil's account 0.
EIP55 = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
]


def test_chain_table():
    assert set(CHAINS) == {1, 11155111, 8453, 137, 31337}
    assert network_name(1) == "MAINNET"
    assert network_name(11155111) == "SEPOLIA"
    assert network_name(8453) == "BASE"
    assert network_name(137) == "POLYGON"
    assert network_name(31337) == "DEV"
    assert CHAINS[137].native_symbol == "POL"
    assert CHAINS[1].alchemy_network == "eth-mainnet"
    assert CHAINS[11155111].alchemy_network == "eth-sepolia"
    assert CHAINS[8453].alchemy_network == "base-mainnet"
    assert CHAINS[137].alchemy_network == "polygon-mainnet"
    assert CHAINS[31337].alchemy_network is None


def test_is_supported():
    for cid in (1, 11155111, 8453, 137):
        assert is_supported(cid) and is_supported(cid, allow_dev=True)
        assert is_supported(str(cid))
    assert not is_supported(31337)
    assert is_supported(31337, allow_dev=True)
    for bad in (5, 0, -1, "1.0", "0x1", "", None, True, "１"):
        assert not is_supported(bad, allow_dev=True), bad
    with pytest.raises(chains.UnsupportedChain):
        network_name(5)
    assert chains.supported_chain_ids() == [1, 11155111, 8453, 137]
    assert chains.allow_dev_from_env({"ALLOW_DEV_CHAIN": "1"})
    assert not chains.allow_dev_from_env({"ALLOW_DEV_CHAIN": "0"})
    assert not chains.allow_dev_from_env({})


@pytest.mark.parametrize("addr", EIP55)
def test_checksum_vectors(addr):
    assert to_checksum_address(addr.lower()) == addr
    assert to_checksum_address(addr.upper().replace("0X", "0x")) == addr
    assert is_checksum_address(addr)
    assert address_error(addr) is None


def test_checksum_agrees_with_eth_utils():
    from eth_utils import to_checksum_address as ref
    for _ in range(200):
        a = "0x" + os.urandom(20).hex()
        assert to_checksum_address(a) == ref(a)


def test_rejects_unchecksummed_and_wrong_case():
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    # Decision: all-lowercase / all-uppercase carry no checksum -> rejected,
    # with the checksummed form shown in the message.
    assert not is_checksum_address(good.lower())
    msg = address_error(good.lower())
    assert "checksum" in msg and good in msg
    assert not is_checksum_address("0x" + good[2:].upper())
    # Wrong mixed case: rejected, and no "correction" offered (likely a typo).
    wrong = good[:3] + good[3].swapcase() + good[4:]
    assert not is_checksum_address(wrong)
    msg = address_error(wrong)
    assert "typo" in msg and good not in msg
    # Malformed input
    for bad in ("", "0x", good[:-1], good + "0", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed0x",
                "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeZ", None, 123):
        assert not is_checksum_address(bad)
        assert address_error(bad)
    with pytest.raises(ValueError):
        to_checksum_address("0x1234")


def test_digit_only_address_is_its_own_checksum():
    a = "0x" + "1234567890" * 4
    assert is_checksum_address(a)


def test_pure_python_keccak_matches():
    from eth_hash.auto import keccak
    for n in (0, 1, 20, 135, 136, 137, 272, 500):
        data = os.urandom(n)
        assert chains._py_keccak256(data) == keccak(data)
    assert chains._py_keccak256(b"").hex() == \
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_explorer_urls():
    tx = "0x" + "ab" * 32
    addr = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
    assert explorer_tx_url(1, tx) == "https://etherscan.io/tx/" + tx
    assert explorer_tx_url(11155111, tx) == "https://sepolia.etherscan.io/tx/" + tx
    assert explorer_tx_url(8453, tx) == "https://basescan.org/tx/" + tx
    assert explorer_tx_url(137, tx.upper().replace("0X", "0x")) == "https://polygonscan.com/tx/" + tx
    assert explorer_address_url(1, addr) == \
        "https://etherscan.io/address/0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert explorer_tx_url(31337, tx) is None
    assert explorer_address_url(31337, addr) is None
    for bad in ("0x123", tx + "00", "javascript:alert(1)", None, "0x" + "zz" * 32):
        with pytest.raises(ValueError):
            explorer_tx_url(1, bad)
    with pytest.raises(ValueError):
        explorer_address_url(1, "0x12<script>")
    with pytest.raises(chains.UnsupportedChain):
        explorer_tx_url(56, tx)
