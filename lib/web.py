"""Glue between the HTML pages and the rest of lib/: the layout, flash messages,
forms with CSRF tokens and per-field errors, pagination.

A page script stays thin:

    from lib import web

    def get(request):
        user = web.login(request)                   # 303 to /login.php for browsers
        return web.page(request, "settings_user.html", "Settings", form=user, errors={})

    def post(request):
        user = web.login(request)                   # also checks the CSRF token
        try:
            users.do_something(db, user, request.data)
        except HttpError as e:
            return web.form_error(request, e, "settings_user.html", "Settings", form=request.data)
        web.flash(request, "Saved.")
        return web.see_other("/settings/user.php")

A page whose form has several buttons names each change in a table and lets act() run
the chosen one (submit() for a single change): the flash and 303 on success, the page
again through `show` after an HttpError:

    def _page(request, db, user, error=None):
        return web.form_page(request, "staff/stores.html", "Stores", error, ...)

    def _suspend(request, db, user):
        catalog.set_store_suspended(db, user, request.data.get("store_uuid"), True)
        return "Store suspended."                   # the flash message

    def post(request):
        return web.act(request, web.staff(request), {"suspend": _suspend, ...}, _page)

Authorization is the same as the API's: lib/auth for who is asking, the lib/
modules (catalog, orders, disputes, ...) for what they may do.
"""
import html
import logging
import urllib.parse

from lib import auth, chains, csrf as csrfmod, env, session, validate
from lib.db import get_db
from lib.http import (REASONS, BadRequest, HttpError, Response, html_response, json_response, redirect,
                      text_response)
from lib.templates import DEFAULT_PAGE, Markup, Pager, escape, render  # noqa: F401


def site_name():
    return env.get("SITE_NAME", "") or "Marketplace"


def user(request):
    """The logged-in user or None (API keys count too)."""
    return auth.optional_user(request)


def login(request):
    """The user, else 303 to the login form (browsers) or 401. Checks CSRF on POST."""
    return auth.require_user(request)


def role(request, *roles):
    """The user if their role is one of `roles`; 403 otherwise (303 to login when anonymous)."""
    return auth.require_role(request, *roles)


def staff(request):
    return role(request, "staff", "admin")


def csrf_token(request):
    return auth.csrf_token(request) or ""


def csrf_input(request):
    token = csrf_token(request)
    if not token:
        return Markup("")
    return Markup(f'<input type="hidden" name="csrf_token" value="{escape(token)}">')


def flash(request, message):
    """Show `message` on the next page this session sees."""
    auth.optional_user(request)
    if request.session is not None:
        session.set_flash(get_db(), request.session, message)


def _pop_flash(request):
    if request.session is None:
        return None
    return session.pop_flash(get_db(), request.session)


def _has_store(db, user_row):
    if not user_row or user_row.get("role") == "customer":
        return False
    return db.value("SELECT 1 FROM store_users WHERE user_uuid = ? LIMIT 1", (user_row["uuid"],)) is not None


def _unread_notifications(db, user_row):
    """The navigation's badge: one indexed count, only for a signed-in user."""
    if not user_row:
        return 0
    from lib import notifications
    return notifications.unread_count(db, user_row["uuid"])


def page(request, template, title, status=200, headers=None, **ctx):
    """Render templates/<template> inside the layout; returns an HTML Response."""
    current = auth.optional_user(request)
    db = get_db()
    base = {
        "request": request, "user": current, "title": title, "site_name": site_name(),
        "csrf_input": csrf_input(request), "csrf_token": csrf_token(request),
        "errors": {}, "form": {}, "error": None,
    }
    base.update(ctx)
    content = render(template, **base)
    layout = {
        "title": title, "site_name": site_name(), "user": current,
        "has_store": _has_store(db, current), "csrf_input": base["csrf_input"],
        "flash": _pop_flash(request), "error": base.get("error"), "content": content,
        "nav_active": ctx.get("nav_active"), "scripts": ctx.get("scripts", []),
        "refresh": ctx.get("refresh"),
        "unread_notifications": _unread_notifications(db, current),
    }
    return html_response(render("layout.html", **layout), status, headers)


def form_error(request, error, template, title, **ctx):
    """Re-show a form after `error` (an HttpError): its status, message and field errors."""
    ctx.setdefault("form", dict(request.data) if request.method != "GET" else {})
    ctx["errors"] = dict(error.fields or {})
    ctx["error"] = error.message
    return page(request, template, title, status=error.status, headers=error.headers or None, **ctx)


def form_page(request, template, title, error=None, **ctx):
    """The page of a form; after `error` (an HttpError) the form again, as form_error shows it."""
    if error is None:
        return page(request, template, title, **ctx)
    return form_error(request, error, template, title, **ctx)


def submit(request, user, change, show, passes=None, location=None):
    """The POST of a form: change(request, db, user) makes the change and returns the flash
    message (then 303 to `location`, by default back to the same page) or a Response to answer
    as it is. An HttpError from it is answered by show(request, db, user, error), the form
    again with the message, unless passes(error): then it is raised (the plain error page, or
    JSON for an API client)."""
    db = get_db()
    try:
        outcome = change(request, db, user)
    except HttpError as e:
        if passes is not None and passes(e):
            raise
        return show(request, db, user, e)
    if isinstance(outcome, Response):
        return outcome
    return see_other(location or same_page(request), outcome, request)


def act(request, user, handlers, show, field="action", passes=None, location=None):
    """submit() for a form whose `field` names one of `handlers` (each a change)."""
    def change(request, db, user):
        return validate.choice(request.data, field, handlers)(request, db, user)
    return submit(request, user, change, show, passes, location)


def see_other(location, message=None, request=None):
    """303 to `location` (after a successful POST), optionally flashing `message`."""
    if message and request is not None:
        flash(request, message)
    return redirect(location, 303)


# A Location longer than this (built from a long query string) does not fit nginx's
# uwsgi response buffer (503); such a query is dropped, not echoed.
MAX_ECHOED_QUERY = 500


def same_page(request, path=None):
    """`path` (default the request's) with the request's query string when it is short."""
    query = request.query_string
    path = request.path if path is None else path
    return path + ("?" + query if query and len(query) <= MAX_ECHOED_QUERY else "")


def pager(request, fetch, limit=DEFAULT_PAGE):
    """Run `fetch(limit + 1, offset)` for the page the query asks for; return a Pager."""
    offset = request.int_arg("offset", 0, 0, 10_000_000)
    limit = request.int_arg("limit", limit, 1, 200)
    rows = fetch(limit + 1, offset)
    return Pager(request.path, request.query, limit, offset, rows)


def url(path, **params):
    items = [(k, v) for k, v in params.items() if v is not None and v != ""]
    return path + ("?" + urllib.parse.urlencode(items) if items else "")


# -- template helpers about chains -------------------------------------------------

def chain_name(chain_id):
    """The chain's human name ('Ethereum', 'Local dev chain') or 'chain N'."""
    try:
        return chains.get_chain(chain_id).name
    except Exception:
        return f"chain {chain_id}"


def _tx_url(chain_id, tx_hash):
    try:
        return chains.explorer_tx_url(chain_id, tx_hash)
    except Exception:
        return None


def _address_url(chain_id, address):
    try:
        return chains.explorer_address_url(chain_id, address)
    except Exception:
        return None


from lib import templates as _templates  # noqa: E402

_templates.register("chain_name", chain_name)
_templates.register("tx_url", _tx_url)
_templates.register("address_url", _address_url)


# -- pages rendered without the usual request flow -------------------------------

def standalone(title, content, error=None, status=200, headers=None, request=None, heading=True):
    """The layout around `content` (Markup) without touching auth or the database:
    for the account forms and error pages. Uses request.user/session only if the
    request was already authenticated."""
    current = getattr(request, "user", None) if request is not None else None
    session_row = getattr(request, "session", None) if request is not None else None
    token_input = Markup("")
    if current and session_row:
        token_input = Markup(f'<input type="hidden" name="csrf_token" '
                             f'value="{escape(csrfmod.token_for_session(session_row))}">')
    body = Markup(f"<h1>{escape(title)}</h1>") + Markup(content) if heading else Markup(content)
    layout = {"title": title, "site_name": site_name(), "user": current, "has_store": False,
              "csrf_input": token_input, "flash": None, "error": error, "content": body,
              "nav_active": None, "scripts": [], "refresh": None, "unread_notifications": 0}
    return html_response(render("layout.html", **layout), status, headers)


def error_page(request, status, message):
    """The HTML error page in the site's layout (error_response uses it for browsers)."""
    title = f"{status} {REASONS.get(status, '')}".strip()
    content = Markup(f'<p class="error-box" role="alert">{escape(message)}</p>'
                     '<p><a href="/">Home</a> · <a href="/marketplace.php">Marketplace</a></p>')
    return standalone(title, content, status=status, request=request)


def token_choice(data):
    """(chain_id, currency) from a form's `token` ("CHAIN_ID:SYMBOL") or its `chain_id` and
    `currency` fields (as the API takes them); 400 for anything else."""
    token = data.get("token")
    if token is None or token == "":
        return data.get("chain_id"), data.get("currency")
    if not isinstance(token, str) or ":" not in token:
        raise BadRequest("token must look like CHAIN_ID:SYMBOL, e.g. 1:ETH", fields={"token": "choose a token"})
    chain_id, _, currency = token.partition(":")
    return chain_id, currency


log = logging.getLogger("web")


def error_response(request, status, message, headers=None):
    """An error in the form the client reads: JSON for the API (and when the request could
    not be parsed), the site's error page for browsers, plain text otherwise."""
    if request is None or request.is_api:
        resp = json_response({"error": message}, status)
    elif request.wants_html:
        resp = _html_error(request, status, message)
    else:
        resp = text_response(message + "\n", status)
    resp.headers.extend(headers or [])
    return resp


def _html_error(request, status, message):
    try:
        return error_page(request, status, message)
    except Exception:  # the error page itself must never fail: a plain page instead
        log.exception("error page failed")
        title = html.escape(f"{status} {REASONS.get(status, '')}")
        return html_response(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<link rel='stylesheet' href='/static/style.css'></head><body><main>"
            f"<h1>{title}</h1><p class='error'>{html.escape(message)}</p>"
            f"<p><a href='/'>Home</a></p></main></body></html>", status)
