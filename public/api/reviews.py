"""GET/POST /api/reviews.php

GET ?store_uuid= | ?item_uuid=  -> {"reviews": [...], "rating": {average, count}, "limit", "offset"}
    ?uuid=                      -> {"review": {...}}
    ?transaction_uuid= (buyer)  -> {"order": {uuid, status, may_review}, "review": {...} or null}
    ?mine=1 (auth)              -> {"reviews": [...], "limit", "offset"} the reviews I wrote
POST action=add   transaction_uuid, score (1-5), body (optional, <= 2000): the buyer of a
                  RELEASED order, once
     action=reply review_uuid, reply (<= 2000): a member of the reviewed store, once
     action=hide  review_uuid, reason (<= 255): staff (audited)
     -> {"ok": true, "review": {...}}
Hidden reviews leave the lists and ratings (staff still see them, with the reason).
"""
from lib import auth, catalog, reviews, validate
from lib.db import get_db
from lib.http import BadRequest, json_response


def _uuid_arg(request, name):
    value = request.arg(name)
    if value is not None and not catalog.is_uuid(value):
        raise BadRequest(f"{name} is not a uuid", fields={name: "not a uuid"})
    return value


def get(request):
    db = get_db()
    user = auth.optional_user(request)
    limit, offset = request.page()
    review_uuid = _uuid_arg(request, "uuid")
    if review_uuid is not None:
        return json_response({"review": reviews.get_review(db, user, review_uuid)})
    order_uuid = _uuid_arg(request, "transaction_uuid")
    if order_uuid is not None:
        order = reviews.reviewable_order(db, auth.require_user(request), order_uuid)
        return json_response({"order": {"uuid": order["uuid"], "status": order["status"],
                                        "may_review": order["may_review"]}, "review": order["review"]})
    if catalog.truthy(request.arg("mine")):
        mine = reviews.my_reviews(db, auth.require_user(request), limit, offset)
        return json_response({"reviews": mine, "limit": limit, "offset": offset})
    store_uuid, item_uuid = _uuid_arg(request, "store_uuid"), _uuid_arg(request, "item_uuid")
    if store_uuid is not None:
        catalog.get_store(db, store_uuid, user)
        rating = reviews.rating(db, store_uuid=store_uuid)
    elif item_uuid is not None:
        catalog.get_item(db, item_uuid, user)
        rating = reviews.rating(db, item_uuid=item_uuid)
    else:
        raise BadRequest("give store_uuid, item_uuid, uuid, transaction_uuid or mine=1")
    found = reviews.list_reviews(db, user, store_uuid=store_uuid, item_uuid=item_uuid, limit=limit, offset=offset)
    return json_response({"reviews": found, "rating": rating, "limit": limit, "offset": offset})


def _add(request, db, user):
    d = request.data
    return reviews.add_review(db, user, d.get("transaction_uuid"), d.get("score"), d.get("body"))


def _reply(request, db, user):
    return reviews.reply(db, user, request.data.get("review_uuid"), request.data.get("reply"))


def _hide(request, db, user):
    return reviews.hide(db, user, request.data.get("review_uuid"), request.data.get("reason"), ip=request.client_ip)


ACTIONS = {"add": _add, "reply": _reply, "hide": _hide}


def post(request):
    user = auth.require_user(request)
    db = get_db()
    return json_response({"ok": True, "review": validate.choice(request.data, "action", ACTIONS)(request, db, user)})
