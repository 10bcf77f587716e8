"""Supported EVM chains and EIP-55 address helpers (SPEC section 8).

Pure data and pure functions: no secrets, no environment reads, no network I/O,
so the web layer can use it for validation and explorer links. The cron layer
adds provider URLs on top (cron/rpc_client.py).
"""
import re
from dataclasses import dataclass
from typing import Optional

from lib.env import parse_flag

try:  # eth-hash ships with eth-account (cron); the web layer may not have it
    from eth_hash.auto import keccak as _keccak256
except ImportError:  # pragma: no cover - exercised via _py_keccak256 in tests
    _keccak256 = None


@dataclass(frozen=True)
class Chain:
    chain_id: int
    name: str                       # human name for pages
    network: str                    # NETWORK suffix for COMMISSION_WALLET_<NETWORK>
    native_symbol: str              # symbol of the gas coin
    native_decimals: int
    alchemy_network: Optional[str]  # Alchemy subdomain / Prices API network; None = no Alchemy
    explorer: Optional[str]         # block explorer base URL; None = no public explorer
    testnet: bool = False
    dev: bool = False               # only with ALLOW_DEV_CHAIN=1


DEV_CHAIN_ID = 31337

CHAINS = {
    1: Chain(1, "Ethereum", "MAINNET", "ETH", 18, "eth-mainnet", "https://etherscan.io"),
    11155111: Chain(11155111, "Sepolia", "SEPOLIA", "ETH", 18, "eth-sepolia",
                    "https://sepolia.etherscan.io", testnet=True),
    8453: Chain(8453, "Base", "BASE", "ETH", 18, "base-mainnet", "https://basescan.org"),
    137: Chain(137, "Polygon", "POLYGON", "POL", 18, "polygon-mainnet", "https://polygonscan.com"),
    DEV_CHAIN_ID: Chain(DEV_CHAIN_ID, "Local dev chain", "DEV", "ETH", 18, None, None,
                        testnet=True, dev=True),
}


class UnsupportedChain(ValueError):
    pass


def _as_chain_id(chain_id):
    # Accept ints and decimal strings (form fields, DB text); reject bools and junk.
    if isinstance(chain_id, bool):
        return None
    if isinstance(chain_id, int):
        return chain_id
    if isinstance(chain_id, str) and chain_id.isascii() and chain_id.isdigit() and len(chain_id) < 20:
        return int(chain_id)
    return None


def allow_dev_from_env(env):
    """Whether the mapping (cron's settings) turns ALLOW_DEV_CHAIN on (lib.env.parse_flag)."""
    return parse_flag(env.get("ALLOW_DEV_CHAIN"))


def is_supported(chain_id, allow_dev=False):
    cid = _as_chain_id(chain_id)
    chain = CHAINS.get(cid) if cid is not None else None
    if chain is None:
        return False
    return allow_dev or not chain.dev


def supported_chain_ids(allow_dev=False):
    return [cid for cid, c in CHAINS.items() if allow_dev or not c.dev]


def get_chain(chain_id):
    """The Chain for chain_id (int or decimal string); UnsupportedChain otherwise.

    Does not apply the ALLOW_DEV_CHAIN rule: use is_supported() for input validation.
    """
    cid = _as_chain_id(chain_id)
    chain = CHAINS.get(cid) if cid is not None else None
    if chain is None:
        raise UnsupportedChain("unsupported chain id: %r" % (chain_id,))
    return chain


def network_name(chain_id):
    """MAINNET, SEPOLIA, BASE, POLYGON or DEV."""
    return get_chain(chain_id).network


def native_symbol(chain_id):
    return get_chain(chain_id).native_symbol


_TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDR_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def explorer_tx_url(chain_id, tx_hash):
    """Explorer link for a transaction, or None for chains without an explorer.

    The hash is validated so a stored value can never inject markup or a path.
    """
    chain = get_chain(chain_id)
    if not isinstance(tx_hash, str) or not _TX_HASH_RE.match(tx_hash):
        raise ValueError("not a transaction hash: %r" % (tx_hash,))
    if chain.explorer is None:
        return None
    return "%s/tx/%s" % (chain.explorer, tx_hash.lower())


def explorer_address_url(chain_id, addr):
    """Explorer link for an address (checksummed in the URL), or None without an explorer."""
    chain = get_chain(chain_id)
    checksummed = to_checksum_address(addr)
    if chain.explorer is None:
        return None
    return "%s/address/%s" % (chain.explorer, checksummed)


# --- EIP-55 -----------------------------------------------------------------

def is_hex_address(s):
    """0x + 40 hex digits, any case."""
    return isinstance(s, str) and bool(_ADDR_RE.match(s))


def to_checksum_address(s):
    """EIP-55 form of a 0x + 40 hex address given in any case; ValueError otherwise."""
    if not is_hex_address(s):
        raise ValueError("not an address (expected 0x followed by 40 hex digits): %r" % (s,))
    lower = s[2:].lower()
    digest = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(
        ch.upper() if ch.isalpha() and int(digest[i], 16) >= 8 else ch
        for i, ch in enumerate(lower)
    )


def is_checksum_address(s):
    """True only for a correctly EIP-55 checksummed address.

    Decision (documented for the web layer): all-lowercase and all-uppercase
    addresses are rejected too, because they carry no checksum and a typo in
    them would send funds to nobody. Wallets and explorers show the
    checksummed form, so users can paste that. (An address whose hex has no
    letters at all is its own checksum form and is accepted.)
    """
    return is_hex_address(s) and to_checksum_address(s) == s


def address_error(s):
    """None when s is a valid checksummed address, else a message for the user.

    For input without any checksum (all lower/upper case) the message shows the
    checksummed form, which is safe: it tells nothing that the input did not.
    For mixed case with a wrong checksum it does NOT suggest a correction:
    that address most likely has a typo, and the checksum of a typo is not
    the user's address.
    """
    if not isinstance(s, str) or not s.strip():
        return "An address is required."
    s = s.strip()
    if not is_hex_address(s):
        return "Not an address: expected 0x followed by 40 hexadecimal characters."
    fixed = to_checksum_address(s)
    if fixed == s:
        return None
    body = s[2:]
    if body == body.lower() or body == body.upper():
        return ("The address has no EIP-55 checksum (mixed upper/lower case). "
                "Copy it from your wallet, or use the checksummed form %s "
                "after checking it character by character." % fixed)
    return ("The address checksum does not match: it probably contains a typo. "
            "Copy it again from your wallet.")


# --- Keccak-256 ---------------------------------------------------------------

def keccak256(data):
    """Keccak-256 (the pre-NIST padding Ethereum uses, not hashlib's sha3_256)."""
    if _keccak256 is not None:
        return _keccak256(data)
    return _py_keccak256(data)


# Small pure-Python fallback so the web process needs no compiled dependency
# for checksum checks. Slow (tens of microseconds) but only used for validation.
_RC = [
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
]
_ROT = [
    [0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61],
    [28, 55, 25, 21, 56], [27, 20, 39, 8, 14],
]
_M64 = (1 << 64) - 1


def _rol(x, n):
    n %= 64
    return ((x << n) | (x >> (64 - n))) & _M64 if n else x


def _keccak_f(a):
    for rc in _RC:
        c = [a[x][0] ^ a[x][1] ^ a[x][2] ^ a[x][3] ^ a[x][4] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        a = [[a[x][y] ^ d[x] for y in range(5)] for x in range(5)]
        b = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                b[y][(2 * x + 3 * y) % 5] = _rol(a[x][y], _ROT[x][y])
        a = [[b[x][y] ^ ((~b[(x + 1) % 5][y]) & b[(x + 2) % 5][y]) for y in range(5)]
             for x in range(5)]
        a[0][0] ^= rc
    return a


def _py_keccak256(data):
    rate = 136
    msg = bytearray(data)
    msg.append(0x01)
    while len(msg) % rate:
        msg.append(0)
    msg[-1] |= 0x80
    a = [[0] * 5 for _ in range(5)]
    for off in range(0, len(msg), rate):
        block = msg[off:off + rate]
        for i in range(rate // 8):
            x, y = i % 5, i // 5
            a[x][y] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        a = _keccak_f(a)
    out = b"".join(a[i % 5][i // 5].to_bytes(8, "little") for i in range(4))
    return out
