"""Shared settings of the demo (`make demo`, `make demo-pay ORDER=uuid`).

The demo keeps everything under db/ (ignored by git): its settings file db/demo.env
(fresh salts and a fresh escrow mnemonic, made once), its SQLite database
db/demo.sqlite (made anew by every `make demo`) and the anvil log db/demo-anvil.log.
"""
import glob
import json
import os
import secrets
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

ENV_FILE = os.path.join(ROOT, "db", "demo.env")
DB_FILE = os.path.join(ROOT, "db", "demo.sqlite")
CHAIN_ID = 31337
ANVIL_PORT = int(os.environ.get("DEMO_ANVIL_PORT", "8545"))
WEB_PORT = int(os.environ.get("DEMO_PORT", "8000"))
RPC_URL = f"http://127.0.0.1:{ANVIL_PORT}"
# anvil's well-known development accounts (its default mnemonic, unlocked on the node).
PAYER, VENDOR_WALLET, BUYER_WALLET, COMMISSION_WALLET = 1, 3, 4, 9
PASSWORD = "demo-password"


def find_anvil():
    """The anvil binary npm installed (make install), or None."""
    for cand in sorted(glob.glob(os.path.join(ROOT, "node_modules", "@foundry-rs", "anvil-*", "bin", "anvil"))):
        if os.access(cand, os.X_OK):
            return cand
    wrapper = os.path.join(ROOT, "node_modules", ".bin", "anvil")
    return wrapper if os.access(wrapper, os.X_OK) else None


def rpc(method, *params, url=RPC_URL):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        reply = json.loads(resp.read())
    if reply.get("error"):
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def dev_account(i, url=RPC_URL):
    from lib.chains import to_checksum_address
    return to_checksum_address(rpc("eth_accounts", url=url)[i])


def running_rpc_url():
    """The anvil URL of the running demo (from db/demo.env), so `make demo-pay` finds the
    node even when `make demo` was started on another DEMO_ANVIL_PORT."""
    if os.path.exists(ENV_FILE):
        from lib.env import parse_env_file
        value = dict(parse_env_file(ENV_FILE)).get(f"RPC_URL_{CHAIN_ID}")
        if value:
            return value
    return RPC_URL


def new_mnemonic():
    from eth_account import Account
    Account.enable_unaudited_hdwallet_features()
    _account, words = Account.create_with_mnemonic()
    return words


def write_env(commission_wallet):
    """db/demo.env: the web part (DB, site, salts) and the cron part (mnemonic, RPC, wallet).
    The web process reads it through lib/env.py's allow-list, so it never sees MNEMONIC."""
    os.makedirs(os.path.dirname(ENV_FILE), exist_ok=True)
    old = {}
    if os.path.exists(ENV_FILE):
        from lib.env import parse_env_file
        old = dict(parse_env_file(ENV_FILE))
    values = {
        "DB_DRIVER": "sqlite", "DB_DSN": "sqlite:db/demo.sqlite",
        "SITE_URL": f"http://127.0.0.1:{WEB_PORT}", "SITE_NAME": "Marketplace demo",
        "HOST": "127.0.0.1", "PORT": str(WEB_PORT), "ALLOW_DEV_CHAIN": "1",
        "SESSION_SALT": old.get("SESSION_SALT") or secrets.token_hex(32),
        "COOKIE_ENCRYPTION_SALT": old.get("COOKIE_ENCRYPTION_SALT") or secrets.token_hex(32),
        "CSRF_SALT": old.get("CSRF_SALT") or secrets.token_hex(32),
        "MNEMONIC": old.get("MNEMONIC") or new_mnemonic(),
        f"RPC_URL_{CHAIN_ID}": RPC_URL, "COMMISSION_WALLET_DEV": commission_wallet,
    }
    fd = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# The demo's settings (make demo); not for production.\n")
        for key, value in values.items():
            f.write(f"{key}={value}\n")
    return values


def use_env():
    """Point this process (and its children) at the demo settings and database."""
    os.environ["ENV_FILE"] = ENV_FILE
    from lib.env import parse_env_file
    for key, value in parse_env_file(ENV_FILE):
        if key in ("DB_DRIVER", "DB_DSN", "ALLOW_DEV_CHAIN", "SITE_URL"):
            os.environ[key] = value
