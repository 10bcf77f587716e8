"""GET/POST /api/packages.php

GET  ?item_uuid= -> {"packages": [{uuid, item_uuid, name, description, price_usd, active,
     created_at, updated_at, quotes: [{chain_id, currency, contract_address, decimals,
     required_amount, usd_rate, error}]}]}: a live quote per active token (required_amount
     null with an error when that token's USD rate is stale or missing).
POST item_uuid, name (1-64), description, price_usd (0.01-1000000, cents) (store members)
     -> {"ok": true, "uuid", "package"}.
"""
from lib import auth, catalog
from lib.db import get_db
from lib.http import HttpError, json_response


def get(request):
    db = get_db()
    item_uuid = request.arg("item_uuid")
    if item_uuid is None:
        raise HttpError(400, "item_uuid is required")
    packages = catalog.add_quotes(db, catalog.list_packages(db, item_uuid, auth.optional_user(request)))
    return json_response({"packages": packages})


def post(request):
    user = auth.require_user(request)
    d = request.data
    package = catalog.create_package(get_db(), user, d.get("item_uuid"), d.get("name"),
                                     d.get("description"), d.get("price_usd"))
    return json_response({"ok": True, "uuid": package["uuid"], "package": package})
