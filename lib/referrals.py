"""Referrals: who a user invited and what the referral share of releases paid them.

A buyer registered with `invite=NAME` has NAME as inviter; when an order of that buyer
is released, cron pays the inviter `commission x referral_percent` (when the inviter has a
payout address) and records a `referral_payments` row. Read-only here; amounts are
summed exactly as integers of base units.
"""
from lib import pricing


def invited_users(db, user_uuid, limit=50, offset=0):
    return db.query("SELECT username, created_at FROM users WHERE inviter_uuid = ? ORDER BY id DESC "
                    "LIMIT ? OFFSET ?", (user_uuid, int(limit), int(offset)))


def invited_count(db, user_uuid):
    return int(db.value("SELECT COUNT(*) FROM users WHERE inviter_uuid = ?", (user_uuid,), default=0))


def _decimals(db, row):
    value = db.value("SELECT decimals FROM evm_transactions WHERE transaction_uuid = ?",
                     (row["transaction_uuid"],))
    if value is None:
        value = db.value("SELECT decimals FROM accepted_tokens WHERE chain_id = ? AND symbol = ?",
                         (row["chain_id"], row["currency"]))
    return 18 if value is None else int(value)


def payments(db, user_uuid, limit=50, offset=0):
    """Referral payments to `user_uuid`, newest first, with token-unit amounts."""
    rows = db.query("SELECT transaction_uuid, amount, currency, chain_id, payment_receipt_uuid, created_at "
                    "FROM referral_payments WHERE referrer_uuid = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                    (user_uuid, int(limit), int(offset)))
    for r in rows:
        r["decimals"] = _decimals(db, r)
        r["amount_units"] = pricing.format_amount(int(r["amount"]), r["decimals"])
    return rows


def earnings(db, user_uuid):
    """Totals per (chain_id, currency): [{chain_id, currency, total (token units), count}]."""
    totals = {}
    for r in db.query("SELECT transaction_uuid, amount, currency, chain_id FROM referral_payments "
                      "WHERE referrer_uuid = ?", (user_uuid,)):
        key = (r["chain_id"], r["currency"])
        entry = totals.setdefault(key, {"chain_id": r["chain_id"], "currency": r["currency"],
                                        "base": 0, "count": 0, "decimals": _decimals(db, r)})
        entry["base"] += int(r["amount"])
        entry["count"] += 1
    out = []
    for entry in sorted(totals.values(), key=lambda e: (e["chain_id"], e["currency"])):
        entry["total"] = pricing.format_amount(entry.pop("base"), entry["decimals"])
        out.append(entry)
    return out
