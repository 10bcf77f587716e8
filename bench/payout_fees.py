#!/usr/bin/env python3
"""What payouts cost on an EIP-1559 chain, and how fast a stuck one is replaced.

On a fresh anvil and a fresh SQLite database, through the real cron:
  A. an ETH order of 1 ETH released to vendor, referrer and commission wallet
     (three type-2 transfers): the network fee charged, the fee reserved, the headroom
     left in the escrow, and what the same three transfers cost as legacy (type-0)
     transactions at the node's gas price plus the 25% margin the previous release used,
     sent for real at the same base fee;
  B. the same release while the base fee jumps 100x after signing: blocks from the first
     broadcast until a replacement is mined, replacements signed, transactions mined.

    .venv/bin/python bench/payout_fees.py
"""
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ["ENV_FILE"] = os.path.join(ROOT, "tests", "no-such.env")

from eth_account import Account  # noqa: E402

from lib import db as dbmod, intents, migrate  # noqa: E402
from lib import status_machine as sm  # noqa: E402
from tests.chain import AnvilNode, fresh_address  # noqa: E402
from tests.cron_support import Parties, cron_env, paid_order, payout_rows, run_cron  # noqa: E402

ETH = 10 ** 18
GWEI = 10 ** 9


def release(anvil, db, env, p):
    uuid, addr = paid_order(anvil, db, env, p, ETH)
    intents.open_intent(db, uuid, sm.RELEASE, p.buyer["uuid"])
    return p, uuid, addr


def legacy_cost(anvil, gas_used_list):
    """Send the same transfers as legacy transactions at eth_gasPrice + 25%; the fees charged."""
    key = anvil.dev_key(7)
    sender = Account.from_key(key)
    price = int(anvil.rpc("eth_gasPrice"), 16) * 125 // 100
    nonce = anvil.nonce(sender.address)
    total = 0
    for gas in gas_used_list:
        tx = sender.sign_transaction({"to": fresh_address(), "value": 1, "gas": gas, "gasPrice": price,
                                      "nonce": nonce, "chainId": 31337})
        nonce += 1
        h = anvil.rpc("eth_sendRawTransaction", "0x" + bytes(tx.raw_transaction).hex())
        r = anvil.wait_receipt(h)
        total += int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)
    return total, price


def main():
    tmp = tempfile.mkdtemp(prefix="bench-payout-")
    anvil = AnvilNode()
    try:
        db = dbmod.Db("sqlite:%s" % os.path.join(tmp, "bench.sqlite"))
        migrate.init(db)
        dbmod.set_db(db)
        env = cron_env(anvil.url, __import__("pathlib").Path(tmp))
        anvil.mine(20)

        # A. one release, type 2, then the same transfers as legacy transactions.
        p = Parties(db)
        p, uuid, addr = release(anvil, db, env, p)
        for _ in range(4):
            run_cron(env, db)
            if sm.current_status(db, uuid)["status"] == sm.RELEASED:
                break
            anvil.mine(3)
        rows = [r for r in payout_rows(db, uuid) if r["kind"] == "payout"]
        charged = sum(int(r["gas_used"]) * int(r["effective_gas_price"]) for r in rows)
        reserved = sum(int(r["fee"]) for r in rows)
        base = anvil.rpc("eth_feeHistory", "0x1", "latest", [50])["baseFeePerGas"][-1]
        legacy, legacy_price = legacy_cost(anvil, [int(r["gas_used"]) for r in rows])
        eff = int(rows[0]["effective_gas_price"])
        print("A. ETH release, 3 transfers of %d gas (base fee about %.4f gwei)"
              % (int(rows[0]["gas_used"]), int(base, 16) / GWEI))
        print("   type 2: charged %d wei (%.4f gwei per gas), reserved %d wei, headroom left in escrow %d wei"
              % (charged, eff / GWEI, reserved, anvil.balance(addr)))
        print("   legacy at gas price + 25%%: charged %d wei (%.4f gwei per gas)" % (legacy, legacy_price / GWEI))
        print("   legacy / type 2 = %.2f; type-2 overhead vs legacy: %+d wei (%+.1f%%)"
              % (legacy / charged, charged - legacy, 100.0 * (charged - legacy) / legacy))

        # B. a base-fee spike right after signing.
        p, uuid, addr = release(anvil, db, env, p)
        anvil.rpc("evm_setAutomine", False)
        run_cron(env, db)
        sent = anvil.block_number()
        mined = None
        for _ in range(20):
            anvil.rpc("anvil_setNextBlockBaseFeePerGas", hex(100 * int(base, 16) + GWEI))
            anvil.rpc("evm_mine")
            run_cron(env, db)
            blocks = {r["block_number"] for r in payout_rows(db, uuid) if r["block_number"]}
            if blocks and mined is None:
                mined = min(blocks)
            if sm.current_status(db, uuid)["status"] == sm.RELEASED:
                break
        rows = payout_rows(db, uuid)
        attempts = db.value("SELECT COUNT(*) FROM payout_attempts a JOIN payouts p ON p.id = a.payout_id "
                            "WHERE p.transaction_uuid = ?", (uuid,))
        print("B. base fee x100 after signing: replacement mined %s blocks after the first broadcast "
              "(CRON_REPLACE_AFTER_BLOCKS=3); %d transfers, %d signed attempts, %d transactions left the escrow; %s"
              % (mined - sent if mined else "never", len(rows), attempts, anvil.nonce(addr, "latest"),
                 sm.current_status(db, uuid)["status"]))
    finally:
        anvil.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
