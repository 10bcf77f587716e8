"""GET/POST /book.php?package_uuid= : checkout.

GET shows the package, a live quote per accepted token and the form (token = chain and
currency, refund address). POST creates the order through lib.orders (the same code as
POST /api/transactions.php) and 303s to its payment page.
Form fields: `token` ("CHAIN_ID:SYMBOL") or `chain_id` + `currency`; `refund_address`.
"""
from lib import catalog, orders, tokens, web
from lib.db import get_db
from lib.http import BadRequest, HttpError

TITLE = "Checkout"


def _package_uuid(request):
    value = request.arg("package_uuid")
    if request.method == "POST":
        value = request.data.get("package_uuid") or value
    if not value:
        raise BadRequest("package_uuid is required: /book.php?package_uuid=PACKAGE_UUID")
    return value


def _context(db, user, package_uuid):
    package = catalog.package_for_sale(db, package_uuid)
    orders.refuse_own_store(db, user, package)
    active = tokens.tokens_for_store(db, package["store_uuid"])
    quotes = catalog.package_quotes(db, package["price_usd"], active)
    options = [(f"{t['chain_id']}:{t['symbol']}", f"{t['symbol']} on {web.chain_name(t['chain_id'])}")
               for t in active]
    return {"package": package, "quotes": quotes, "token_options": options,
            "selected_token": options[0][0] if options else None,
            "form": {"refund_address": user.get("refund_address") or ""}}


def get(request):
    user = web.login(request)
    db = get_db()
    return web.page(request, "book.html", TITLE, **_context(db, user, _package_uuid(request)))


def post(request):
    user = web.login(request)
    db = get_db()
    package_uuid = _package_uuid(request)
    ctx = _context(db, user, package_uuid)
    data = request.data
    try:
        chain_id, currency = web.token_choice(data)
        result = orders.create_order(db, user, package_uuid, currency=currency, chain_id=chain_id,
                                     refund_address=data.get("refund_address"))
    except HttpError as e:
        if e.fields and "currency" in e.fields or e.fields and "chain_id" in e.fields:
            e.fields["token"] = e.fields.get("currency") or e.fields.get("chain_id")
        ctx["selected_token"] = data.get("token") or ctx["selected_token"]
        ctx["form"] = dict(data)
        return web.form_error(request, e, "book.html", TITLE, **ctx)
    web.flash(request, f"Order placed: pay {result['required_amount']} {result['currency']} "
                       "to the escrow address below.")
    return web.see_other(web.url("/payment.php", uuid=result["uuid"]))
