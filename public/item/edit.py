"""GET/POST /item/edit.php : a vendor's items, packages and their USD prices.

GET                 my stores' items (all, hidden ones too)
GET ?store_uuid=    the form for a new item in that store
GET ?uuid=ITEM      edit the item, its packages and prices; add a package
POST form=item_create (store_uuid, name, description, category_id)
     form=item_update (uuid, name, description, category_id, active)
     form=package_create (item_uuid, name, description, price_usd)
     form=package_update (package_uuid, name, description, price_usd, active)
     form=image_upload (multipart: item_uuid, image), image_remove (image_uuid),
          image_first (image_uuid: the card's image)
Everything goes through lib.catalog and lib.images (as /api/items.php, /api/packages.php
and /api/item-images.php).
"""
from lib import catalog, images, web
from lib.db import get_db
from lib.http import BadRequest, Forbidden, NotFound

TITLE = "Items"


def _context(db, user, request, form_name=None):
    stores = catalog.require_my_stores(db, user, "you have no store yet: open one at /create-store.php")
    from lib import agreement
    for s in stores:
        s["needs_agreement"] = agreement.store_needs_acceptance(db, s["uuid"])
    ctx = {"categories": catalog.category_tree(db), "form_name": form_name, "nav_active": "items"}
    item_uuid = request.arg("uuid")
    store_uuid = request.arg("store_uuid")
    if item_uuid:
        item = catalog.get_item(db, item_uuid, user)
        if catalog.member_role(db, user, item["store_uuid"]) is None:
            raise Forbidden("you are not a member of this item's store")
        packages = catalog.list_packages(db, item["uuid"], user, include_inactive=True)
        for p in packages:
            p["history"] = catalog.price_history(db, p["uuid"])
        ctx.update(mode="edit", item=item, packages=packages, images=images.list_images(db, item["uuid"]),
                   max_images=images.MAX_IMAGES)
    elif store_uuid:
        store = next((s for s in stores if s["uuid"] == store_uuid), None)
        if store is None:
            raise NotFound("no such store among yours")
        ctx.update(mode="new", store=store)
    else:
        for s in stores:
            s["items"] = catalog.member_items(db, user, s["uuid"], limit=200)
        ctx.update(mode="list", stores=stores)
    return ctx


def _page(request, db, user, error=None):
    ctx = _context(db, user, request, form_name=request.data.get("form") if error else None)
    return web.form_page(request, "item/edit.html", TITLE, error, **ctx)


def get(request):
    return _page(request, get_db(), web.login(request))


def _active(data):
    if "active_present" not in data:
        return catalog.UNCHANGED
    return "1" if data.get("active") else "0"


def _edited(data, **more):
    """The changes of the fields an item and a package share, as their edit forms send them."""
    return dict(name=data.get("name"), description=data.get("description", ""), active=_active(data), **more)


def _values(data, *names):
    return [data.get(name) for name in names]


def _to_item(request, item_uuid, message, anchor=""):
    return web.see_other(web.url("/item/edit.php", uuid=item_uuid) + anchor, message, request)


def _image_upload(request, db, user):
    upload = request.files.get("image")
    if upload is None or not upload["data"]:
        raise BadRequest("image: choose a JPEG, PNG or WebP file", fields={"image": "required"})
    image = images.add_image(db, user, request.data.get("item_uuid"), upload["data"])
    return _to_item(request, image["item_uuid"], "Image added.", "#images")


def _image_remove(request, db, user):
    images.remove_image(db, user, request.data.get("image_uuid"))
    return web.see_other(web.same_page(request) + "#images", "Image removed.", request)


def _image_first(request, db, user):
    images.move_first(db, user, request.data.get("image_uuid"))
    return web.see_other(web.same_page(request) + "#images", "That image now shows on the card.", request)


def _item_create(request, db, user):
    data = request.data
    item = catalog.create_item(db, user, *_values(data, "store_uuid", "name", "description", "category_id"))
    return _to_item(request, item["uuid"], f"Item {item['name']} created. Now add its packages.")


def _package_create(request, db, user):
    data = request.data
    package = catalog.create_package(db, user, *_values(data, "item_uuid", "name", "description", "price_usd"))
    return _to_item(request, package["item_uuid"], f"Package {package['name']} added at ${package['price_usd']}.")


def _item_update(request, db, user):
    data = request.data
    item = catalog.update_item(db, user, data.get("uuid"), **_edited(data, category_id=data.get("category_id", "")))
    return _to_item(request, item["uuid"], "Item saved.")


def _package_update(request, db, user):
    data = request.data
    package = catalog.update_package(db, user, data.get("package_uuid"),
                                     **_edited(data, price_usd=data.get("price_usd")))
    return _to_item(request, package["item_uuid"], "Package saved.")


FORMS = {"item_create": _item_create, "item_update": _item_update, "package_create": _package_create,
         "package_update": _package_update, "image_upload": _image_upload, "image_remove": _image_remove,
         "image_first": _image_first}


def post(request):
    request.allow_upload()
    return web.act(request, web.login(request), FORMS, _page, field="form", passes=lambda e: e.status in (403, 404))
