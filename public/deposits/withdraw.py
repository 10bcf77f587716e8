"""GET/POST /deposits/withdraw.php?uuid= : a deposit's history; the owner withdraws its balance.

POST `deposit_uuid` -> lib.deposits.withdraw (as POST /api/deposit-withdraw.php): cron sends
the balance to the store's payout address.
"""
from lib import catalog, deposits, web
from lib.db import get_db
from lib.http import BadRequest

TITLE = "Deposit"


def _context(db, user, deposit_uuid):
    if not deposit_uuid:
        raise BadRequest("uuid is required: /deposits/withdraw.php?uuid=DEPOSIT_UUID")
    deposit = deposits.get_deposit(db, user, deposit_uuid)
    store = catalog.store_row(db, deposit["store_uuid"])
    return {"deposit": deposit, "payout_address": store["payout_address"] if store else None,
            "nav_active": "deposits"}


def _deposit_uuid(request):
    if request.method == "POST":
        return request.data.get("deposit_uuid") or request.arg("uuid")
    return request.arg("uuid")


def _page(request, db, user, error=None):
    ctx = _context(db, user, _deposit_uuid(request))
    return web.form_page(request, "deposits/withdraw.html", TITLE, error, **ctx)


def _withdraw(request, db, user):
    deposit_uuid = _deposit_uuid(request)
    deposits.withdraw(db, user, deposit_uuid, ip=request.client_ip)
    return web.see_other(web.url("/deposits/withdraw.php", uuid=deposit_uuid),
                         "Withdrawal requested: cron sends it within a few minutes.", request)


def get(request):
    return _page(request, get_db(), web.login(request))


def post(request):
    user = web.login(request)
    _context(get_db(), user, _deposit_uuid(request))  # 400 without a uuid, 404 unless the deposit is yours
    return web.submit(request, user, _withdraw, _page, passes=lambda e: e.status == 404)
