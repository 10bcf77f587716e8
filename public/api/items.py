"""GET/POST /api/items.php

GET  ?store_uuid= &q= (search name and description) &category_id= &limit= &offset=
     &sort= (newest, price_asc, price_desc, rating)
     -> {"items": [...], "categories": [{id, name, parent_id}], "limit", "offset"};
     ?uuid= -> {"item": {...}}. Items of suspended stores are hidden. Every item has its
     card facts: image (the first, or null), price_from_usd, rating {average, count};
     one item also has all its `images`.
POST name (1-64), store_uuid, description, category_id (store members only)
     -> {"ok": true, "uuid", "item"}.
"""
from lib import auth, catalog, catalog_cache, images, item_cards, pricing
from lib.db import get_db
from lib.http import json_response


def get(request):
    return catalog_cache.serve(request, _get, pricing.rates_valid_until)


def _get(request, db):
    uuid = request.arg("uuid")
    if uuid is not None:
        item = item_cards.add_card_facts(db, [catalog.get_item(db, uuid, auth.optional_user(request))])[0]
        item["images"] = images.list_images(db, item["uuid"])
        return json_response({"item": item})
    limit, offset = request.page()
    category_id = catalog.parse_category_id(db, request.arg("category_id"))
    items = catalog.list_items(db, q=request.arg("q"), category_id=category_id,
                               store_uuid=request.arg("store_uuid"), limit=limit, offset=offset,
                               sort=request.arg("sort"))
    item_cards.add_card_facts(db, items)
    return json_response({"items": items, "categories": catalog.list_categories(db),
                          "limit": limit, "offset": offset})


def post(request):
    user = auth.require_user(request)
    d = request.data
    item = catalog.create_item(get_db(), user, d.get("store_uuid"), d.get("name"), d.get("description"),
                               d.get("category_id"))
    return json_response({"ok": True, "uuid": item["uuid"], "item": item})
