"""GET /api/sessions.php: my active sessions.

-> {"sessions": [{id, device, user_agent, ip, created_at, last_seen_at, expires_at, current}]}
(most recently seen first; `current` marks the session this request came with, if any).
End one with POST /api/sessions-end.php; all of them with POST /logout.php everywhere=1.
"""
from lib import auth, session
from lib.db import get_db
from lib.http import json_response


def get(request):
    user = auth.require_user(request)
    current = request.session["id"] if getattr(request, "session", None) else None
    return json_response({"sessions": session.list_for_user(get_db(), user["uuid"], current)})
