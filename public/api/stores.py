"""GET/POST /api/stores.php

GET  -> {"stores": [{uuid, storename, description, tier, vendorship_agreed_at, created_at,
        updated_at, rating {average, count}}], "limit", "offset"} (suspended stores are hidden);
        ?uuid= -> {"store": {...}, "warnings": [{id, reason, created_at}]} (the staff warnings shown
        on the store page; members and staff also see payout_address, suspended, members);
        ?mine=1 (auth) -> the stores I am a member of.
POST storename (1-16, unique case-insensitively: 409), description, vendorship_agree=1
     -> {"ok": true, "uuid", "store"}; the creator becomes the owner and a vendor.
"""
from lib import auth, catalog, catalog_cache, reviews, store_warnings
from lib.db import get_db
from lib.http import json_response


def get(request):
    return catalog_cache.serve(request, _get)


def _get(request, db):
    uuid = request.arg("uuid")
    if uuid is not None:
        store = catalog.get_store(db, uuid, auth.optional_user(request))
        store["rating"] = reviews.rating(db, store_uuid=store["uuid"])
        return json_response({"store": store, "warnings": store_warnings.active(db, store["uuid"])})
    if catalog.truthy(request.arg("mine")):
        user = auth.require_user(request)
        return json_response({"stores": catalog.my_stores(db, user)})
    limit, offset = request.page()
    stores = reviews.add_ratings(db, catalog.list_stores(db, limit, offset), column="store_uuid")
    return json_response({"stores": stores, "limit": limit,
                          "offset": offset})


def post(request):
    user = auth.require_user(request)
    store = catalog.create_store(get_db(), user, request.data.get("storename"),
                                 request.data.get("description"), request.data.get("vendorship_agree"))
    return json_response({"ok": True, "uuid": store["uuid"], "store": store})
