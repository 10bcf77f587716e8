"""GET/POST /deposits/add.php : open a deposit for one of my stores in an accepted token.

POST `store_uuid`, `token` ("CHAIN_ID:SYMBOL") or `chain_id` + `currency` ->
lib.deposits.open_deposit (as POST /api/deposits.php).
"""
from lib import catalog, deposits, tokens, web
from lib.db import get_db
from lib.http import Forbidden, HttpError

TITLE = "Add a deposit"


def _context(db, user):
    stores = catalog.my_stores(db, user)
    if not stores:
        raise Forbidden("deposits belong to stores: open a store first (/create-store.php)")
    return {"store_options": [(s["uuid"], s["storename"]) for s in stores],
            "token_options": [(f"{t['chain_id']}:{t['symbol']}", f"{t['symbol']} on {web.chain_name(t['chain_id'])}")
                              for t in tokens.active_tokens(db)],
            "nav_active": "deposits"}


def get(request):
    user = web.login(request)
    return web.page(request, "deposits/add.html", TITLE, **_context(get_db(), user))


def post(request):
    user = web.login(request)
    db = get_db()
    ctx = _context(db, user)
    data = request.data
    try:
        chain_id, currency = web.token_choice(data)
        deposit = deposits.open_deposit(db, user, data.get("store_uuid"), currency, chain_id)
    except HttpError as e:
        if e.fields and ("currency" in e.fields or "chain_id" in e.fields):
            e.fields["token"] = e.fields.get("currency") or e.fields.get("chain_id")
        return web.form_error(request, e, "deposits/add.html", TITLE, **ctx)
    web.flash(request, f"Deposit opened for {deposit['currency']}: its address appears within a minute.")
    return web.see_other("/deposits.php")
