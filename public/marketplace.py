"""GET /marketplace.php : items with search `q`, `category`, `sort` (newest, price_asc,
price_desc, rating) and pagination; each card shows the first image, the price and the rating."""
from lib import catalog, catalog_cache, item_cards, pricing, web
from lib.http import BadRequest, HttpError

SORT_LABELS = [("newest", "Newest"), ("price_asc", "Price: low to high"), ("price_desc", "Price: high to low"),
               ("rating", "Best rated")]


def get(request):
    return catalog_cache.serve(request, _get, pricing.rates_valid_until)


def _get(request, db):
    q = request.arg("q")
    raw_category = request.arg("category") or request.arg("category_id")
    try:
        category_id = catalog.parse_category_id(db, raw_category)
        if q is not None and len(q) > 100:
            raise BadRequest("the search text is longer than 100 characters", fields={"q": "at most 100 characters"})
        sort = catalog.parse_sort(request.arg("sort"))
    except HttpError as e:
        return web.form_error(request, e, "marketplace.html", "Marketplace", q=None, category_id=None,
                              categories=catalog.category_tree(db), count=0, sort="newest",
                              sort_labels=SORT_LABELS,
                              pager=web.Pager(request.path, {}, 20, 0, []), nav_active="marketplace",
                              form=request.query)
    pager = web.pager(request, lambda limit, offset: catalog.list_items(
        db, q=q, category_id=category_id, limit=limit, offset=offset, sort=sort))
    item_cards.add_card_facts(db, pager.rows)
    count = catalog.count_items(db, q=q, category_id=category_id) if (q or category_id) else None
    return web.page(request, "marketplace.html", "Marketplace", q=q, category_id=category_id,
                    categories=catalog.category_tree(db), count=count, pager=pager, sort=sort,
                    sort_labels=SORT_LABELS, nav_active="marketplace")
