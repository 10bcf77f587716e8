"""GET/POST /api/user-settings.php

GET  -> {"username", "user_uuid", "refund_address", "payout_address"}
POST any of refund_address, payout_address (EIP-55 checksummed; '' clears) -> {"ok": true, ...}.
"""
from lib import auth, users
from lib.db import get_db
from lib.http import json_response


def _settings(user):
    return {"username": user["username"], "user_uuid": user["uuid"],
            "refund_address": user["refund_address"], "payout_address": user["payout_address"]}


def get(request):
    return json_response(_settings(auth.require_user(request)))


def post(request):
    user = auth.require_user(request)
    d = request.data
    updated = users.set_addresses(get_db(), user["uuid"], d.get("refund_address"), d.get("payout_address"),
                                  request.client_ip)
    return json_response(dict(ok=True, **_settings(updated)))
