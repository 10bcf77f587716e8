"""GET/POST /api/categories.php : the item categories as a tree (lib.catalog).

GET (anyone) -> {"categories": [{"id", "name", "parent_id", "depth", "path", "items", "children"}]},
depth-first (a parent before its subcategories). POST (staff) `action` = add (`name`,
optional `parent_id`) | rename (`category_id`, `name`) | move (`category_id`, `parent_id`,
empty for the top level) | remove (`category_id`, only when no item and no subcategory
uses it: 409 otherwise) -> {"ok": true, "action", "category": {"id", "name", "parent_id"},
"categories": [...]}. Audited. The page is /staff/categories.php.
"""
from lib import auth, catalog
from lib.db import get_db
from lib.http import BadRequest, json_response

ACTIONS = {"add": lambda db, user, d, ip: catalog.add_category(db, user, d.get("name"), d.get("parent_id"), ip=ip),
           "rename": lambda db, user, d, ip: catalog.rename_category(db, user, d.get("category_id"), d.get("name"),
                                                                     ip=ip),
           "move": lambda db, user, d, ip: catalog.move_category(db, user, d.get("category_id"), d.get("parent_id"),
                                                                 ip=ip),
           "remove": lambda db, user, d, ip: catalog.remove_category(db, user, d.get("category_id"), ip=ip)}


def get(request):
    auth.optional_user(request)     # an invalid key is 401 here too
    return json_response({"categories": catalog.category_rows(get_db())})


def post(request):
    user = auth.require_user(request)
    catalog.require_staff(user)
    db = get_db()
    action = request.data.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise BadRequest("action must be add, rename, move or remove", fields={"action": "bad"})
    row = ACTIONS[action](db, user, request.data, request.client_ip)
    return json_response({"ok": True, "action": action,
                          "category": {k: row[k] for k in ("id", "name", "parent_id")},
                          "categories": catalog.category_rows(db)})
