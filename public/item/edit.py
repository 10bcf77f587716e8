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
from lib.http import BadRequest, Forbidden, HttpError, NotFound

TITLE = "Items"


def _stores(db, user):
    stores = catalog.my_stores(db, user)
    if not stores:
        raise Forbidden("you have no store yet: open one at /create-store.php")
    return stores


def _context(db, user, request, form_name=None):
    stores = _stores(db, user)
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


def get(request):
    user = web.login(request)
    return web.page(request, "item/edit.html", TITLE, **_context(get_db(), user, request))


def _active(data):
    if "active_present" not in data:
        return catalog.UNCHANGED
    return "1" if data.get("active") else "0"


def post(request):
    request.allow_upload()
    user = web.login(request)
    db = get_db()
    data = request.data
    which = data.get("form")
    try:
        if which == "image_upload":
            upload = request.files.get("image")
            if upload is None or not upload["data"]:
                raise BadRequest("image: choose a JPEG, PNG or WebP file", fields={"image": "required"})
            image = images.add_image(db, user, data.get("item_uuid"), upload["data"])
            web.flash(request, "Image added.")
            return web.see_other(web.url("/item/edit.php", uuid=image["item_uuid"]) + "#images")
        if which in ("image_remove", "image_first"):
            change = images.remove_image if which == "image_remove" else images.move_first
            change(db, user, data.get("image_uuid"))
            web.flash(request, "Image removed." if which == "image_remove" else "That image now shows on the card.")
            return web.see_other(web.same_page(request) + "#images")
        if which == "item_create":
            item = catalog.create_item(db, user, data.get("store_uuid"), data.get("name"),
                                       data.get("description"), data.get("category_id"))
            web.flash(request, f"Item {item['name']} created. Now add its packages.")
            return web.see_other(web.url("/item/edit.php", uuid=item["uuid"]))
        if which == "item_update":
            item = catalog.update_item(db, user, data.get("uuid"), name=data.get("name"),
                                       description=data.get("description", ""),
                                       category_id=data.get("category_id", ""), active=_active(data))
            web.flash(request, "Item saved.")
            return web.see_other(web.url("/item/edit.php", uuid=item["uuid"]))
        if which == "package_create":
            package = catalog.create_package(db, user, data.get("item_uuid"), data.get("name"),
                                             data.get("description"), data.get("price_usd"))
            web.flash(request, f"Package {package['name']} added at ${package['price_usd']}.")
            return web.see_other(web.url("/item/edit.php", uuid=package["item_uuid"]))
        if which == "package_update":
            package = catalog.update_package(db, user, data.get("package_uuid"), name=data.get("name"),
                                             description=data.get("description", ""),
                                             price_usd=data.get("price_usd"), active=_active(data))
            web.flash(request, "Package saved.")
            return web.see_other(web.url("/item/edit.php", uuid=package["item_uuid"]))
        raise BadRequest("form must be item_create, item_update, package_create, package_update, "
                             "image_upload, image_remove or image_first")
    except HttpError as e:
        if e.status in (403, 404):
            raise
        ctx = _context(db, user, request, form_name=which)
        return web.form_error(request, e, "item/edit.html", TITLE, **ctx)
