"""GET/POST /review/add.php?transaction_uuid= : the buyer reviews a released order once.

GET shows the form (or the review already written); POST score (1-5), body (optional,
at most 2000 characters). Only the order's buyer sees the page (404 for anyone else);
lib.reviews holds the rules, as for POST /api/reviews.php.
"""
from lib import reviews, web
from lib.db import get_db
from lib.http import HttpError

TITLE = "Review your order"
SCORES = [(5, "5 - excellent"), (4, "4 - good"), (3, "3 - fair"), (2, "2 - poor"), (1, "1 - bad")]


def _order_uuid(request):
    return request.required_arg("transaction_uuid", "/review/add.php?transaction_uuid=ORDER_UUID")


def get(request):
    user = web.login(request)
    order = reviews.reviewable_order(get_db(), user, _order_uuid(request))
    return web.page(request, "review/add.html", TITLE, order=order, scores=SCORES)


def post(request):
    user = web.login(request)
    db = get_db()
    order_uuid = _order_uuid(request)
    try:
        review = reviews.add_review(db, user, order_uuid, request.data.get("score"), request.data.get("body"))
    except HttpError as e:
        if e.status == 404:
            raise
        order = reviews.reviewable_order(db, user, order_uuid)
        return web.form_error(request, e, "review/add.html", TITLE, order=order, scores=SCORES)
    return web.see_other(web.url("/store.php", uuid=review["store_uuid"]) + "#reviews",
                         "Thank you: your review is published.", request)
