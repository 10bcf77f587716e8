"""GET/POST /recover-email.php : password recovery by an emailed link (lib.mail).

GET                 the form: `email`
POST email          mails a reset link to the account with this verified address, if any;
                    the answer is the same either way (429 over the per-IP rate limit)
GET ?code=          the new-password form (a used, expired or unknown link: 400)
POST code, new_password[, new_password2]
                    sets the password, ends every session of the account, uses up the link
404 when email is not configured (then recover with a recovery code: /recover.php).
CSRF: as /login.php (the form's token; a foreign Origin is refused).
"""
from lib import account_pages, csrf, mail
from lib.db import get_db
from lib.http import BadRequest, HttpError, text_response
from lib.templates import render_string

SENT = "If an account has this verified email address, a link to reset its password is on its way (valid an hour)."

_ASK = """<form method="post" action="/recover-email.php" class="card">
{{ hidden('csrf_token', csrf_token) }}
{{ field('email', 'Email address', form=form, errors=errors, type='email', required=True, maxlength=254, autocomplete='email') }}
<button type="submit">Mail me a reset link</button>
</form>
<p><a href="/login.php">Log in</a></p>
"""

_RESET = """<form method="post" action="/recover-email.php" class="card">
{{ hidden('csrf_token', csrf_token) }}{{ hidden('code', token) }}
{{ field('new_password', 'New password', type='password', errors=errors, minlength=8, required=True, autocomplete='new-password', help='at least 8 characters; every session of your account ends') }}
{{ field('new_password2', 'New password again', type='password', errors=errors, required=True, autocomplete='new-password') }}
<button type="submit">Set the new password</button>
</form>
"""


def _page(request, token=None, form=None, errors=None, error=None, status=200):
    if token:
        content = render_string(_RESET, csrf_token=csrf.pre_token(request), token=token, errors=errors or {})
    else:
        content = render_string(_ASK, csrf_token=csrf.pre_token(request), form=form or {}, errors=errors or {})
    return csrf.attach_pre_cookie(request, account_pages.page("Recover your account", content, error, status))


def get(request):
    mail.require_enabled()
    token = request.arg("code")
    if token is not None and not mail.check_reset_token(get_db(), token):
        raise BadRequest("this link is not valid, was used already or has expired; ask for a new one")
    return _page(request, token=token)


def post(request):
    mail.require_enabled()
    db = get_db()
    data = request.data
    token = data.get("code")
    try:
        csrf.check_login_request(request)
        if token:
            new = data.get("new_password")
            if data.get("new_password2") is not None and data.get("new_password2") != new:
                raise BadRequest("the new passwords do not match", fields={"new_password2": "does not match"})
            mail.reset_password(db, token, new, request.client_ip)
            message = "Password changed: log in with the new password."
        else:
            mail.request_reset(db, data.get("email"), request.client_ip)
            message = SENT
    except HttpError as e:
        if request.wants_html and e.status in (400, 403):
            form = {"email": data.get("email")} if isinstance(data.get("email"), str) else {}
            live = token if isinstance(token, str) and mail.check_reset_token(db, token) else None
            return _page(request, token=live, form=form, errors=e.fields, error=e.message, status=e.status)
        raise
    if not request.wants_html:
        return text_response(message)
    return account_pages.page("Recover your account", render_string(
        '<p>{{ m }}</p><p><a href="/login.php">Log in</a></p>', m=message))
