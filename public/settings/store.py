"""GET/POST /settings/store.php?uuid= : a store's description and payout address (owner).

Without `uuid` the first of my stores. POST `description`, `payout_address` ->
lib.catalog.update_store (as POST /api/store-settings.php). POST `form=tokens` with a
checkbox `take:CHAIN_ID:SYMBOL` per token the store takes (none checked: every accepted token).
"""
from lib import catalog, config, tokens, web
from lib.db import get_db
from lib.http import Forbidden, NotFound

TITLE = "Store settings"


def _context(db, user, store_uuid):
    stores = catalog.my_stores(db, user)
    if not stores and not store_uuid:
        raise Forbidden("you have no store yet: open one at /create-store.php")
    if not store_uuid:
        store_uuid = stores[0]["uuid"]
    role = catalog.member_role(db, user, store_uuid) if catalog.is_uuid(store_uuid) else None
    if role is None:
        raise NotFound("no such store among yours")
    store = catalog.get_store(db, store_uuid, user)
    form = {"description": store["description"] or "", "payout_address": store["payout_address"] or ""}
    taken = set(store["tokens"] or [])
    token_options = [{"key": f"{t['chain_id']}:{t['symbol'].upper()}",
                      "label": f"{t['symbol']} on {web.chain_name(t['chain_id'])}"} for t in tokens.active_tokens(db)]
    for option in token_options:
        option["checked"] = option["key"] in taken
    from lib import agreement, bond
    return {"stores": stores, "store": store, "my_role": role, "form": form, "token_options": token_options,
            "bond": bond.status(db, store["uuid"]), "needs_agreement": agreement.store_needs_acceptance(db, store["uuid"]),
            "commission": f"{config.commission(db, store['tier']) * 100:.0f}%", "nav_active": "store"}


def _store_uuid(request):
    if request.method == "POST":
        return request.arg("uuid") or request.data.get("uuid")
    return request.arg("uuid")


def _page(request, db, user, error=None):
    ctx = _context(db, user, _store_uuid(request))
    if error is not None:
        data = request.data
        ctx["form"] = {"description": data.get("description", ""), "payout_address": data.get("payout_address", "")}
    return web.form_page(request, "settings/store.html", TITLE, error, **ctx)


def _save(request, db, user, store_uuid):
    data = request.data
    if data.get("form") == "tokens":
        chosen = [key[len("take:"):] for key in data if isinstance(key, str) and key.startswith("take:")]
        catalog.update_store(db, user, store_uuid, tokens=",".join(chosen) or "all")
    else:
        catalog.update_store(db, user, store_uuid, description=data.get("description", ""),
                             payout_address=data.get("payout_address", ""))
    return web.see_other(web.url("/settings/store.php", uuid=store_uuid), "Store settings saved.", request)


def get(request):
    return _page(request, get_db(), web.login(request))


def post(request):
    user = web.login(request)
    store = _context(get_db(), user, _store_uuid(request))["store"]  # 403 without a store, 404 not yours
    return web.submit(request, user, lambda request, db, user: _save(request, db, user, store["uuid"]), _page)
