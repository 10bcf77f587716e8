"""Local chain for tests: an anvil node plus helpers, and the session fixture `anvil`.

Loaded into every test through ``pytest_plugins = ["tests.chain"]`` in
tests/conftest.py. anvil comes from the npm package @foundry-rs/anvil
(``npm ci`` at the repo root, which ``make test`` runs).

The node is shared by the whole session, so tests should use fresh addresses
(``fresh_address()``) or snapshot()/revert() rather than assume a clean chain.
Dev accounts 0..9 are anvil's default mnemonic at m/44'/60'/0'/0/i, each with
10,000 ETH and unlocked for eth_sendTransaction.
"""
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
TOKEN_JSON = REPO_ROOT / "tests" / "contracts" / "TestToken.json"

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_CHAIN_ID = 31337


def find_anvil():
    """Path of the anvil binary installed by npm, or None.

    Prefers the native binary of the platform package (so stop() signals anvil
    itself, not the node.js wrapper), else node_modules/.bin/anvil.
    ANVIL_BIN overrides both.
    """
    override = os.environ.get("ANVIL_BIN")
    if override:
        return override if os.access(override, os.X_OK) else None
    for cand in sorted(glob.glob(str(REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-*" / "bin" / "anvil"))):
        if os.access(cand, os.X_OK):
            return cand
    wrapper = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if os.access(wrapper, os.X_OK):
        return str(wrapper)
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_address():
    """A random address nobody has used (for isolated balance checks)."""
    from lib.chains import to_checksum_address
    return to_checksum_address("0x" + os.urandom(20).hex())


def _die_with_parent():
    # Linux: anvil gets SIGTERM if the test process dies, so no orphan nodes.
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class AnvilError(RuntimeError):
    pass


class AnvilNode:
    def __init__(self, binary=None, port=None, chain_id=DEV_CHAIN_ID, mnemonic=DEV_MNEMONIC,
                 accounts=10, log_path=None, extra_args=(), startup_timeout=20.0):
        self.binary = binary or find_anvil()
        if not self.binary:
            raise AnvilError("anvil not found: run `npm ci` (or `make test`) at the repo root")
        self.chain_id = chain_id
        self.mnemonic = mnemonic
        self._accounts = None
        self._token_artifact = None
        self._ids = 0
        self.proc = None
        last_error = None
        for _ in range(3):  # the free port can be taken between probe and bind
            self.port = port or free_port()
            self.url = "http://127.0.0.1:%d" % self.port
            if log_path is None:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                self.log_path = ARTIFACTS / ("anvil-%d.log" % self.port)
            else:
                self.log_path = Path(log_path)
            self._log = open(self.log_path, "wb")
            args = [self.binary, "--host", "127.0.0.1", "--port", str(self.port),
                    "--chain-id", str(chain_id), "--mnemonic", mnemonic,
                    "--accounts", str(accounts), *extra_args]
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT,
                                         preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            try:
                self._wait_ready(startup_timeout)
                return
            except AnvilError as e:
                last_error = e
                self.stop()
                if port:
                    break
        raise last_error

    def __repr__(self):
        return "<AnvilNode %s pid=%s>" % (self.url, self.proc.pid if self.proc else None)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AnvilError("anvil exited with %s; log %s:\n%s"
                                 % (self.proc.returncode, self.log_path, self.log_tail()))
            try:
                if int(self.rpc("eth_chainId"), 16) == self.chain_id:
                    return
            except (OSError, urllib.error.URLError, AnvilError, ValueError):
                pass
            time.sleep(0.05)
        raise AnvilError("anvil did not answer within %ss; log:\n%s" % (timeout, self.log_tail()))

    def log_tail(self, n=2000):
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    # --- raw RPC ---

    def rpc(self, method, *params):
        """One JSON-RPC call; returns the result or raises AnvilError."""
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method,
                           "params": list(params)}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            reply = json.loads(resp.read())
        if reply.get("error"):
            raise AnvilError("%s: %s" % (method, reply["error"]))
        return reply.get("result")

    # --- chain control ---

    def mine(self, n=1):
        self.rpc("anvil_mine", hex(n))
        self.unstick()

    def unstick(self):
        """Re-import ready transactions that anvil's auto-miner skipped; returns how many.

        anvil occasionally leaves a transaction sent right behind another of the same
        sender in its pool, ready but never mined, even by anvil_mine, and answers
        "already imported" when the same bytes are sent again (foundry-rs/foundry#10122).
        A real node mines it. So after mining, a sender whose lowest pending nonce is its
        next nonce has its pending transactions dropped and the very same signed bytes
        sent again (same hashes: what cron stored is still what is mined).
        """
        if int(self.rpc("txpool_status").get("pending", "0x0"), 16) == 0:
            return 0
        resent = 0
        for sender, txs in (self.rpc("txpool_content").get("pending") or {}).items():
            ordered = sorted(txs.values(), key=lambda t: int(str(t["nonce"]), 0))
            if int(str(ordered[0]["nonce"]), 0) != self.nonce(sender, "latest"):
                continue        # a nonce gap: waiting for an earlier transaction, not stuck
            raws = [self.rpc("eth_getRawTransactionByHash", t["hash"]) for t in ordered]
            for t in ordered:
                try:
                    self.rpc("anvil_dropTransaction", t["hash"])
                except AnvilError:
                    pass        # dropping the first drops its dependents too
            for raw in raws:
                try:
                    self.rpc("eth_sendRawTransaction", raw)
                except AnvilError as e:
                    if "nonce too low" not in str(e):
                        raise
                    continue    # the auto-miner took it between our read of the pool and now
                resent += 1
        return resent

    def block_number(self):
        return int(self.rpc("eth_blockNumber"), 16)

    def snapshot(self):
        return self.rpc("evm_snapshot")

    def revert(self, snapshot_id):
        if not self.rpc("evm_revert", snapshot_id):
            raise AnvilError("evm_revert(%s) failed" % snapshot_id)

    def set_balance(self, addr, wei):
        self.rpc("anvil_setBalance", addr, hex(wei))

    # --- accounts ---

    def dev_account(self, i):
        """Checksummed address of unlocked dev account i."""
        from lib.chains import to_checksum_address
        if self._accounts is None:
            self._accounts = [to_checksum_address(a) for a in self.rpc("eth_accounts")]
        return self._accounts[i]

    def dev_key(self, i):
        """Private key (bytes) of dev account i, for tests that sign locally."""
        from eth_account import Account
        Account.enable_unaudited_hdwallet_features()
        return Account.from_mnemonic(self.mnemonic, account_path="m/44'/60'/0'/0/%d" % i).key

    def balance(self, addr, block="latest"):
        return int(self.rpc("eth_getBalance", addr, block), 16)

    def nonce(self, addr, block="pending"):
        return int(self.rpc("eth_getTransactionCount", addr, block), 16)

    def wait_receipt(self, tx_hash, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.rpc("eth_getTransactionReceipt", tx_hash)
            if r is not None:
                return r
            time.sleep(0.02)
        raise AnvilError("no receipt for %s after %ss" % (tx_hash, timeout))

    def send_tx(self, tx):
        """eth_sendTransaction from an unlocked account; waits for a successful receipt."""
        tx_hash = self.rpc("eth_sendTransaction", tx)
        receipt = self.wait_receipt(tx_hash)
        if int(receipt["status"], 16) != 1:
            raise AnvilError("transaction %s reverted" % tx_hash)
        return receipt

    def send_eth(self, from_index, to, wei):
        """Send wei from dev account from_index; returns the tx hash (mined)."""
        return self.send_tx({"from": self.dev_account(from_index), "to": to, "value": hex(wei)})["transactionHash"]

    # --- ERC-20 test token ---

    def token_artifact(self):
        if self._token_artifact is None:
            self._token_artifact = json.loads(TOKEN_JSON.read_text())
        return self._token_artifact

    def deploy_token(self, name="Test USD", symbol="TUSD", decimals=6, supply=10 ** 15, from_index=0):
        """Deploy TestToken minting `supply` base units to dev account from_index; returns its address."""
        from eth_abi import encode
        from lib.chains import to_checksum_address
        art = self.token_artifact()
        args = encode(["string", "string", "uint8", "uint256"], [name, symbol, decimals, supply])
        receipt = self.send_tx({"from": self.dev_account(from_index),
                                "data": art["bytecode"] + args.hex(), "gas": hex(3_000_000)})
        return to_checksum_address(receipt["contractAddress"])

    def token_balance(self, token, addr):
        data = "0x70a08231" + addr.lower()[2:].rjust(64, "0")
        return int(self.rpc("eth_call", {"to": token, "data": data}, "latest"), 16)

    def token_transfer(self, token, from_index, to, amount):
        """transfer(to, amount) from dev account from_index; returns the tx hash (mined)."""
        data = "0xa9059cbb" + to.lower()[2:].rjust(64, "0") + hex(amount)[2:].rjust(64, "0")
        return self.send_tx({"from": self.dev_account(from_index), "to": token, "data": data,
                             "gas": hex(200_000)})["transactionHash"]

    # --- odd ERC-20 test tokens (tests/contracts/*.sol, see tests/contracts/README.md) ---

    def contract_artifact(self, name):
        """tests/contracts/<name>.json ({contractName, compiler, evmVersion, abi, bytecode}), cached."""
        cache = self.__dict__.setdefault("_contract_artifacts", {})
        if name not in cache:
            cache[name] = json.loads((TOKEN_JSON.parent / ("%s.json" % name)).read_text())
        return cache[name]

    def deploy_contract(self, name, ctor_types, ctor_args, from_index=0):
        """Deploy tests/contracts/<name>.json with ABI-encoded constructor args; returns its address."""
        from eth_abi import encode
        from lib.chains import to_checksum_address
        art = self.contract_artifact(name)
        args = encode(list(ctor_types), list(ctor_args)) if ctor_types else b""
        receipt = self.send_tx({"from": self.dev_account(from_index),
                                "data": art["bytecode"] + args.hex(), "gas": hex(5_000_000)})
        return to_checksum_address(receipt["contractAddress"])

    def deploy_odd_token(self, kind, symbol="ODD", decimals=6, supply=10 ** 15, from_index=0):
        """Deploy an odd ERC-20 minting `supply` to dev account from_index; returns its address.

        kind: "false" (FalseToken: transfer returns false, no revert, when setFail(true)
        or the balance is short), "fee" (FeeToken: 1% fee-on-transfer to the deployer,
        setFeeBps), "noreturn" (NoReturnToken: USDT-style, no return values),
        "blacklist" (BlacklistToken: USDC-style owner blacklist/unBlacklist/pause/unpause).
        """
        contracts = {"false": "FalseToken", "fee": "FeeToken",
                     "noreturn": "NoReturnToken", "blacklist": "BlacklistToken"}
        if kind not in contracts:
            raise ValueError("kind must be one of %s, not %r" % (sorted(contracts), kind))
        name = contracts[kind]
        return self.deploy_contract(name, ["string", "string", "uint8", "uint256"],
                                    [name, symbol, decimals, supply], from_index=from_index)

    @staticmethod
    def encode_call(fn_signature, *args):
        """Calldata hex for e.g. encode_call("blacklist(address)", addr) (flat types only)."""
        from eth_abi import encode
        from lib.chains import keccak256
        sig = fn_signature.replace(" ", "")
        inner = sig[sig.index("(") + 1:sig.rindex(")")]
        types = [t for t in inner.split(",") if t]
        if len(types) != len(args):
            raise ValueError("%s takes %d arguments, got %d" % (sig, len(types), len(args)))
        return "0x" + keccak256(sig.encode())[:4].hex() + encode(types, list(args)).hex()

    def token_call(self, token, from_index, data_hex, gas=300_000):
        """Send calldata to `token` from dev account from_index with a fixed gas limit.

        Returns the mined receipt whatever its status (a revert gives status "0x0";
        the fixed gas limit skips estimation, so anvil mines reverting calls too).
        """
        tx_hash = self.rpc("eth_sendTransaction", {"from": self.dev_account(from_index), "to": token,
                                                   "data": data_hex, "gas": hex(gas)})
        return self.wait_receipt(tx_hash)

    def token_admin(self, token, fn_signature, *args, from_index=0, gas=300_000, check=True):
        """token_call of encode_call(fn_signature, *args), e.g.
        token_admin(tok, "blacklist(address)", addr), token_admin(tok, "setFail(bool)", True),
        token_admin(tok, "pause()"). Returns the receipt; raises AnvilError if it reverted
        unless check=False.
        """
        receipt = self.token_call(token, from_index, self.encode_call(fn_signature, *args), gas=gas)
        if check and int(receipt["status"], 16) != 1:
            raise AnvilError("%s on %s reverted (tx %s)" % (fn_signature, token, receipt["transactionHash"]))
        return receipt

    def eth_call_raw(self, to, data_hex, from_addr=None, block="latest"):
        """eth_call returning the raw return data hex ("0x" when nothing is returned).

        A revert raises AnvilError (its message carries anvil's revert reason).
        """
        call = {"to": to, "data": data_hex}
        if from_addr:
            call["from"] = from_addr
        return self.rpc("eth_call", call, block)

    def transfer_logs(self, receipt, token=None):
        """ERC-20 Transfer events in a receipt as (token, from, to, value), checksummed, in log order."""
        from lib.chains import keccak256, to_checksum_address
        topic0 = "0x" + keccak256(b"Transfer(address,address,uint256)").hex()
        out = []
        for log in receipt.get("logs") or []:
            topics = log.get("topics") or []
            if len(topics) != 3 or topics[0].lower() != topic0:
                continue
            if token is not None and log["address"].lower() != token.lower():
                continue
            out.append((to_checksum_address(log["address"]),
                        to_checksum_address("0x" + topics[1][-40:]),
                        to_checksum_address("0x" + topics[2][-40:]),
                        int(log["data"], 16)))
        return out


@pytest.fixture(scope="session")
def anvil():
    """A running anvil node for the whole test session (see AnvilNode)."""
    if find_anvil() is None:
        msg = ("anvil is not installed: run `npm ci` at the repo root "
               "(`make test` does it) to get @foundry-rs/anvil")
        if os.environ.get("CI") == "true":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    node = AnvilNode()
    try:
        yield node
    finally:
        node.stop()
