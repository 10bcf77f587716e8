"""GET/POST /admin/config.php (admin)

GET  -> the original's flat object {name: value, ...} (every config key at the top level),
     plus beside them (names that are never config keys) "config": {name: value} and
     "keys": [{name, value, default, kind, description}].
POST known keys only, each validated (400 names the bad key; nothing is written unless
     every key is valid) -> the same body plus "ok": true and "changed": {name: value}.
"""
from lib import admin_pages, auth, config
from lib.db import get_db
from lib.http import BadRequest, json_response

IGNORED = ("csrf_token",)


EXTRA = ("config", "keys", "ok", "changed")   # the fields beside the flat keys
assert not set(EXTRA) & set(config.KEYS), "a config key would collide with a response field"


def _body(db):
    values = config.all_values(db)
    keys = [{"name": name, "value": values[name], "default": spec[1], "kind": spec[0],
             "description": spec[2]} for name, spec in config.KEYS.items()]
    return dict(values, config=values, keys=keys)


def get(request):
    if request.wants_html:  # the HTML view for browsers (lib/admin_pages.py)
        return admin_pages.config_page(request)
    auth.require_role(request, "admin")
    return json_response(_body(get_db()))


def post(request):
    return admin_pages.form_post(request, _post, "config")


def _post(request):
    admin = auth.require_role(request, "admin")
    db = get_db()
    values = {k: v for k, v in request.data.items() if k not in IGNORED}
    if not values:
        raise BadRequest("no config keys given; known keys: " + ", ".join(config.KEYS))
    for name, value in values.items():
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise BadRequest(f"invalid value for {name}: give a string", fields={name: "bad"})
    try:
        changed = config.set_values(db, values, by=admin["uuid"], ip=request.client_ip)
    except config.ConfigError as e:
        raise BadRequest(str(e))
    return json_response(dict(_body(db), ok=True, changed=changed))
