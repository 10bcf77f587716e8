"""Pay a demo order from anvil's development account 1: `make demo-pay ORDER=uuid`.

Sends exactly what is still due (required - received) to the order's escrow address
with eth_sendTransaction (anvil's dev accounts are unlocked, so no key is needed here).
Waits up to a minute for cron to give a new order its escrow address. ETH orders only.
"""
import sys
import time

from demo import common


class PayError(Exception):
    pass


def pay(db, order, url, wait_seconds=60, say=print):
    """Send what `order` still owes from anvil's account PAYER over `url`; returns the
    transaction hash, or None when nothing is due. PayError for anything that stops it."""
    from lib import pricing
    row = None
    for attempt in range(max(1, wait_seconds)):
        row = db.one("SELECT escrow_address, required_amount, received_amount, decimals, currency, "
                     "token_contract FROM evm_transactions WHERE transaction_uuid = ?", (order,))
        if row is None:
            raise PayError(f"no order {order} in the demo database")
        if row["escrow_address"] or attempt == wait_seconds - 1:
            break
        if attempt == 0:
            say("waiting for cron to assign the escrow address ...")
        time.sleep(1)
    if not row["escrow_address"]:
        raise PayError("the order still has no escrow address: is `make demo` (its cron loop) running?")
    if row["token_contract"]:
        raise PayError(f"this demo pays ETH orders only (the order is in {row['currency']})")
    due = int(row["required_amount"]) - int(row["received_amount"] or 0)
    if due <= 0:
        say("nothing is due: the order is paid")
        return None
    payer = common.dev_account(common.PAYER, url=url)
    tx = common.rpc("eth_sendTransaction", {"from": payer, "to": row["escrow_address"], "value": hex(due)},
                    url=url)
    say(f"sent {pricing.format_amount(due, row['decimals'])} ETH from {payer} to {row['escrow_address']}")
    say(f"transaction {tx}")
    return tx


def main(argv):
    if len(argv) != 1 or not argv[0].strip():
        print("usage: make demo-pay ORDER=<order uuid>   (the uuid is in the payment page's URL)",
              file=sys.stderr)
        return 2
    common.use_env()
    from lib import db as dbmod
    db = dbmod.from_env()
    try:
        tx = pay(db, argv[0].strip(), common.running_rpc_url(), say=lambda m: print(m, flush=True))
    except PayError as e:
        print(e, file=sys.stderr)
        return 1
    if tx:
        print("cron sees the payment after 3 confirmations (a block a second): watch the payment page turn COMPLETED.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
