"""GET/POST /admin/tokens.php (admin)

GET  -> {"tokens": [{id, chain_id, symbol, contract_address, decimals, status, status_reason,
     manual_usd_price, created_at, updated_at}]}
POST chain_id (SPEC section 8), symbol, contract_address ('' = the chain's native coin;
     else EIP-55 checksummed), optional decimals, optional manual_usd_price (test networks
     only) -> {"ok": true, "id", "chain_id", "symbol", ... (the token's fields at the top
     level, as the original answers), "token": {...}} with status `unverified` until cron
     verifies it.
     409 duplicate (same symbol or contract on that chain).
"""
from lib import admin_pages, auth, tokens
from lib.db import get_db
from lib.http import json_response


def get(request):
    if request.wants_html:  # the HTML view for browsers (lib/admin_pages.py)
        return admin_pages.tokens_page(request)
    auth.require_role(request, "admin")
    return json_response({"tokens": tokens.list_tokens(get_db())})


def post(request):
    return admin_pages.form_post(request, _post, "tokens")


def _post(request):
    admin = auth.require_role(request, "admin")
    db = get_db()
    d = request.data
    token = tokens.add_token(db, d.get("chain_id"), d.get("symbol"), d.get("contract_address"),
                             d.get("decimals"), d.get("manual_usd_price"), by=admin["uuid"], ip=request.client_ip)
    return json_response(dict(token, ok=True, token=token))
