"""Escrow derivations per second (SPEC section 10).

    .venv/bin/python bench/derive.py [N]

Derives N (default 5,000) escrow addresses and N/5 LocalAccount keys with
cron.escrow.HDWallet (cached branch + coincurve), then a few with
eth-account's Account.from_mnemonic for comparison. Uses anvil's public test
mnemonic: no real key material.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from eth_account import Account  # noqa: E402

from cron.escrow import HDWallet, path_for  # noqa: E402

MNEMONIC = "test test test test test test test test test test test junk"


def rate(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    n_keys = max(1, n // 5)
    n_ref = 20

    t = time.perf_counter()
    w = HDWallet(MNEMONIC, address_cache_size=0)  # cache off: measure real derivations
    setup = time.perf_counter() - t

    t = time.perf_counter()
    addrs = [w.escrow_address(i) for i in range(n)]
    t_addr = time.perf_counter() - t

    t = time.perf_counter()
    keys = [w.escrow_key(i) for i in range(n_keys)]
    t_key = time.perf_counter() - t

    Account.enable_unaudited_hdwallet_features()
    t = time.perf_counter()
    ref = [Account.from_mnemonic(MNEMONIC, account_path=path_for(0, i)) for i in range(n_ref)]
    t_ref = time.perf_counter() - t

    assert [r.address for r in ref] == addrs[:n_ref], "derivation mismatch with eth-account"
    assert all(k.address == a for k, a in zip(keys, addrs)), "key/address mismatch"

    print("HDWallet setup (BIP-39 seed + branch nodes): %.1f ms" % (setup * 1000))
    print("escrow addresses: %6d in %.3f s = %9.0f /s" % (n, t_addr, rate(n, t_addr)))
    print("escrow keys     : %6d in %.3f s = %9.0f /s" % (n_keys, t_key, rate(n_keys, t_key)))
    print("eth-account from_mnemonic: %d in %.3f s = %.1f /s" % (n_ref, t_ref, rate(n_ref, t_ref)))
    print("speedup (addresses vs from_mnemonic): %.0fx" % (rate(n, t_addr) / rate(n_ref, t_ref)))
    print("first %d addresses agree with eth-account: yes" % n_ref)


if __name__ == "__main__":
    main()
