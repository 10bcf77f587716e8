"""GET/POST /api/email-settings.php : my email address and notification mails (lib.mail).

GET -> {"enabled", "email", "email_verified_at", "pending_email", "notifications": {kind: on}}
(kinds: order.paid, order.dispatched, order.released, dispute). Without email configured
(EMAIL_ENABLED) `enabled` is false, the rest empty, and every POST is 404.
POST action=add (`email`: a verification link is mailed; the address is used once opened)
   | verify (`code`: the link's code, as /verify-email.php; 404 unknown, used, expired or
     someone else's) | remove
   | notifications (any of `order.paid`, `order.dispatched`, `order.released`, `dispute`
     = 1 | 0; kinds not sent stay as they are) -> {"ok": true, ...GET's fields}.
"""
from lib import auth, mail
from lib.db import get_db
from lib.http import BadRequest, NotFound, json_response

SWITCH = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False, "no": False}


def _settings(db, user):
    if not mail.enabled():
        return {"enabled": False, "email": None, "email_verified_at": None, "pending_email": None,
                "notifications": {}}
    return dict({"enabled": True}, **mail.settings_of(db, user["uuid"]))


def _switches(data, current):
    """The kinds that stay on after this request; 400 naming a bad value."""
    on = {k for k, v in current.items() if v}
    for kind in mail.KINDS:
        value = data.get(kind)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        flag = SWITCH.get(str(value).strip().lower()) if isinstance(value, (str, int)) else None
        if flag is None:
            raise BadRequest(f"{kind} must be 1 or 0", fields={kind: "1 or 0"})
        (on.add if flag else on.discard)(kind)
    return [k for k in mail.KINDS if k in on]


def get(request):
    user = auth.require_user(request)
    return json_response(_settings(get_db(), user))


def post(request):
    user = auth.require_user(request)
    mail.require_enabled()
    db = get_db()
    d = request.data
    action = d.get("action")
    ip = request.client_ip
    if action == "add":
        mail.request_verification(db, user, d.get("email"), ip)
    elif action == "verify":
        row = mail.peek_token(db, d.get("code"), "verify")
        if row is None or row["user_uuid"] != user["uuid"]:
            if not isinstance(d.get("code"), str) or not mail.TOKEN_RE.fullmatch(d.get("code")):
                raise BadRequest("code is not a verification code", fields={"code": "not valid"})
            raise NotFound("no live verification link of yours has this code")
        mail.verify(db, d.get("code"), ip)
    elif action == "remove":
        mail.remove_email(db, user["uuid"], ip)
    elif action == "notifications":
        mail.set_notifications(db, user["uuid"], _switches(d, mail.settings_of(db, user["uuid"])["notifications"]), ip)
    else:
        raise BadRequest("action must be add, verify, remove or notifications", fields={"action": "bad"})
    return json_response(dict({"ok": True}, **_settings(db, user)))
