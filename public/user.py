"""GET /user.php?username= : a user's public profile (lib.profiles): joined date, stores,
reviews their stores received, a link to send them a message. 404 unknown or banned."""
from lib import profiles, web
from lib.db import get_db
from lib.http import BadRequest


def get(request):
    username = request.arg("username")
    if not username:
        raise BadRequest("username is required: /user.php?username=NAME")
    viewer = web.user(request)
    found = profiles.profile(get_db(), username, viewer)
    return web.page(request, "user.html", found["username"], profile=found, reviews=found["reviews"],
                    can_reply=False, can_hide=False, show_store=True)
