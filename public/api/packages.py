"""GET/POST /api/packages.php

GET  ?item_uuid= -> {"packages": [{uuid, item_uuid, name, description, price_usd, active,
     created_at, updated_at, quotes: [{chain_id, currency, contract_address, decimals,
     required_amount, usd_rate, error}]}]}: a live quote per token the store takes (required_amount
     null with an error when that token's USD rate is stale or missing).
POST item_uuid, name (1-64), description, price_usd (0.01-1000000, cents) (store members)
     -> {"ok": true, "uuid", "package"}.
"""
from lib import auth, catalog, catalog_cache, pricing, tokens
from lib.db import get_db
from lib.http import BadRequest, json_response


def get(request):
    return catalog_cache.serve(request, _get, pricing.rates_valid_until)


def _get(request, db):
    item_uuid = request.arg("item_uuid")
    if item_uuid is None:
        raise BadRequest("item_uuid is required")
    user = auth.optional_user(request)
    packages = catalog.list_packages(db, item_uuid, user)
    store_uuid = catalog.get_item(db, item_uuid, user)["store_uuid"]
    packages = catalog.add_quotes(db, packages, tokens.tokens_for_store(db, store_uuid))
    return json_response({"packages": packages})


def post(request):
    user = auth.require_user(request)
    d = request.data
    package = catalog.create_package(get_db(), user, d.get("item_uuid"), d.get("name"),
                                     d.get("description"), d.get("price_usd"))
    return json_response({"ok": True, "uuid": package["uuid"], "package": package})
