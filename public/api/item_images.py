"""GET/POST /api/item-images.php

GET  ?item_uuid= -> {"images": [{uuid, position, format, width, height, bytes, url, thumb_url, ...}]}
     (first = the marketplace card's)
POST multipart/form-data: item_uuid, image (a JPEG, PNG or WebP file of at most 5 MB)
     -> {"ok": true, "image": {...}}: re-encoded without metadata, with a thumbnail; at most 5
     images per item (409), store members only
POST action=remove image_uuid            -> {"ok": true, "image": {...}} (the removed image)
POST action=reorder item_uuid, order     (every image uuid of the item once, comma-separated
     or a JSON list, first shown first) -> {"ok": true, "images": [...]}
Anything that is not a valid image is a 400 naming the field, and nothing is stored.
"""
from lib import auth, catalog, images
from lib.db import get_db
from lib.http import BadRequest, json_response


def get(request):
    db = get_db()
    item_uuid = request.arg("item_uuid")
    if not item_uuid:
        raise BadRequest("item_uuid is required", fields={"item_uuid": "required"})
    item = catalog.get_item(db, item_uuid, auth.optional_user(request))
    return json_response({"images": images.list_images(db, item["uuid"])})


def post(request):
    request.allow_upload()
    user = auth.require_user(request)
    db = get_db()
    d = request.data
    action = d.get("action") or "add"
    if action == "add":
        upload = request.files.get("image")
        if upload is None:
            raise BadRequest("image: send the file as multipart/form-data field `image`",
                            fields={"image": "required"})
        return json_response({"ok": True, "image": images.add_image(db, user, d.get("item_uuid"), upload["data"])})
    if action == "remove":
        return json_response({"ok": True, "image": images.remove_image(db, user, d.get("image_uuid"))})
    if action == "reorder":
        return json_response({"ok": True, "images": images.reorder(db, user, d.get("item_uuid"), d.get("order"))})
    raise BadRequest("action must be add, remove or reorder", fields={"action": "add, remove or reorder"})
