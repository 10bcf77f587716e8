"""Item images: up to 5 per item, uploaded by a member of the item's store.

An upload is decoded with Pillow and re-encoded from its pixels alone, so nothing of the
uploaded file but the picture is kept (EXIF, GPS, ICC profiles, comments, trailing bytes
all go). Only JPEG, PNG and WebP (by content, not by name) are taken; a picture larger
than MAX_PIXELS is refused before its pixels are decoded (decompression bombs).
Files live under MEDIA_DIR (outside the code): items/<uuid>.<ext> and a thumbnail
items/<uuid>.thumb.<ext>, served at /media/... by nginx in production (deploy/nginx.conf)
and by wsgi.py in development. The first image by position is the marketplace card's.

Every write that changes what catalog pages show (add, remove, reorder) is one function here.
"""
import io
import os
import uuid as uuidlib

from PIL import Image, ImageOps, UnidentifiedImageError

from lib import catalog, catalog_cache, env
from lib.db import utc_now
from lib.http import BadRequest, Conflict, HttpError, NotFound

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_IMAGES = 5
MAX_FILE_BYTES = 5 * 1000 * 1000       # "at most 5 MB"
MAX_PIXELS = 25_000_000                 # 100 MB as RGBA; decoding and re-encoding hold about twice that
MAX_SIDE = 12000
THUMB_SIZE = (400, 400)
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}
# Pillow refuses anything above twice this with DecompressionBombError while opening;
# decode() refuses anything above it before loading a pixel.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

IMAGE_COLUMNS = "uuid, item_uuid, position, format, width, height, thumb_width, thumb_height, bytes, created_at"


def media_dir():
    """MEDIA_DIR (absolute, or relative to the project); default var/media."""
    path = env.get("MEDIA_DIR", "") or os.path.join("var", "media")
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def _bad(message, field):
    return BadRequest(f"{field}: {message}", fields={field: message})


def decode(data, field="image"):
    """(image, format) of an uploaded JPEG, PNG or WebP; 400 naming `field` otherwise."""
    if not data:
        raise _bad("no file was uploaded", field)
    if len(data) > MAX_FILE_BYTES:
        raise _bad("the file is larger than 5 MB", field)
    try:
        img = Image.open(io.BytesIO(data))
        fmt = img.format
        if fmt not in FORMATS:
            raise _bad("only JPEG, PNG and WebP images are accepted", field)
        width, height = img.size
        if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
            raise _bad(f"the picture is too large ({width}x{height}); at most {MAX_PIXELS // 1_000_000} "
                       f"megapixels and {MAX_SIDE} pixels a side", field)
        img.load()
    except HttpError:
        raise
    except Image.DecompressionBombError:
        raise _bad("the picture is too large (decompression bomb)", field)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise _bad("not a valid JPEG, PNG or WebP image", field)
    return img, fmt


def _clean(img, fmt):
    """The picture alone: upright (EXIF orientation applied), RGB or RGBA, no metadata.
    convert() makes a new image carrying only `info` (EXIF, ICC profile, comments, text
    chunks), which is emptied; Pillow's encoders then write nothing but the pixels."""
    try:
        if img.getexif().get(0x0112, 1) != 1:      # the Orientation tag
            img = ImageOps.exif_transpose(img)
    except Exception:
        pass  # a broken orientation tag: keep the picture as stored
    alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    pixels = img.convert("RGBA" if alpha and fmt != "JPEG" else "RGB")
    pixels.info = {}
    return pixels


def _encode(img, fmt):
    out = io.BytesIO()
    if fmt == "JPEG":
        img.save(out, "JPEG", quality=85, optimize=True)
    elif fmt == "PNG":
        img.save(out, "PNG", optimize=True)
    else:
        img.save(out, "WEBP", quality=85)
    return out.getvalue()


def process(data, field="image"):
    """(full bytes, thumbnail bytes, format, (w, h), (tw, th)) re-encoded from `data`."""
    img, fmt = decode(data, field)
    clean = _clean(img, fmt)
    full = _encode(clean, fmt)
    thumb = clean.copy()
    thumb.thumbnail(THUMB_SIZE)
    return full, _encode(thumb, fmt), fmt, clean.size, thumb.size


def _paths(image_uuid, fmt):
    ext = FORMATS[fmt][0]
    base = os.path.join(media_dir(), "items")
    return os.path.join(base, f"{image_uuid}.{ext}"), os.path.join(base, f"{image_uuid}.thumb.{ext}")


def urls(row):
    ext = FORMATS[row["format"]][0]
    return f"/media/items/{row['uuid']}.{ext}", f"/media/items/{row['uuid']}.thumb.{ext}"


def image_json(row):
    url, thumb = urls(row)
    return {"uuid": row["uuid"], "item_uuid": row["item_uuid"], "position": int(row["position"]),
            "format": FORMATS[row["format"]][1], "width": int(row["width"]), "height": int(row["height"]),
            "bytes": int(row["bytes"]), "url": url, "thumb_url": thumb, "created_at": row["created_at"]}


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuidlib.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _remove_files(image_uuid, fmt):
    for path in _paths(image_uuid, fmt):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def _member_item(db, user, item_uuid):
    """The item's store row under a lock on the item (uploads and reorders of one item
    run one at a time, so the count of 5 holds); 404 unknown item, 403 not a member."""
    if not catalog.is_uuid(item_uuid):
        raise NotFound("no such item")
    row = db.one("SELECT uuid, store_uuid FROM items WHERE uuid = ? FOR UPDATE", (item_uuid,))
    if row is None:
        raise NotFound("no such item")
    catalog.require_member(db, user, row["store_uuid"])
    return row


def add_image(db, user, item_uuid, data, field="image"):
    """A store member adds an image to an item. 400 not a valid image (nothing stored),
    403 not a member, 404 no item, 409 the item has 5 images already. Returns the image."""
    if not catalog.is_uuid(item_uuid):
        raise HttpError(404 if item_uuid else 400, "no such item" if item_uuid else "item_uuid is required",
                        fields={"item_uuid": "required"})
    with db.transaction():      # membership first: an outsider's file is not even decoded
        _member_item(db, user, item_uuid)
    full, thumb, fmt, size, thumb_size = process(data, field)
    image_uuid = str(uuidlib.uuid4())
    full_path, thumb_path = _paths(image_uuid, fmt)
    _write(full_path, full)
    _write(thumb_path, thumb)
    try:
        with db.transaction():
            _member_item(db, user, item_uuid)
            count = db.value("SELECT COUNT(*) FROM item_images WHERE item_uuid = ?", (item_uuid,))
            if int(count) >= MAX_IMAGES:
                raise Conflict(f"an item has at most {MAX_IMAGES} images; remove one first")
            top = db.value("SELECT MAX(position) FROM item_images WHERE item_uuid = ?", (item_uuid,))
            db.insert("item_images", {
                "uuid": image_uuid, "item_uuid": item_uuid, "position": int(top or 0) + 1, "format": fmt,
                "width": size[0], "height": size[1], "thumb_width": thumb_size[0],
                "thumb_height": thumb_size[1], "bytes": len(full), "created_by": user["uuid"],
                "created_at": utc_now()})
            catalog_cache.changed(db)    # the cards and the item page show the images
    except BaseException:
        _remove_files(image_uuid, fmt)
        raise
    return image_json(db.one(f"SELECT {IMAGE_COLUMNS} FROM item_images WHERE uuid = ?", (image_uuid,)))


def list_images(db, item_uuid):
    return [image_json(r) for r in db.query(
        f"SELECT {IMAGE_COLUMNS} FROM item_images WHERE item_uuid = ? ORDER BY position, id", (item_uuid,))]


def first_images(db, item_uuids):
    """{item_uuid: the first image} for the items that have one (one query)."""
    uuids = sorted(set(item_uuids))
    if not uuids:
        return {}
    marks = ", ".join("?" * len(uuids))
    out = {}
    for r in db.query(f"SELECT {IMAGE_COLUMNS} FROM item_images WHERE item_uuid IN ({marks}) "
                      "ORDER BY position DESC, id DESC", uuids):
        out[r["item_uuid"]] = image_json(r)   # the lowest position is written last
    return out


def add_first_images(db, items):
    """Set item['image'] (the first image or None) on each item dict."""
    found = first_images(db, [i["uuid"] for i in items])
    for i in items:
        i["image"] = found.get(i["uuid"])
    return items


def _image_row(db, image_uuid):
    if not catalog.is_uuid(image_uuid):
        raise NotFound("no such image")
    row = db.one(f"SELECT {IMAGE_COLUMNS} FROM item_images WHERE uuid = ?", (image_uuid,))
    if row is None:
        raise NotFound("no such image")
    return row


def remove_image(db, user, image_uuid):
    """A store member removes an image (its files too). 404 unknown, 403 not a member."""
    row = _image_row(db, image_uuid)
    with db.transaction():
        _member_item(db, user, row["item_uuid"])
        if db.execute("DELETE FROM item_images WHERE uuid = ?", (row["uuid"],)) != 1:
            raise NotFound("no such image")
        catalog_cache.changed(db)
    _remove_files(row["uuid"], row["format"])
    return image_json(row)


def reorder(db, user, item_uuid, order):
    """Set the item's image order to `order` (every image uuid of the item once, first
    shown first; a list or a comma-separated string). 400 otherwise."""
    if isinstance(order, str):
        order = [u.strip() for u in order.split(",") if u.strip()]
    if not isinstance(order, list) or not all(isinstance(u, str) for u in order):
        raise _bad("a list of the item's image uuids", "order")
    with db.transaction():
        _member_item(db, user, item_uuid)
        current = [r["uuid"] for r in db.query(
            "SELECT uuid FROM item_images WHERE item_uuid = ? ORDER BY position, id", (item_uuid,))]
        if len(order) != len(current) or set(order) != set(current):
            raise _bad("must list every image of the item exactly once", "order")
        for position, image_uuid in enumerate(order, start=1):
            db.execute("UPDATE item_images SET position = ? WHERE uuid = ?", (position, image_uuid))
        catalog_cache.changed(db)
    return list_images(db, item_uuid)


def move_first(db, user, image_uuid):
    """Make one image the item's first (the card's); the others keep their order."""
    row = _image_row(db, image_uuid)
    current = [i["uuid"] for i in list_images(db, row["item_uuid"])]
    return reorder(db, user, row["item_uuid"], [row["uuid"]] + [u for u in current if u != row["uuid"]])
