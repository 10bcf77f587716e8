"""POST /review/manage.php : a store's answer to a review, or staff hiding one.

form=reply (review_uuid, reply): a member of the reviewed store answers once.
form=hide (review_uuid, reason): staff hide a review (audited).
Both go back to the store page; the rules are lib.reviews's (as POST /api/reviews.php).
"""
from lib import reviews, web
from lib.db import get_db
from lib.http import BadRequest


def post(request):
    user = web.login(request)
    db = get_db()
    data = request.data
    which = data.get("form")
    if which == "reply":
        review = reviews.reply(db, user, data.get("review_uuid"), data.get("reply"))
        message = "Your answer is published."
    elif which == "hide":
        review = reviews.hide(db, user, data.get("review_uuid"), data.get("reason"), ip=request.client_ip)
        message = "The review is hidden."
    else:
        raise BadRequest("form must be reply or hide", fields={"form": "reply or hide"})
    return web.see_other(web.url("/store.php", uuid=review["store_uuid"]) + "#reviews", message, request)
