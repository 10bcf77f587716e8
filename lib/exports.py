"""Exports: CSV or JSON of a date range, streamed (GET /api/exports.php, /exports.php).

Kinds:
  sales        a vendor's orders (their stores, or one): order, item, package, USD price,
               rate, amount due and received, fees (commission and referral share), the
               vendor's payout and every payout leg with its transaction hash
  orders       staff: every order, with the same columns and the buyer
  payouts      staff: every signed chain transaction (payout legs, gas top-ups, withdrawals)
  commissions  staff: the payouts to the marketplace's commission wallet
  referrals    staff: referral payments
  disputes     staff: disputes and their outcome

The range is `from` and `to`, dates (YYYY-MM-DD, UTC, both days included), on each row's
created_at. Rows are read in chunks of CHUNK by keyset (`id > last id ORDER BY id`), each
chunk with one query per related table, and written out as they come: an export of any
size holds one chunk in memory, never the whole range. Amounts are exact decimal strings
in token units (with the base units beside them in payouts); CSV cells a spreadsheet would
read as a formula get a leading apostrophe.
"""
import csv
import datetime
import io
import json
import re

from lib import auth, catalog
from lib.db import get_db
from lib.http import BadRequest, Forbidden, NotFound
from lib.pricing import format_amount

CHUNK = 500
MAX_DAYS = 3660            # ten years: a longer range is a typo
FORMATS = ("csv", "json")
VENDOR_KINDS = ("sales",)
STAFF_KINDS = ("orders", "payouts", "commissions", "referrals", "disputes")
KINDS = VENDOR_KINDS + STAFF_KINDS
DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

ORDER_COLUMNS = ("order_uuid", "created_at", "status", "store", "item", "package", "price_usd", "chain_id",
                 "currency", "usd_rate", "amount_due", "amount_received", "commission", "referral",
                 "resolver_fee", "fees", "vendor_payout", "buyer_refund", "payout_tx_hashes")
COLUMNS = {
    "sales": ORDER_COLUMNS,
    "orders": ORDER_COLUMNS[:4] + ("buyer",) + ORDER_COLUMNS[4:],
    "payouts": ("id", "created_at", "kind", "recipient_role", "order_uuid", "deposit_uuid", "chain_id",
                "currency", "to_address", "amount", "amount_base_units", "status", "tx_hash", "block_number"),
    "referrals": ("id", "created_at", "order_uuid", "referrer", "chain_id", "currency", "amount",
                  "amount_base_units", "tx_hash"),
    "disputes": ("dispute_uuid", "created_at", "order_uuid", "opened_by", "status", "resolution",
                 "refund_percent", "resolved_by", "resolved_at"),
}
COLUMNS["commissions"] = COLUMNS["payouts"]


# -- the request ---------------------------------------------------------------------------

def _bad(message, field):
    """400 naming the field, with the message as the field's reason."""
    return BadRequest(message, fields={field: message})


def _date(request, name):
    value = request.arg(name)
    if value is None:
        raise _bad(f"{name} is required (a date YYYY-MM-DD)", name)
    try:
        if not DATE.match(value):
            raise ValueError
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise _bad(f"{name} must be a date YYYY-MM-DD", name)


def parse(request):
    """{kind, format, from, to, start, end, store_uuids} of an export request, or a 400
    naming the field; 401/403/404 for who may not export what."""
    user = auth.require_user(request)
    kind = request.arg("kind", "sales")
    if kind not in KINDS:
        raise _bad(f"kind must be one of {', '.join(KINDS)}", "kind")
    fmt = request.arg("format", "csv")
    if fmt not in FORMATS:
        raise _bad("format must be csv or json", "format")
    first, last = _date(request, "from"), _date(request, "to")
    if last < first:
        raise _bad("to must be on or after from", "to")
    if (last - first).days >= MAX_DAYS:
        raise _bad(f"to must be less than {MAX_DAYS} days after from", "to")
    spec = {"kind": kind, "format": fmt, "from": first.isoformat(), "to": last.isoformat(),
            "start": f"{first.isoformat()} 00:00:00",
            "end": f"{(last + datetime.timedelta(days=1)).isoformat()} 00:00:00", "store_uuids": None}
    store_uuid = request.arg("store_uuid")
    if store_uuid is not None and not catalog.is_uuid(store_uuid):
        raise _bad("store_uuid must be a uuid", "store_uuid")
    db = get_db()
    if kind in STAFF_KINDS:
        if not auth.is_staff(user):
            raise Forbidden(f"the {kind} export is for staff")
        return spec
    limited = getattr(request, "key_store_uuid", None)   # an API key limited to one store
    if store_uuid is not None:
        if catalog.member_role(db, user, store_uuid) is None or (limited and store_uuid != limited):
            raise NotFound("store not found (or not yours)")
        spec["store_uuids"] = [store_uuid]
    elif limited:
        spec["store_uuids"] = [limited]
    else:
        spec["store_uuids"] = [r["store_uuid"] for r in db.query(
            "SELECT store_uuid FROM store_users WHERE user_uuid = ? ORDER BY id", (user["uuid"],))]
        if not spec["store_uuids"]:
            raise NotFound("you have no store: the sales export is for vendors")
    return spec


def filename(spec):
    return f"{spec['kind']}-{spec['from']}-{spec['to']}.{spec['format']}"


# -- reading in chunks ---------------------------------------------------------------------

def _marks(values):
    return ", ".join("?" * len(values))


def _chunks(db, sql, params):
    """Rows of `sql` (which ends in `id > ? ORDER BY id LIMIT ?` over alias-free `id`),
    chunk by chunk."""
    last = 0
    while True:
        rows = db.query(sql, tuple(params) + (last, CHUNK))
        if not rows:
            return
        yield rows
        if len(rows) < CHUNK:
            return
        last = rows[-1]["id"]


def _period_rows(db, sql, spec):
    """The rows of `sql` (as _chunks takes it, with the period's start and end first) one by one."""
    for chunk in _chunks(db, sql, [spec["start"], spec["end"]]):
        yield from chunk


def _units(base, decimals):
    return None if base is None or decimals is None else format_amount(int(base), int(decimals))


def _order_rows(db, spec, with_buyer):
    where = "t.created_at >= ? AND t.created_at < ?"
    params = [spec["start"], spec["end"]]
    if spec["store_uuids"] is not None:
        where += f" AND t.store_uuid IN ({_marks(spec['store_uuids'])})"
        params += spec["store_uuids"]
    sql = ("SELECT t.id AS id, t.uuid AS uuid, t.created_at AS created_at, t.price_usd AS price_usd, "
           "t.buyer_uuid AS buyer_uuid, s.storename AS store, i.name AS item, p.name AS package, "
           "e.chain_id AS chain_id, e.currency AS currency, e.decimals AS decimals, e.usd_rate AS usd_rate, "
           "e.required_amount AS required_amount, e.received_amount AS received_amount "
           "FROM transactions t JOIN stores s ON s.uuid = t.store_uuid "
           "JOIN packages p ON p.uuid = t.package_uuid JOIN items i ON i.uuid = p.item_uuid "
           "LEFT JOIN evm_transactions e ON e.transaction_uuid = t.uuid "
           f"WHERE {where} AND t.id > ? ORDER BY t.id LIMIT ?")
    for chunk in _chunks(db, sql, params):
        uuids = [r["uuid"] for r in chunk]
        statuses = {r["transaction_uuid"]: r["status"] for r in db.query(
            "SELECT transaction_uuid, status FROM transaction_statuses WHERE id IN (SELECT MAX(id) FROM "
            f"transaction_statuses WHERE transaction_uuid IN ({_marks(uuids)}) GROUP BY transaction_uuid)", uuids)}
        legs = {}
        for leg in db.query("SELECT transaction_uuid, recipient_role, amount, tx_hash, status FROM payouts "
                            f"WHERE transaction_uuid IN ({_marks(uuids)}) AND kind = 'payout' ORDER BY id", uuids):
            legs.setdefault(leg["transaction_uuid"], []).append(leg)
        buyers = {}
        if with_buyer:
            ids = sorted({r["buyer_uuid"] for r in chunk})
            buyers = {r["uuid"]: r["username"] for r in db.query(
                f"SELECT uuid, username FROM users WHERE uuid IN ({_marks(ids)})", ids)}
        for r in chunk:
            yield _order(r, statuses.get(r["uuid"], "PENDING"), legs.get(r["uuid"], []),
                         buyers.get(r["buyer_uuid"]) if with_buyer else None, with_buyer)


def _order(r, status, legs, buyer, with_buyer):
    decimals = r["decimals"]
    confirmed = {}
    for leg in legs:
        if leg["status"] == "confirmed":
            confirmed[leg["recipient_role"]] = confirmed.get(leg["recipient_role"], 0) + int(leg["amount"])

    def paid(role):
        return _units(confirmed.get(role, 0), decimals)

    fees = confirmed.get("commission", 0) + confirmed.get("referrer", 0) + confirmed.get("resolver", 0)
    row = {"order_uuid": r["uuid"], "created_at": r["created_at"], "status": status, "store": r["store"]}
    if with_buyer:
        row["buyer"] = buyer
    row.update({
        "item": r["item"], "package": r["package"], "price_usd": r["price_usd"], "chain_id": r["chain_id"],
        "currency": r["currency"], "usd_rate": r["usd_rate"],
        "amount_due": _units(r["required_amount"], decimals),
        "amount_received": _units(r["received_amount"], decimals),
        "commission": paid("commission"), "referral": paid("referrer"), "resolver_fee": paid("resolver"),
        "fees": _units(fees, decimals), "vendor_payout": paid("vendor"), "buyer_refund": paid("buyer"),
        "payouts": [{"recipient_role": leg["recipient_role"], "amount": _units(leg["amount"], decimals),
                     "tx_hash": leg["tx_hash"], "status": leg["status"]} for leg in legs],
    })
    return row


def _payout_rows(db, spec, commissions_only):
    where = "p.created_at >= ? AND p.created_at < ?"
    if commissions_only:
        where += " AND p.recipient_role = 'commission' AND p.kind = 'payout'"
    sql = ("SELECT p.id AS id, p.created_at AS created_at, p.kind AS kind, p.recipient_role AS recipient_role, "
           "p.transaction_uuid AS order_uuid, p.deposit_uuid AS deposit_uuid, p.chain_id AS chain_id, "
           "p.currency AS currency, p.token_contract AS token_contract, p.to_address AS to_address, "
           "p.amount AS amount, p.status AS status, p.tx_hash AS tx_hash, p.block_number AS block_number, "
           "e.decimals AS order_decimals, d.decimals AS deposit_decimals "
           "FROM payouts p LEFT JOIN evm_transactions e ON e.transaction_uuid = p.transaction_uuid "
           "LEFT JOIN deposits d ON d.uuid = p.deposit_uuid "
           f"WHERE {where} AND p.id > ? ORDER BY p.id LIMIT ?")
    for r in _period_rows(db, sql, spec):
        decimals = r["order_decimals"] if r["order_decimals"] is not None else r["deposit_decimals"]
        if decimals is None and r["token_contract"] == "":
            decimals = 18            # gas top-ups: the chain's coin (every supported chain: 18)
        yield {"id": r["id"], "created_at": r["created_at"], "kind": r["kind"],
               "recipient_role": r["recipient_role"], "order_uuid": r["order_uuid"],
               "deposit_uuid": r["deposit_uuid"], "chain_id": r["chain_id"], "currency": r["currency"],
               "to_address": r["to_address"], "amount": _units(r["amount"], decimals),
               "amount_base_units": str(r["amount"]), "status": r["status"], "tx_hash": r["tx_hash"],
               "block_number": r["block_number"]}


def _referral_rows(db, spec):
    sql = ("SELECT r.id AS id, r.created_at AS created_at, r.transaction_uuid AS order_uuid, "
           "u.username AS referrer, r.chain_id AS chain_id, r.currency AS currency, r.amount AS amount, "
           "r.payment_receipt_uuid AS tx_hash, e.decimals AS decimals "
           "FROM referral_payments r LEFT JOIN users u ON u.uuid = r.referrer_uuid "
           "LEFT JOIN evm_transactions e ON e.transaction_uuid = r.transaction_uuid "
           "WHERE r.created_at >= ? AND r.created_at < ? AND r.id > ? ORDER BY r.id LIMIT ?")
    for r in _period_rows(db, sql, spec):
        yield {"id": r["id"], "created_at": r["created_at"], "order_uuid": r["order_uuid"],
               "referrer": r["referrer"], "chain_id": r["chain_id"], "currency": r["currency"],
               "amount": _units(r["amount"], r["decimals"]), "amount_base_units": str(r["amount"]),
               "tx_hash": r["tx_hash"]}


def _dispute_rows(db, spec):
    sql = ("SELECT d.id AS id, d.uuid AS dispute_uuid, d.created_at AS created_at, d.transaction_uuid AS order_uuid, "
           "o.username AS opened_by, d.status AS status, d.resolution AS resolution, "
           "d.refund_percent AS refund_percent, r.username AS resolved_by, d.resolved_at AS resolved_at "
           "FROM disputes d LEFT JOIN users o ON o.uuid = d.opened_by LEFT JOIN users r ON r.uuid = d.resolved_by "
           "WHERE d.created_at >= ? AND d.created_at < ? AND d.id > ? ORDER BY d.id LIMIT ?")
    columns = ("dispute_uuid", "created_at", "order_uuid", "opened_by", "status", "resolution", "refund_percent",
               "resolved_by", "resolved_at")
    for r in _period_rows(db, sql, spec):
        yield {k: r[k] for k in columns}


def rows(db, spec):
    """The export's rows (dicts), read chunk by chunk."""
    kind = spec["kind"]
    if kind in ("sales", "orders"):
        return _order_rows(db, spec, with_buyer=kind == "orders")
    if kind in ("payouts", "commissions"):
        return _payout_rows(db, spec, commissions_only=kind == "commissions")
    if kind == "referrals":
        return _referral_rows(db, spec)
    return _dispute_rows(db, spec)


# -- writing -------------------------------------------------------------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, list):        # payout legs: their hashes
        return " ".join(leg["tx_hash"] for leg in value)
    text = str(value)
    if text.startswith(FORMULA_START) and not re.fullmatch(r"-[0-9.]+", text):
        return "'" + text              # a spreadsheet must not run a vendor's item name
    return text


def csv_chunks(spec, records):
    columns = COLUMNS[spec["kind"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    pending = 0
    for record in records:
        record = dict(record)
        if "payouts" in record:
            record["payout_tx_hashes"] = record.pop("payouts")
        writer.writerow([_cell(record.get(c)) for c in columns])
        pending += 1
        if pending >= CHUNK:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode("utf-8")


def json_chunks(spec, records):
    head = {"kind": spec["kind"], "from": spec["from"], "to": spec["to"]}
    yield (json.dumps(head, ensure_ascii=False)[:-1] + ', "rows": [').encode("utf-8")
    parts, first = [], True
    for record in records:
        parts.append(("" if first else ", ") + json.dumps(record, ensure_ascii=False, default=str))
        first = False
        if len(parts) >= CHUNK:
            yield "".join(parts).encode("utf-8")
            parts = []
    parts.append("]}\n")
    yield "".join(parts).encode("utf-8")


def body(db, spec):
    records = rows(db, spec)
    return csv_chunks(spec, records) if spec["format"] == "csv" else json_chunks(spec, records)
