"""GET/POST /api/deposits.php (store members)

GET  -> {"deposits": [...], "limit", "offset"}: deposits of my stores (?store_uuid= one store);
     each also carries the original's crypto (symbol), crypto_value (balance in token units),
     fiat_value (USD string, null without a usable rate) and currency_rate (USD rate or null);
     ?uuid= -> {"deposit": {... "history", "withdrawals"}};
     ?all=1 (staff) -> every deposit of every store, each with open_withdrawal_status
     (the list of /staff/deposits.php; 403 for anyone else).
POST store_uuid, currency (default ETH), chain_id (default 1) -> {"ok": true, "uuid", "deposit"};
     the address is null until cron derives it (branch m/44'/60'/0'/1/i).
"""
from lib import auth, deposits
from lib.db import get_db
from lib.http import BadRequest, one_or_page, json_response


def get(request):
    user = auth.require_user(request)
    db = get_db()
    return one_or_page(request, "deposit", lambda uuid: deposits.get_deposit(db, user, uuid),
                            "deposits", lambda limit, offset: _list(request, db, user, limit, offset))


def _list(request, db, user, limit, offset):
    if request.arg("all") in (None, "", "0"):
        return deposits.list_deposits(db, user, limit, offset, request.arg("store_uuid"))
    if request.arg("all") != "1":
        raise BadRequest("all must be 1", fields={"all": "must be 1"})
    return deposits.list_all(db, user, limit, offset)


def post(request):
    user = auth.require_user(request)
    d = request.data
    deposit = deposits.open_deposit(get_db(), user, d.get("store_uuid"), d.get("currency"), d.get("chain_id"))
    return json_response({"ok": True, "uuid": deposit["uuid"], "deposit": deposit})
