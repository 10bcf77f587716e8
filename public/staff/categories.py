"""GET/POST /staff/categories.php : the item categories as a tree; staff add, rename,
move and remove them (lib.catalog).

POST `action` = add (`name`, optional `parent_id`) | rename (`category_id`, `name`) |
move (`category_id`, `parent_id`, empty for the top level) | remove (`category_id`).
400 bad input naming the field (nothing changes), 409 a name taken, or a category that
items or subcategories still use. Clients that do not ask for HTML get JSON: GET
{"categories": [{"id", "name", "parent_id", "depth", "path", "items", "children"}]},
POST {"ok": true, "action", "category": {"id", "name", "parent_id"}, "categories": [...]}
(the JSON API of the same is /api/categories.php).
"""
from lib import catalog, web
from lib.db import get_db
from lib.http import json_response

TITLE = "Categories"


def _page(request, db, user=None, error=None):
    return web.form_page(request, "staff/categories.html", TITLE, error,
                         tree=catalog.category_tree(db), staff_tab="categories", nav_active="staff")


def _done(request, db, action, row, message):
    """The flash message for a browser; the JSON answer for any other client."""
    if request.wants_html:
        return message
    return json_response({"ok": True, "action": action,
                          "category": {k: row[k] for k in ("id", "name", "parent_id")},
                          "categories": catalog.category_rows(db)})


def _add(request, db, user):
    data = request.data
    row = catalog.add_category(db, user, data.get("name"), data.get("parent_id"), ip=request.client_ip)
    return _done(request, db, "add", row, f"Category {row['name']} added.")


def _rename(request, db, user):
    data = request.data
    row = catalog.rename_category(db, user, data.get("category_id"), data.get("name"), ip=request.client_ip)
    return _done(request, db, "rename", row, f"Category renamed to {row['name']}.")


def _move(request, db, user):
    data = request.data
    row = catalog.move_category(db, user, data.get("category_id"), data.get("parent_id"), ip=request.client_ip)
    return _done(request, db, "move", row, f"Category {row['name']} moved.")


def _remove(request, db, user):
    row = catalog.remove_category(db, user, request.data.get("category_id"), ip=request.client_ip)
    return _done(request, db, "remove", row, f"Category {row['name']} removed.")


ACTIONS = {"add": _add, "rename": _rename, "move": _move, "remove": _remove}


def get(request):
    user = web.staff(request)
    if not request.wants_html:
        return json_response({"categories": catalog.category_rows(get_db())})
    return _page(request, get_db(), user)


def post(request):
    return web.act(request, web.staff(request), ACTIONS, _page, passes=lambda e: not request.wants_html)
