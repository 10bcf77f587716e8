"""POST /api/store-settings.php (store owner)

store_uuid and any of description, payout_address (EIP-55 checksummed; '' clears),
tokens (the accepted tokens the store takes: a list or comma-separated "CHAIN_ID:SYMBOL",
'' or "all" for every accepted token) -> {"ok": true, "store": {... payout_address, tokens}}.
"""
from lib import auth, catalog
from lib.db import get_db
from lib.http import BadRequest, json_response


def post(request):
    user = auth.require_user(request)
    d = request.data
    if not d.get("store_uuid"):
        raise BadRequest("store_uuid is required", fields={"store_uuid": "required"})
    store = catalog.update_store(get_db(), user, d.get("store_uuid"),
                                 description=d.get("description"), payout_address=d.get("payout_address"),
                                 tokens=d.get("tokens"))
    return json_response({"ok": True, "store": store})
