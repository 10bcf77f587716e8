"""HTML of the account forms (login, registration, logout confirmation), inside the
site layout (lib.web.standalone, which does no auth lookups). Every value is escaped
by lib.templates; each form carries its CSRF token.
"""
from lib import csrf, session, web
from lib.templates import escape, render_string, safe

_LOGIN = """<form method="post" action="/login.php" class="card">
{{ hidden('csrf_token', csrf_token) }}{% if next_url %}{{ hidden('next', next_url) }}{% endif %}
{{ field('username', 'Username', form=form, errors=errors, required=True, maxlength=16, autocomplete='username', autofocus=True) }}
{{ field('password', 'Password', errors=errors, type='password', required=True, autocomplete='current-password') }}
{{ field('otp', 'Two-factor code (if you turned it on)', errors=errors, maxlength=64, autocomplete='one-time-code', inputmode='numeric', spellcheck='false', help='the 6 digits of your app, or one of your recovery codes') }}
<button type="submit">Log in</button>
</form>
<p>No account yet? <a href="/register.php">Register</a>. Forgot your password? <a href="/recover.php">Use a recovery code</a>.</p>
"""

_RECOVER = """<form method="post" action="/recover.php" class="card" id="recover-form">
{{ hidden('csrf_token', csrf_token) }}
{{ field('username', 'Username', form=form, errors=errors, required=True, maxlength=16, autocomplete='username', autofocus=True) }}
{{ field('recovery_code', 'Recovery code', errors=errors, required=True, maxlength=64, autocomplete='off', spellcheck='false', help='one of the codes you saved at registration, e.g. ABCD-EFGH-IJKL-MNOP') }}
{{ field('new_password', 'New password', errors=errors, type='password', required=True, minlength=8, autocomplete='new-password', help='at least 8 characters; all your sessions are logged out') }}
<button type="submit">Set the new password</button>
</form>
<p>No codes left? Ask staff for a one-time reset link.</p>
"""

_RESET = """<form method="post" action="/reset.php" class="card" id="reset-form">
{{ hidden('csrf_token', csrf_token) }}{{ hidden('reset_token', token) }}
<p>Choose a new password for <strong>{{ username }}</strong>. This link works once.</p>
{{ field('new_password', 'New password', errors=errors, type='password', required=True, minlength=8, autocomplete='new-password', help='at least 8 characters; all your sessions are logged out') }}
<button type="submit">Set the new password</button>
</form>
"""

_CODES = """<div class="card" id="recovery-codes">
<p><strong>Save these recovery codes now: they are shown only this once.</strong>
Each works once, to reset your password at <a href="/recover.php">/recover.php</a> or in place of a
two-factor code at login.</p>
<ol class="codes">{% for c in codes %}<li><code>{{ c }}</code></li>{% endfor %}</ol>
<p><a href="{{ next_url }}" id="codes-continue">I saved them: continue</a></p>
</div>
"""

_REGISTER = """<form method="post" action="/register.php" class="card">
{{ hidden('csrf_token', csrf_token) }}
{{ field('username', 'Username', form=form, errors=errors, required=True, maxlength=16, pattern='[A-Za-z0-9_.\\\\-]{1,16}', autocomplete='username', help='1-16 letters, digits, _ - or .', autofocus=True) }}
{{ field('password', 'Password', errors=errors, type='password', required=True, minlength=8, autocomplete='new-password', help='at least 8 characters') }}
{{ field('invite', 'Invited by (optional)', form=form, errors=errors, maxlength=16, help="the username of the member who invited you") }}
<button type="submit">Register</button>
</form>
<p>Already registered? <a href="/login.php">Log in</a>.</p>
"""

_LOGOUT = """<form method="post" action="/logout.php" class="card">
{{ hidden('csrf_token', csrf_token) }}
<p>Logged in as <strong>{{ username }}</strong>.</p>
<button type="submit">Log out</button>
</form>
<form method="post" action="/logout.php" class="card" id="logout-everywhere-form">
{{ hidden('csrf_token', csrf_token) }}{{ hidden('everywhere', '1') }}
<p>Lost a device or leaked a key? This ends all your sessions and revokes all your API keys.</p>
<button type="submit" class="secondary">Log out everywhere</button>
</form>
"""


def page(title, content, error=None, status=200, headers=None):
    return web.standalone(title, safe(content), error, status, headers)


def show(request, render, *args, **kw):
    """The account form `render(csrf_token, ...)` for a visitor without a session, with the
    CSRF cookie its token needs."""
    return csrf.attach_pre_cookie(request, render(csrf.pre_token(request), *args, **kw))


def posted(db, request):
    """The start of an account form's POST: (the token of the visitor's session if any, for
    session.log_in to replace; the form's fields). 400/413 for a body that cannot be read."""
    old_token = session.load_request(db, request)
    return old_token, request.data


def refused(request, render, error, **kw):
    """The answer to an account form's POST that failed with `error` (an HttpError): for a
    browser the form `render` again (the fields as sent, the message, field errors, status and
    headers); any other client gets the error itself."""
    if not request.wants_html:
        raise error
    resp = render(csrf.pre_token(request), form=request.data, errors=error.fields, error=error.message,
                  status=error.status, **kw)
    resp.headers.extend(error.headers)
    return csrf.attach_pre_cookie(request, resp)


def _form_values(form):
    return {k: v for k, v in (form or {}).items() if k in ("username", "invite") and isinstance(v, str)}


def login_page(csrf_token, form=None, errors=None, error=None, next_url=None, status=200):
    content = render_string(_LOGIN, csrf_token=csrf_token, form=_form_values(form), errors=errors or {},
                            next_url=next_url)
    return page("Log in", content, error, status)


def register_page(csrf_token, form=None, errors=None, error=None, status=200):
    content = render_string(_REGISTER, csrf_token=csrf_token, form=_form_values(form), errors=errors or {})
    return page("Register", content, error, status)


def recover_page(csrf_token, form=None, errors=None, error=None, status=200):
    content = render_string(_RECOVER, csrf_token=csrf_token, form=_form_values(form), errors=errors or {})
    return page("Recover your account", content, error, status)


def reset_page(csrf_token, token, username, errors=None, error=None, status=200):
    content = render_string(_RESET, csrf_token=csrf_token, token=token, username=username, errors=errors or {})
    return page("Reset your password", content, error, status)


def codes_page(codes, next_url, headers=None):
    """The one showing of a new set of recovery codes (never cached)."""
    resp = page("Your recovery codes", render_string(_CODES, codes=codes, next_url=next_url),
                headers=[("Cache-Control", "no-store")] + list(headers or []))
    return resp


def logout_page(csrf_token, username):
    return page("Log out", render_string(_LOGOUT, csrf_token=csrf_token, username=username))


__all__ = ["page", "show", "posted", "refused", "login_page", "register_page", "logout_page", "recover_page", "reset_page", "codes_page",
           "escape"]
