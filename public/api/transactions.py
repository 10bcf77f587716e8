"""GET/POST /api/transactions.php

GET  -> {"transactions": [order...], "limit", "offset"}: orders where I am the buyer or a
     member of the store, newest first (staff: every order). ?scope=mine|buyer|vendor|all.
     ?uuid= -> {"transaction": order + statuses, shipping, intents, payouts, dispute,
     my_roles, allowed_actions}; 404 when I am not a party (nor staff).
POST package_uuid, currency (default ETH), chain_id (default 1), refund_address (else my
     profile's) -> {"ok": true, "uuid", "escrow_address_pending": true, "required_amount",
     "currency", "chain_id", "price_usd", "usd_rate"}. A client's required_amount is ignored:
     the server prices every order.
"""
from lib import auth, orders
from lib.db import get_db
from lib.http import json_response


def get(request):
    user = auth.require_user(request)
    db = get_db()
    uuid = request.arg("uuid")
    if uuid is not None:
        return json_response({"transaction": orders.get_order(db, user, uuid)})
    limit, offset = request.page()
    return json_response({"transactions": orders.list_orders(db, user, limit, offset, request.arg("scope")),
                          "limit": limit, "offset": offset})


def post(request):
    user = auth.require_user(request)
    d = request.data
    result = orders.create_order(get_db(), user, d.get("package_uuid"), d.get("currency"),
                                 d.get("chain_id"), d.get("refund_address"))
    return json_response(result)
