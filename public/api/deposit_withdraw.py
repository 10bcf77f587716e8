"""POST /api/deposit-withdraw.php (store owner)

deposit_uuid -> {"ok": true, "intent": {uuid, deposit_uuid, to_address, status, created_at}}:
a withdrawal of the deposit's balance to the store's payout address, executed by cron.
409 without a payout address, before the address is derived, with nothing to withdraw,
or while another withdrawal is open.
"""
from lib import auth, deposits
from lib.db import get_db
from lib.http import json_response


def post(request):
    user = auth.require_user(request)
    intent = deposits.withdraw(get_db(), user, request.data.get("deposit_uuid"), request.client_ip)
    return json_response({"ok": True, "intent": intent})
