"""GET/POST /deposits/add.php : open a deposit for one of my stores in an accepted token.

POST `store_uuid`, `token` ("CHAIN_ID:SYMBOL") or `chain_id` + `currency` ->
lib.deposits.open_deposit (as POST /api/deposits.php).
"""
from lib import catalog, deposits, tokens, web
from lib.db import get_db

TITLE = "Add a deposit"


def _stores(db, user):
    return catalog.require_my_stores(db, user, "deposits belong to stores: open a store first (/create-store.php)")


def _page(request, db, user, error=None):
    stores = _stores(db, user)
    if error is not None and error.fields and ("currency" in error.fields or "chain_id" in error.fields):
        error.fields["token"] = error.fields.get("currency") or error.fields.get("chain_id")
    return web.form_page(request, "deposits/add.html", TITLE, error,
                         store_options=[(s["uuid"], s["storename"]) for s in stores],
                         token_options=[(f"{t['chain_id']}:{t['symbol']}",
                                         f"{t['symbol']} on {web.chain_name(t['chain_id'])}")
                                        for t in tokens.active_tokens(db)],
                         nav_active="deposits")


def _open(request, db, user):
    chain_id, currency = web.token_choice(request.data)
    deposit = deposits.open_deposit(db, user, request.data.get("store_uuid"), currency, chain_id)
    message = f"Deposit opened for {deposit['currency']}: its address appears within a minute."
    return web.see_other("/deposits.php", message, request)


def get(request):
    return _page(request, get_db(), web.login(request))


def post(request):
    user = web.login(request)
    _stores(get_db(), user)  # 403 before anything for a user without a store
    return web.submit(request, user, _open, _page)
