"""`make demo`: a local escrow marketplace on a local chain, for a newcomer to watch an
order go PENDING -> COMPLETED -> RELEASED.

1. starts anvil (the npm package, `make install`) on 127.0.0.1:8545 with a block a second;
2. writes db/demo.env (salts, a fresh escrow mnemonic, RPC_URL_31337, ALLOW_DEV_CHAIN=1,
   COMMISSION_WALLET_DEV = anvil account 9) and a fresh db/demo.sqlite;
3. seeds an admin, staff, a vendor with a store and items, a buyer, ETH on chain 31337;
4. runs the cron loop (a run every 5 s) and the web server on http://127.0.0.1:8000.
Ctrl-C stops all three. Pay an order with `make demo-pay ORDER=<uuid>` in another terminal.
"""
import os
import signal
import subprocess
import sys
import time

from demo import common

CRON_EVERY = os.environ.get("DEMO_CRON_SECONDS", "5")


def start(args, log=None, env=None):
    out = open(log, "wb") if log else None
    return subprocess.Popen(args, cwd=common.ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT if out else None,
                            start_new_session=True)


def wait_for_anvil(proc, log):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"anvil exited (code {proc.returncode}); see {log}")
        try:
            if int(common.rpc("eth_chainId"), 16) == common.CHAIN_ID:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"anvil did not start; see {log}")


def banner(store_url):
    line = "=" * 72
    print(f"""{line}
The demo marketplace runs on http://127.0.0.1:{common.WEB_PORT}/  (Ctrl-C stops everything)

Accounts (password for all: {common.PASSWORD}):
  buyer   a customer with a refund address     vendor  owner of "Demo Store"
  staff   resolves disputes                    admin   configuration, tokens, users

Try it:
  1. log in as buyer, open an item, "Buy this package", place the order;
  2. the payment page shows "pending" until cron gives the order its escrow address
     (a few seconds), then the address, the amount and a QR code;
  3. pay it from anvil's development account 1 in another terminal:
         make demo-pay ORDER=<the uuid in the payment page's URL>
     a few seconds later the order is COMPLETED;
  4. log in as vendor (another browser or a private window): Orders -> My stores'
     sales -> Dispatch; as buyer: Confirm receipt, then Release payment;
  5. cron pays the vendor and the marketplace: RELEASED, with the payouts listed.
Store: {store_url}
Chain: anvil at {common.RPC_URL} (chain 31337, a block every second); logs in db/demo-*.log
{line}""", flush=True)


def main():
    anvil = common.find_anvil()
    if anvil is None:
        sys.exit("anvil is not installed: run `make install` (npm ci) first")
    os.makedirs(os.path.join(common.ROOT, "db"), exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(common.DB_FILE + suffix)
        except FileNotFoundError:
            pass
    procs = []

    def stop(*_args):
        for proc in reversed(procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    anvil_log = os.path.join(common.ROOT, "db", "demo-anvil.log")
    procs.append(start([anvil, "--host", "127.0.0.1", "--port", str(common.ANVIL_PORT), "--chain-id",
                        str(common.CHAIN_ID), "--block-time", "1"], log=anvil_log))
    wait_for_anvil(procs[0], anvil_log)
    common.write_env(common.dev_account(common.COMMISSION_WALLET))
    common.use_env()
    from demo import seed
    from lib import db as dbmod, migrate
    db = dbmod.from_env()
    migrate.init(db)
    migrate.seed_defaults(db)
    _people, store = seed.seed(db)
    db.close()
    env = dict(os.environ, ENV_FILE=common.ENV_FILE, PYTHONUNBUFFERED="1")
    for key in list(env):
        if key.startswith(("DB_", "RPC_URL_", "COMMISSION_WALLET_")) or key in ("MNEMONIC", "SECRETS_FILE"):
            env.pop(key)
    procs.append(start([sys.executable, "cron/cron.py", "--loop", CRON_EVERY], env=env,
                       log=os.path.join(common.ROOT, "db", "demo-cron.log")))
    procs.append(start([sys.executable, "wsgi.py"], env=env, log=os.path.join(common.ROOT, "db", "demo-web.log")))
    for _ in range(100):
        try:
            import urllib.request
            urllib.request.urlopen(f"http://127.0.0.1:{common.WEB_PORT}/", timeout=1).read()
            break
        except OSError:
            if procs[-1].poll() is not None:
                print(open(os.path.join(common.ROOT, "db", "demo-web.log")).read()[-2000:])
                stop()
            time.sleep(0.1)
    banner(f"http://127.0.0.1:{common.WEB_PORT}/store.php?uuid={store['uuid']}")
    while True:
        for proc in procs:
            if proc.poll() is not None:
                print(f"a demo process exited ({proc.args[0]}, code {proc.returncode}); stopping", flush=True)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    main()
