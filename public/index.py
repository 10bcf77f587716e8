"""GET / : the home page for browsers, `OK` for health checks of the original."""
from lib import catalog, item_cards, replica, web
from lib.http import text_response


def get(request):
    if not request.wants_html:
        return text_response("OK")
    db = replica.read_db(request)
    items = item_cards.add_card_facts(db, catalog.list_items(db, limit=8))
    return web.page(request, "index.html", "Home", items=items,
                    categories=catalog.category_tree(db))
