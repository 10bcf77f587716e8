"""GET/POST /dispute.php?uuid= : a dispute's claims thread (the buyer, the store's members, staff).

`uuid` is the dispute's uuid (an order uuid leads to the order's dispute). POST
`action=claim` with `claim` adds to the thread; staff POST `action=resolve` with
`resolution` = release | refund | partial_refund (+ `refund_percent` 1-100, `comment`),
which goes through lib.disputes.resolve -> lib.orders.take_action like the API.
"""
from lib import auth, disputes, orders, web
from lib.db import get_db
from lib.http import BadRequest, HttpError, NotFound

TITLE = "Dispute"


def _dispute(db, user, value):
    try:
        return disputes.get_dispute(db, user, value)
    except HttpError as e:
        if e.status != 404:
            raise
        order = orders.get_order(db, user, value)  # an order uuid: follow it to its dispute
        if not order["dispute_uuid"]:
            raise NotFound("this order has no dispute")
        return disputes.get_dispute(db, user, order["dispute_uuid"])


def _uuid(request):
    value = request.arg("uuid")
    if not value:
        raise BadRequest("uuid is required: /dispute.php?uuid=DISPUTE_UUID")
    return value


RESOLVE_OPTIONS = [("release", "Release: pay the vendor"), ("refund", "Refund: everything back to the buyer"),
                   ("partial_refund", "Partial refund: a percent to the buyer")]


def _context(db, user, dispute):
    # Which decisions to offer comes from the order's rule book (status_machine.decide via
    # lib.orders), as the API applies it: none for non-staff, a resolved dispute or a payout
    # already in progress.
    order = orders.get_order(db, user, dispute["transaction_uuid"])
    allowed = set(order["allowed_actions"])
    resolutions = []
    if dispute["status"] == "open":
        resolutions = [(key, label) for key, label in RESOLVE_OPTIONS
                       if disputes.RESOLUTIONS[key] in allowed]
    # Staff who bought the order or sell in its store decide nothing on it.
    party_staff = auth.is_staff(user) and bool({"buyer", "vendor"} & set(order["my_roles"]))
    return {"dispute": dispute, "is_staff": auth.is_staff(user), "resolutions": resolutions,
            "party_staff": party_staff,
            "staff_uuids": disputes.staff_claimants(db, dispute["uuid"]),
            "nav_active": "staff" if auth.is_staff(user) else "payments"}


def get(request):
    user = web.login(request)
    db = get_db()
    dispute = _dispute(db, user, _uuid(request))
    return web.page(request, "dispute.html", TITLE, **_context(db, user, dispute))


def post(request):
    user = web.login(request)
    db = get_db()
    dispute = _dispute(db, user, _uuid(request))
    data = request.data
    action = data.get("action") or ("resolve" if data.get("resolution") else "claim")
    try:
        if action == "claim":
            disputes.add_claim(db, user, dispute["uuid"], data.get("claim"))
            message = "Your claim was added."
        elif action == "resolve":
            result = disputes.resolve(db, user, dispute["uuid"], data.get("resolution"),
                                      refund_percent=data.get("refund_percent"),
                                      comment=data.get("comment"), ip=request.client_ip)
            message = f"Dispute resolved ({result['resolution'].replace('_', ' ')}): the payouts follow within minutes."
        else:
            raise BadRequest("action must be claim or resolve", fields={"action": "unknown"})
    except HttpError as e:
        fresh = disputes.get_dispute(db, user, dispute["uuid"])
        return web.form_error(request, e, "dispute.html", TITLE, **_context(db, user, fresh))
    web.flash(request, message)
    return web.see_other(web.url("/dispute.php", uuid=dispute["uuid"]))
