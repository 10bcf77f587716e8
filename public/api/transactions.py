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
from lib import auth, order_rows, orders
from lib.db import get_db
from lib.http import json_response, one_or_page


def get(request):
    user = auth.require_user(request)
    db = get_db()
    return one_or_page(request, "transaction", lambda uuid: orders.get_order(db, user, uuid), "transactions",
                       lambda limit, offset: order_rows.orders_json(
                           db, orders.order_ids_page(db, user, limit, offset, request.arg("scope"))))


def post(request):
    user = auth.require_user(request)
    d = request.data
    result = orders.create_order(get_db(), user, d.get("package_uuid"), d.get("currency"),
                                 d.get("chain_id"), d.get("refund_address"))
    return json_response(result)
