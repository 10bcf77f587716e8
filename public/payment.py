"""GET/POST /payment.php?uuid= : an order's payment page (its buyer, its store's members, staff).

Shows the escrow address (or "pending, up to a minute"), the amount due and received, a QR
code of the EIP-681 payment URI, status and shipping history, payouts with explorer links
and the actions the user may take now. POST `action` = release, cancel, dispatch, confirm,
dispute (`comment`), partial_refund (`refund_percent`, staff): the same lib.orders code and
rules as POST /api/transaction-actions.php. The order's message thread (lib.messages) is
shown at the end; its form posts to /messages.php?order=.
"""
from lib import auth, chains, messages, orders, payment_uri, pricing, web
from lib.db import get_db
from lib.http import BadRequest, HttpError

ACTIONS = {
    # name: (button label, help text, button style)
    "dispatch": ("Mark as dispatched", "Tell the buyer the goods are on their way.", ""),
    "confirm": ("Confirm receipt", "You received the goods as described.", ""),
    "release": ("Release payment", "Pay the escrow to the vendor now. This cannot be undone.", ""),
    "cancel": ("Cancel order", "Cancel and refund everything received to the buyer's refund address.", "danger"),
    "dispute": ("Open a dispute", "Freeze the payment and ask staff to decide.", "secondary"),
    "partial_refund": ("Partial refund", "Resolve the dispute: refund this percent to the buyer, the rest to the vendor.", "secondary"),
}
CANCEL_HELP = {"buyer": "Cancel the unpaid order (anything already received is refunded).",
               "vendor": "Decline the order: everything received is refunded to the buyer."}


def _order_uuid(request):
    value = request.arg("uuid") or (request.data.get("uuid") if request.method == "POST" else None)
    if not value:
        raise BadRequest("uuid is required: /payment.php?uuid=ORDER_UUID")
    return value


def _context(db, user, order_uuid):
    order = orders.get_order(db, user, order_uuid)
    roles = set(order["my_roles"])
    actions = []
    for name in order["allowed_actions"]:
        label, help_text, style = ACTIONS[name]
        if name == "cancel" and "staff" not in roles:
            help_text = CANCEL_HELP["buyer" if "buyer" in roles else "vendor"]
        actions.append({"name": name, "label": label, "help": help_text, "style": style})
    ctx = {"order": order, "actions": actions, "qr": None, "pay_uri": None, "address_link": None,
           "remaining_note": None,
           # staff who are a party act only as buyer or vendor here (lib.orders.parties)
           "party_staff": auth.is_staff(user) and bool({"buyer", "vendor"} & roles)}
    if order["escrow_address"]:
        try:
            ctx["address_link"] = chains.explorer_address_url(order["chain_id"], order["escrow_address"])
        except (ValueError, chains.UnsupportedChain):
            ctx["address_link"] = None
        if order["current_status"] == "PENDING" and "buyer" in roles:
            decimals = order["decimals"]
            received, remaining = orders.amount_due(order)
            if remaining > 0:
                ctx["pay_uri"] = payment_uri.eip681(order["escrow_address"], order["chain_id"], remaining,
                                                    order["token_contract"] or "")
                ctx["qr"] = payment_uri.qr_data_uri(ctx["pay_uri"])
                if received:
                    ctx["remaining_note"] = (f"{pricing.format_amount(received, decimals)} {order['currency']} "
                                             f"received; the code asks for the remaining "
                                             f"{pricing.format_amount(remaining, decimals)}.")
    waiting = orders.waiting(order)
    ctx["refresh"] = 15 if waiting else None
    ctx["scripts"] = ["/static/refresh.js"] if waiting else []
    ctx["nav_active"] = "payments"
    try:   # the order's messages: its parties; staff only once it was disputed
        ctx["thread"] = messages.order_thread(db, user, order["uuid"], field="uuid")
    except HttpError as e:
        if e.status != 404:
            raise
        ctx["thread"] = None
    return ctx


def get(request):
    user = web.login(request)
    db = get_db()
    ctx = _context(db, user, _order_uuid(request))
    return web.page(request, "payment.html", f"Order {ctx['order']['uuid'][:8]}", **ctx)


DONE = {"release": "Payment release requested: the payout is sent within a few minutes.",
        "cancel": "Cancellation requested: any payment received is refunded within a few minutes.",
        "partial_refund": "Partial refund requested: the payouts are sent within a few minutes.",
        "dispatch": "Marked as dispatched.",
        "confirm": "Receipt confirmed. You can now release the payment.",
        "dispute": "Dispute opened: the payment is frozen until staff decide."}


def post(request):
    user = web.login(request)
    db = get_db()
    order_uuid = _order_uuid(request)
    data = request.data
    action = data.get("action") or data.get("do")
    try:
        orders.take_action(db, user, order_uuid, action, refund_percent=data.get("refund_percent"),
                           comment=data.get("comment"), ip=request.client_ip)
    except HttpError as e:
        if e.status == 404:
            raise
        ctx = _context(db, user, order_uuid)
        return web.form_error(request, e, "payment.html", f"Order {order_uuid[:8]}", **ctx)
    web.flash(request, DONE.get(action.strip().lower(), "Done."))
    return web.see_other(web.url("/payment.php", uuid=order_uuid))
