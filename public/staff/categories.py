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
from lib.http import BadRequest, HttpError, json_response

TITLE = "Categories"


def _page(request, db, status=200, error=None, errors=None):
    return web.page(request, "staff/categories.html", TITLE, status=status, error=error, errors=errors or {},
                    form=dict(request.data) if request.method == "POST" else {},
                    tree=catalog.category_tree(db), staff_tab="categories", nav_active="staff")


def get(request):
    web.staff(request)
    if not request.wants_html:
        return json_response({"categories": catalog.category_rows(get_db())})
    return _page(request, get_db())


def post(request):
    user = web.staff(request)
    db = get_db()
    data = request.data
    action = data.get("action")
    ip = request.client_ip
    try:
        if action == "add":
            row = catalog.add_category(db, user, data.get("name"), data.get("parent_id"), ip=ip)
            message = f"Category {row['name']} added."
        elif action == "rename":
            row = catalog.rename_category(db, user, data.get("category_id"), data.get("name"), ip=ip)
            message = f"Category renamed to {row['name']}."
        elif action == "move":
            row = catalog.move_category(db, user, data.get("category_id"), data.get("parent_id"), ip=ip)
            message = f"Category {row['name']} moved."
        elif action == "remove":
            row = catalog.remove_category(db, user, data.get("category_id"), ip=ip)
            message = f"Category {row['name']} removed."
        else:
            raise BadRequest("action must be add, rename, move or remove", fields={"action": "bad"})
    except HttpError as e:
        if not request.wants_html:
            raise
        return _page(request, db, status=e.status, error=e.message, errors=e.fields)
    if not request.wants_html:
        return json_response({"ok": True, "action": action,
                              "category": {k: row[k] for k in ("id", "name", "parent_id")},
                              "categories": catalog.category_rows(db)})
    web.flash(request, message)
    return web.see_other(web.same_page(request))
