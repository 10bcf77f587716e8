"""GET /api/auth-user.php: who am I -> {"username", "role", "user_uuid"}; with a
session cookie also "csrf_token", for scripts that use a session for state-changing calls."""
from lib import auth, csrf
from lib.http import json_response


def get(request):
    user = auth.require_user(request)
    body = {"username": user["username"], "role": user["role"], "user_uuid": user["uuid"]}
    if request.auth_method == "session":
        body["csrf_token"] = csrf.token_for_session(request.session)
    return json_response(body)
