"""POST /review/manage.php : a store's answer to a review, or staff hiding one.

form=reply (review_uuid, reply): a member of the reviewed store answers once.
form=hide (review_uuid, reason): staff hide a review (audited).
Both go back to the store page; the rules are lib.reviews's (as POST /api/reviews.php).
"""
from lib import reviews, validate, web
from lib.db import get_db


def _reply(request, db, user):
    review = reviews.reply(db, user, request.data.get("review_uuid"), request.data.get("reply"))
    return review, "Your answer is published."


def _hide(request, db, user):
    review = reviews.hide(db, user, request.data.get("review_uuid"), request.data.get("reason"), ip=request.client_ip)
    return review, "The review is hidden."


FORMS = {"reply": _reply, "hide": _hide}


def post(request):
    user = web.login(request)
    review, message = validate.choice(request.data, "form", FORMS)(request, get_db(), user)
    return web.see_other(web.url("/store.php", uuid=review["store_uuid"]) + "#reviews", message, request)
