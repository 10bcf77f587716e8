"""HD derivation of escrow, deposit and gas-station accounts (BIP-32/39/44).

This module is the only place that turns the MNEMONIC into keys. Branches
(SPEC section 7):

    escrow       m/44'/60'/0'/0/i
    deposits     m/44'/60'/0'/1/i
    gas station  m/44'/60'/0'/2/0

The BIP-39 seed (2048 rounds of PBKDF2) and the hardened part of each path are
computed once per HDWallet; each index is then one non-hardened step:
HMAC-SHA512 plus one libsecp256k1 tweak (coincurve), which is what makes
thousands of derivations per second possible where eth-account's
from_mnemonic redoes the whole path every time.

Key methods return eth_account LocalAccount objects (``.address``, ``.key``
bytes, ``.sign_transaction(tx)``), so callers never handle raw scalars unless
they ask for ``.key``.
"""
import hashlib
import hmac
from collections import OrderedDict

import coincurve
from eth_account import Account
from eth_account.hdaccount import seed_from_mnemonic

from lib.chains import keccak256, to_checksum_address

HARDENED = 0x80000000
INDEX_SPACE = 2 ** 31  # non-hardened child indexes
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

ESCROW_BRANCH = 0
DEPOSIT_BRANCH = 1
GAS_STATION_BRANCH = 2
BRANCH_NAMES = {ESCROW_BRANCH: "escrow", DEPOSIT_BRANCH: "deposit", GAS_STATION_BRANCH: "gas station"}


def derivation_index(transaction_uuid):
    """The seed's index scheme: first 32 bits of sha256(uuid) mod 2**31.

    Collisions are expected at scale (even odds near 55,000 orders); the caller
    stores indexes under a UNIQUE constraint and uses next_free_index().
    """
    digest = hashlib.sha256(transaction_uuid.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % INDEX_SPACE


def next_free_index(start, is_taken):
    """First index not taken, walking start, start+1, ... and wrapping at 2**31.

    is_taken: callable(index) -> bool (pass ``a_set.__contains__`` for a set).
    Raises RuntimeError only if the whole index space is taken.
    """
    if not 0 <= start < INDEX_SPACE:
        raise ValueError("start index out of range: %r" % (start,))
    i = start
    for _ in range(INDEX_SPACE):
        if not is_taken(i):
            return i
        i = (i + 1) % INDEX_SPACE
    raise RuntimeError("every derivation index is taken")


def path_for(branch, index):
    """Derivation path string, e.g. for logs and for eth-account cross-checks."""
    return "m/44'/60'/0'/%d/%d" % (branch, index)


class _Node:
    """A BIP-32 extended private key (k, chain code) and its compressed pubkey."""

    __slots__ = ("k", "chain_code", "pub")

    def __init__(self, k, chain_code):
        self.k = k                      # 32 bytes
        self.chain_code = chain_code    # 32 bytes
        self.pub = coincurve.PublicKey.from_valid_secret(k).format(compressed=True)

    def child(self, i):
        """CKDpriv (hardened when i >= 2**31)."""
        if i >= HARDENED:
            data = b"\x00" + self.k + i.to_bytes(4, "big")
        else:
            data = self.pub + i.to_bytes(4, "big")
        I = hmac.new(self.chain_code, data, hashlib.sha512).digest()
        il = int.from_bytes(I[:32], "big")
        k = (il + int.from_bytes(self.k, "big")) % SECP256K1_N
        if il >= SECP256K1_N or k == 0:
            # Probability ~2**-127; BIP-32 says skip the index. We refuse loudly
            # instead so the caller never silently shifts an index.
            raise ValueError("invalid BIP-32 child at index %d" % i)
        return _Node(k.to_bytes(32, "big"), I[32:])


class HDWallet:
    """Derives the marketplace's accounts from one BIP-39 mnemonic.

    Holds the seed-derived branch nodes in memory (needed for key
    derivation); the mnemonic string itself is not kept. repr() shows nothing
    secret.
    """

    def __init__(self, mnemonic, passphrase="", address_cache_size=8192):
        if not isinstance(mnemonic, str) or not mnemonic.strip():
            raise ValueError("MNEMONIC is empty")
        words = " ".join(mnemonic.split())  # tolerate newlines/double spaces from .env
        try:
            seed = seed_from_mnemonic(words, passphrase)
        except Exception:
            # eth-account's messages quote the words; never let them reach a log.
            raise ValueError("MNEMONIC is not a valid BIP-39 phrase "
                             "(unknown word, wrong word count or bad checksum)") from None
        del words
        I = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
        master = _Node(I[:32], I[32:])
        account = (master.child(HARDENED + 44)
                   .child(HARDENED + 60)
                   .child(HARDENED + 0))
        self._branches = {b: account.child(b) for b in BRANCH_NAMES}
        self._cache = OrderedDict()
        self._cache_size = address_cache_size

    def __repr__(self):
        return "<HDWallet (keys hidden)>"

    # --- core ---

    def _address(self, branch, index):
        _check_index(index)
        key = (branch, index)
        addr = self._cache.get(key)
        if addr is not None:
            self._cache.move_to_end(key)
            return addr
        node = self._branches[branch]
        I = hmac.new(node.chain_code, node.pub + index.to_bytes(4, "big"), hashlib.sha512).digest()
        if int.from_bytes(I[:32], "big") >= SECP256K1_N:
            raise ValueError("invalid BIP-32 child at index %d" % index)
        # Public derivation: K_i = K_par + IL*G, no private key involved.
        pub = coincurve.PublicKey(node.pub).add(I[:32])
        raw = keccak256(pub.format(compressed=False)[1:])[-20:]
        addr = to_checksum_address("0x" + raw.hex())
        self._cache[key] = addr
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return addr

    def _private_key(self, branch, index):
        _check_index(index)
        return self._branches[branch].child(index).k

    def _account(self, branch, index):
        acct = Account.from_key(self._private_key(branch, index))
        return acct

    # --- public API ---

    def escrow_address(self, index):
        return self._address(ESCROW_BRANCH, index)

    def escrow_key(self, index):
        """LocalAccount for m/44'/60'/0'/0/index (``.key`` is the 32-byte private key)."""
        return self._account(ESCROW_BRANCH, index)

    def deposit_address(self, index):
        return self._address(DEPOSIT_BRANCH, index)

    def deposit_key(self, index):
        """LocalAccount for m/44'/60'/0'/1/index."""
        return self._account(DEPOSIT_BRANCH, index)

    def gas_station_address(self):
        return self._address(GAS_STATION_BRANCH, 0)

    def gas_station_key(self):
        """LocalAccount for m/44'/60'/0'/2/0."""
        return self._account(GAS_STATION_BRANCH, 0)

    def private_key_bytes(self, branch, index):
        """Raw 32-byte key for (branch, index); prefer the *_key() methods."""
        if branch not in self._branches:
            raise ValueError("unknown branch %r" % (branch,))
        return self._private_key(branch, index)


def _check_index(index):
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < INDEX_SPACE:
        raise ValueError("derivation index must be an int in [0, 2**31): %r" % (index,))
