"""GET / : the home page for browsers, `OK` for health checks of the original."""
from lib import catalog, replica, web
from lib.http import text_response


def get(request):
    if not request.wants_html:
        return text_response("OK")
    db = replica.read_db(request)
    return web.page(request, "index.html", "Home", items=catalog.list_items(db, limit=8),
                    categories=catalog.category_tree(db))
