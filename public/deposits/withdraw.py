"""GET/POST /deposits/withdraw.php?uuid= : a deposit's history; the owner withdraws its balance.

POST `deposit_uuid` -> lib.deposits.withdraw (as POST /api/deposit-withdraw.php): cron sends
the balance to the store's payout address.
"""
from lib import catalog, deposits, web
from lib.db import get_db
from lib.http import BadRequest, HttpError

TITLE = "Deposit"


def _context(db, user, deposit_uuid):
    if not deposit_uuid:
        raise BadRequest("uuid is required: /deposits/withdraw.php?uuid=DEPOSIT_UUID")
    deposit = deposits.get_deposit(db, user, deposit_uuid)
    store = catalog.store_row(db, deposit["store_uuid"])
    return {"deposit": deposit, "payout_address": store["payout_address"] if store else None,
            "nav_active": "deposits"}


def get(request):
    user = web.login(request)
    return web.page(request, "deposits/withdraw.html", TITLE, **_context(get_db(), user, request.arg("uuid")))


def post(request):
    user = web.login(request)
    db = get_db()
    deposit_uuid = request.data.get("deposit_uuid") or request.arg("uuid")
    ctx = _context(db, user, deposit_uuid)
    try:
        deposits.withdraw(db, user, deposit_uuid, ip=request.client_ip)
    except HttpError as e:
        if e.status == 404:
            raise
        return web.form_error(request, e, "deposits/withdraw.html", TITLE, **ctx)
    web.flash(request, "Withdrawal requested: cron sends it within a few minutes.")
    return web.see_other(web.url("/deposits/withdraw.php", uuid=deposit_uuid))
