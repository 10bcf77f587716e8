"""Pay a demo order from anvil's development account 1: `make demo-pay ORDER=uuid`.

Sends exactly what is still due (required - received) to the order's escrow address
with eth_sendTransaction (anvil's dev accounts are unlocked, so no key is needed here).
Waits up to a minute for cron to give a new order its escrow address. ETH orders only.
"""
import sys
import time

from demo import common


def main(argv):
    if len(argv) != 1 or not argv[0].strip():
        print("usage: make demo-pay ORDER=<order uuid>   (the uuid is in the payment page's URL)",
              file=sys.stderr)
        return 2
    order = argv[0].strip()
    common.use_env()
    from lib import db as dbmod, pricing
    db = dbmod.from_env()
    row = None
    for attempt in range(60):
        row = db.one("SELECT escrow_address, required_amount, received_amount, decimals, currency, "
                     "token_contract FROM evm_transactions WHERE transaction_uuid = ?", (order,))
        if row is None:
            print(f"no order {order} in the demo database", file=sys.stderr)
            return 1
        if row["escrow_address"]:
            break
        if attempt == 0:
            print("waiting for cron to assign the escrow address ...", flush=True)
        time.sleep(1)
    if not row["escrow_address"]:
        print("the order still has no escrow address: is `make demo` (its cron loop) running?", file=sys.stderr)
        return 1
    if row["token_contract"]:
        print(f"this demo pays ETH orders only (the order is in {row['currency']})", file=sys.stderr)
        return 1
    due = int(row["required_amount"]) - int(row["received_amount"] or 0)
    if due <= 0:
        print("nothing is due: the order is paid")
        return 0
    payer = common.dev_account(common.PAYER)
    tx = common.rpc("eth_sendTransaction", {"from": payer, "to": row["escrow_address"], "value": hex(due)})
    print(f"sent {pricing.format_amount(due, row['decimals'])} ETH from {payer} to {row['escrow_address']}")
    print(f"transaction {tx}")
    print("cron sees the payment after 3 confirmations (a block a second): watch the payment page turn COMPLETED.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
