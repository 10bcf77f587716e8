"""POST /api/sessions-end.php: `id` of one of my sessions -> {"ok": true, "id", "ended": true}.

That session is logged out at once (ending the current one logs this client out).
Someone else's session or an unknown id: 404. Audited (session_ended). The settings
page's buttons post `form=end_session` to /settings/user.php (same function).
"""
from lib import auth, session
from lib.db import get_db
from lib.http import json_response, parse_id


def post(request):
    user = auth.require_user(request)
    session_id = parse_id(request.field("id", required=True, max_length=20))
    session.end(get_db(), user["uuid"], session_id, request.client_ip)
    return json_response({"ok": True, "id": session_id, "ended": True})
