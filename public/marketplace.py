"""GET /marketplace.php : items with search `q`, `category` and pagination."""
from lib import catalog, web
from lib.db import get_db
from lib.http import BadRequest, HttpError


def get(request):
    db = get_db()
    q = request.arg("q")
    raw_category = request.arg("category") or request.arg("category_id")
    try:
        category_id = catalog.parse_category_id(db, raw_category)
        if q is not None and len(q) > 100:
            raise BadRequest("the search text is longer than 100 characters", fields={"q": "at most 100 characters"})
    except HttpError as e:
        return web.form_error(request, e, "marketplace.html", "Marketplace", q=None, category_id=None,
                              categories=catalog.category_tree(db), count=0,
                              pager=web.Pager(request.path, {}, 20, 0, []), nav_active="marketplace",
                              form=request.query)
    pager = web.pager(request, lambda limit, offset: catalog.list_items(
        db, q=q, category_id=category_id, limit=limit, offset=offset))
    count = catalog.count_items(db, q=q, category_id=category_id) if (q or category_id) else None
    return web.page(request, "marketplace.html", "Marketplace", q=q, category_id=category_id,
                    categories=catalog.category_tree(db), count=count, pager=pager,
                    nav_active="marketplace")
