"""GET/POST /api/items.php

GET  ?store_uuid= &q= (search name and description) &category_id= &limit= &offset=
     -> {"items": [...], "categories": [{id, name, parent_id}], "limit", "offset"};
     ?uuid= -> {"item": {...}}. Items of suspended stores are hidden.
POST name (1-64), store_uuid, description, category_id (store members only)
     -> {"ok": true, "uuid", "item"}.
"""
from lib import auth, catalog, catalog_cache, pricing
from lib.db import get_db
from lib.http import json_response


def get(request):
    db = get_db()
    return catalog_cache.serve(request, db, lambda: _get(request, db), pricing.rates_valid_until)


def _get(request, db):
    uuid = request.arg("uuid")
    if uuid is not None:
        return json_response({"item": catalog.get_item(db, uuid, auth.optional_user(request))})
    limit, offset = request.page()
    category_id = catalog.parse_category_id(db, request.arg("category_id"))
    items = catalog.list_items(db, q=request.arg("q"), category_id=category_id,
                               store_uuid=request.arg("store_uuid"), limit=limit, offset=offset)
    return json_response({"items": items, "categories": catalog.list_categories(db),
                          "limit": limit, "offset": offset})


def post(request):
    user = auth.require_user(request)
    d = request.data
    item = catalog.create_item(get_db(), user, d.get("store_uuid"), d.get("name"), d.get("description"),
                               d.get("category_id"))
    return json_response({"ok": True, "uuid": item["uuid"], "item": item})
