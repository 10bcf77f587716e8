"""HTML views of the admin scripts (/admin/config.php, /admin/tokens.php,
/admin/tokens-remove.php, /admin/users.php) for browsers.

Those scripts answer JSON; when the client asks for text/html they call in here:
GET renders the page, POST runs the script's own JSON handler (so the rules are exactly
the API's) and then redirects back with a flash message, or re-renders the page with the
error and its status. Every page function checks the admin role first.
"""
from lib import auth, chains, config, tokens, users, web
from lib.db import get_db
from lib.http import HttpError, Redirect


def require_admin(request):
    if auth.optional_user(request) is None and request.method == "GET":
        raise Redirect(auth.login_url(request))
    return auth.require_role(request, "admin")


def config_page(request, status=200, error=None, form=None, errors=None):
    require_admin(request)
    db = get_db()
    values = config.all_values(db)
    keys = [{"name": name, "value": values[name], "default": spec[1], "kind": spec[0], "description": spec[2]}
            for name, spec in config.KEYS.items()]
    return web.page(request, "admin/config.html", "Configuration", status=status, error=error,
                    keys=keys, form=form or values, errors=errors or {}, nav_active="admin", admin_tab="config")


def tokens_page(request, status=200, error=None, form=None, errors=None):
    require_admin(request)
    db = get_db()
    chain_options = [(c, f"{chains.get_chain(c).name} ({c})") for c in chains.supported_chain_ids(tokens.allow_dev())]
    return web.page(request, "admin/tokens.html", "Tokens", status=status, error=error,
                    tokens=tokens.list_tokens(db), chain_options=chain_options, form=form or {},
                    errors=errors or {}, nav_active="admin", admin_tab="tokens")


def users_page(request, status=200, error=None, form=None, errors=None):
    require_admin(request)
    db = get_db()
    q = request.arg("q")
    if q is not None and len(q) > 16:
        status, error, q = 400, "the search text is longer than 16 characters", None
    pager = web.pager(request, lambda limit, offset: users.list_users(db, limit, offset, q))
    return web.page(request, "admin/users.html", "Users", status=status, error=error, pager=pager, q=q,
                    roles=users.ROLES,
                    form=form or {}, errors=errors or {}, nav_active="admin", admin_tab="users")


PAGES = {"config": (config_page, "/admin/config.php", "Configuration saved."),
         "tokens": (tokens_page, "/admin/tokens.php", "Token added: cron verifies it on chain before buyers can use it."),
         "tokens_remove": (tokens_page, "/admin/tokens.php", "Token removed."),
         "users": (users_page, "/admin/users.php", "User updated.")}


def form_post(request, handler, which):
    """The POST of an admin script: its JSON `handler(request)` answers an API client; for a
    browser it runs the same handler, then 303 back with a flash, else the page with the error."""
    if not request.wants_html:
        return handler(request)
    page_func, back, message = PAGES[which]
    require_admin(request)  # 401/403 (JSON, as every admin path) before anything else
    try:
        handler(request)
    except HttpError as e:
        if e.status in (401, 403):
            raise
        return page_func(request, status=e.status, error=e.message, form=dict(request.data), errors=e.fields)
    web.flash(request, message)
    return web.see_other(web.same_page(request, back) if which == "users" else back)
