"""Item images, on SQLite and MariaDB: at most 5 per item, JPEG/PNG/WebP
of at most 5 MB, decoded and re-encoded (EXIF stripped), thumbnails, decompression bombs
and non-images refused with a 400 naming the field and nothing stored; remove, reorder;
marketplace cards (first image, USD price, rating) and sorting."""
import io
import os
import threading
import urllib.request
import uuid

import pytest
from PIL import Image

from lib import images, reviews
from tests import market
from tests.factories import login
from tests.market import fast_hashing  # noqa: F401 (autouse fixture)

API = "/api/item-images.php"
GPS_TEXT = b"GPS secret place 51.5N"


@pytest.fixture
def media(tmp_path):
    return tmp_path / "media"


@pytest.fixture
def settings(media):
    return {"MEDIA_DIR": str(media)}


def picture(fmt="JPEG", size=(640, 480), color=(200, 30, 30), exif=True):
    img = Image.new("RGB", size, color)
    out = io.BytesIO()
    if fmt == "JPEG" and exif:
        tags = Image.Exif()
        tags[0x010F] = "SpyCam"              # Make
        tags[0x010E] = GPS_TEXT.decode()     # ImageDescription
        img.save(out, "JPEG", exif=tags.tobytes())
    else:
        img.save(out, fmt)
    return out.getvalue()


def multipart(fields, files):
    boundary = "----test" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode())
    for name, (filename, data, ctype) in files.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                  f"Content-Type: {ctype}\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def upload(client, user, item_uuid, data, filename="photo.jpg", ctype="image/jpeg", extra=None):
    body, content_type = multipart(dict({"item_uuid": item_uuid}, **(extra or {})),
                                   {"image": (filename, data, ctype)})
    return client.request("POST", API, body=body, content_type=content_type, headers=user["headers"])


def files_in(media):
    folder = media / "items"
    return sorted(os.listdir(folder)) if folder.exists() else []


def count(db):
    return db.value("SELECT COUNT(*) FROM item_images")


def test_upload_reencodes_strips_exif_and_makes_a_thumbnail(db, client, media):
    w = market.world(db)
    original = picture("JPEG", (1600, 1200))
    assert GPS_TEXT in original and b"SpyCam" in original
    r = upload(client, w.vendor, w.item["uuid"], original)
    assert r.status == 200, r
    image = r.json()["image"]
    assert image["format"] == "image/jpeg" and (image["width"], image["height"]) == (1600, 1200)
    assert image["position"] == 1 and image["url"] == f"/media/items/{image['uuid']}.jpg"
    assert files_in(media) == sorted([f"{image['uuid']}.jpg", f"{image['uuid']}.thumb.jpg"])
    stored = (media / "items" / f"{image['uuid']}.jpg").read_bytes()
    assert GPS_TEXT not in stored and b"SpyCam" not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as im:
        assert im.format == "JPEG" and im.size == (1600, 1200) and len(im.getexif()) == 0
    with Image.open(media / "items" / f"{image['uuid']}.thumb.jpg") as thumb:
        assert thumb.size == (400, 300)
    # the dev server serves both files
    served = client.get(image["url"])
    assert served.status == 200 and served.header("Content-Type") == "image/jpeg" and served.body == stored
    assert client.get(image["thumb_url"]).status == 200
    assert client.get("/media/items/../../wsgi.py").status == 404
    assert client.get(f"/media/items/{uuid.uuid4()}.jpg").status == 404


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_png_and_webp_keep_their_format(db, client, media, fmt, mime):
    w = market.world(db)
    r = upload(client, w.vendor, w.item["uuid"], picture(fmt), filename="x.bin", ctype="application/octet-stream")
    assert r.status == 200, r
    assert r.json()["image"]["format"] == mime
    with Image.open(media / "items" / r.json()["image"]["url"].rsplit("/", 1)[1]) as im:
        assert im.format == fmt


def test_a_sixth_image_is_refused(db, client, media):
    w = market.world(db)
    for i in range(5):
        assert upload(client, w.vendor, w.item["uuid"], picture(color=(i * 40, 0, 0))).status == 200
    r = upload(client, w.vendor, w.item["uuid"], picture())
    assert r.status == 409 and "at most 5" in r.json()["error"]
    assert count(db) == 5 and len(files_in(media)) == 10


def bomb():
    img = Image.new("1", (11000, 11000))   # 121 megapixels, a few kB as a PNG
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def big_but_under_pillows_limit():
    img = Image.new("1", (8000, 6000))     # 48 megapixels: over MAX_PIXELS, under Pillow's 2x
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("name, data, text", [
    ("text file named .png", b"this is not a picture, just text\n" * 10, "not a valid"),
    ("empty file", b"", "no file"),
    ("truncated jpeg", picture()[:300], "not a valid"),
    ("a gif", None, "only JPEG, PNG and WebP"),
    ("decompression bomb", None, "too large"),
    ("48 megapixels", None, "too large"),
    ("larger than 5 MB", b"\x89PNG\r\n\x1a\n" + b"\0" * 5_000_001, "larger than 5 MB"),
])
def test_not_an_acceptable_image_is_400_naming_the_field_and_nothing_stored(db, client, media, name, data, text):
    w = market.world(db)
    if name == "a gif":
        out = io.BytesIO()
        Image.new("RGB", (10, 10)).save(out, "GIF")
        data = out.getvalue()
    elif name == "decompression bomb":
        data = bomb()
        assert len(data) < 100_000
    elif name == "48 megapixels":
        data = big_but_under_pillows_limit()
    r = upload(client, w.vendor, w.item["uuid"], data, filename="photo.png", ctype="image/png")
    assert r.status == 400, (name, r)
    assert r.json()["error"].startswith("image: ") and text in r.json()["error"], r.json()
    assert count(db) == 0 and files_in(media) == []


def test_whole_body_is_capped_before_reading(db, client, media):
    w = market.world(db)
    body, ctype = multipart({"item_uuid": w.item["uuid"]}, {"image": ("a.jpg", b"\0" * (6 * 1024 * 1024), "image/jpeg")})
    r = client.request("POST", API, body=body, content_type=ctype, headers=w.vendor["headers"])
    assert r.status == 413 and count(db) == 0
    # other endpoints keep the 1 MiB limit for multipart bodies too
    body, ctype = multipart({"name": "x"}, {"image": ("a.jpg", b"\0" * (2 * 1024 * 1024), "image/jpeg")})
    r = client.request("POST", "/api/items.php", body=body, content_type=ctype, headers=w.vendor["headers"])
    assert r.status == 413


@pytest.mark.parametrize("body, ctype", [
    (b"garbage", "multipart/form-data; boundary=xyz"),
    (b"--xyz\r\nContent-Disposition: form-data\r\n\r\nv\r\n--xyz--\r\n", "multipart/form-data; boundary=xyz"),
    (b"--xyz\r\nno header line\r\n\r\nv\r\n--xyz--\r\n", "multipart/form-data; boundary=xyz"),
    (b"--xyz--\r\n", "multipart/form-data"),
])
def test_malformed_multipart_is_400(db, client, media, body, ctype):
    w = market.world(db)
    r = client.request("POST", API, body=body, content_type=ctype, headers=w.vendor["headers"])
    assert r.status == 400 and count(db) == 0


def test_only_members_upload_remove_or_reorder(db, client, media):
    w = market.world(db)
    assert upload(client, w.stranger, w.item["uuid"], picture()).status == 403
    assert upload(client, w.staff, w.item["uuid"], picture()).status == 403
    assert upload(client, w.vendor, str(uuid.uuid4()), picture()).status == 404
    body, ctype = multipart({"item_uuid": w.item["uuid"]}, {})
    r = client.request("POST", API, body=body, content_type=ctype, headers=w.vendor["headers"])
    assert r.status == 400 and "image" in r.json()["error"]
    assert count(db) == 0 and files_in(media) == []
    image = upload(client, w.vendor, w.item["uuid"], picture()).json()["image"]
    r = client.post(API, data={"action": "remove", "image_uuid": image["uuid"]}, headers=w.stranger["headers"])
    assert r.status == 403 and count(db) == 1
    body, ctype = multipart({"item_uuid": w.item["uuid"]}, {"image": ("a.jpg", picture(), "image/jpeg")})
    assert client.request("POST", API, body=body, content_type=ctype).status == 401


def test_remove_and_reorder(db, client, media):
    w = market.world(db)
    ids = [upload(client, w.vendor, w.item["uuid"], picture(color=(i * 60, 0, 0))).json()["image"]["uuid"]
           for i in range(3)]
    listed = client.get(f"{API}?item_uuid={w.item['uuid']}").json()["images"]
    assert [i["uuid"] for i in listed] == ids
    new_order = [ids[2], ids[0], ids[1]]
    r = client.post(API, data={"action": "reorder", "item_uuid": w.item["uuid"], "order": ",".join(new_order)},
                    headers=w.vendor["headers"])
    assert r.status == 200 and [i["uuid"] for i in r.json()["images"]] == new_order
    for bad in ([ids[0], ids[1]], ids + [ids[0]], [ids[0], ids[1], str(uuid.uuid4())]):
        r = client.post(API, json_body={"action": "reorder", "item_uuid": w.item["uuid"], "order": bad},
                        headers=w.vendor["headers"])
        assert r.status == 400 and "order" in r.json()["error"]
    assert [i["uuid"] for i in client.get(f"{API}?item_uuid={w.item['uuid']}").json()["images"]] == new_order
    card = client.get("/api/items.php").json()["items"][0]["image"]
    assert card["uuid"] == ids[2]
    r = client.post(API, data={"action": "remove", "image_uuid": ids[2]}, headers=w.vendor["headers"])
    assert r.status == 200 and count(db) == 2
    assert f"{ids[2]}.jpg" not in files_in(media) and f"{ids[2]}.thumb.jpg" not in files_in(media)
    assert client.get("/api/items.php").json()["items"][0]["image"]["uuid"] == ids[0]
    assert client.post(API, data={"action": "remove", "image_uuid": ids[2]}, headers=w.vendor["headers"]).status == 404


def test_concurrent_uploads_never_pass_five(db, live_server, media):
    w = market.world(db)
    results = []
    data = picture(size=(64, 64))

    def send():
        body, ctype = multipart({"item_uuid": w.item["uuid"]}, {"image": ("a.jpg", data, "image/jpeg")})
        req = urllib.request.Request(live_server + API, data=body,
                                     headers=dict(w.vendor["headers"], **{"Content-Type": ctype}))
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                results.append(resp.status)
        except urllib.error.HTTPError as e:
            results.append(e.code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] * 5 + [409] * 3
    assert count(db) == 5 and len(files_in(media)) == 10
    positions = [r["position"] for r in db.query("SELECT position FROM item_images ORDER BY position")]
    assert positions == [1, 2, 3, 4, 5]


# -- the item edit page -------------------------------------------------------------------

def test_edit_page_upload_first_and_remove(db, client, media):
    w = market.world(db)
    token = login(client, "vendor1")
    html = {"Accept": "text/html"}
    url = f"/item/edit.php?uuid={w.item['uuid']}"
    assert 'enctype="multipart/form-data"' in client.get(url, headers=html).text
    body, ctype = multipart({"form": "image_upload", "item_uuid": w.item["uuid"], "csrf_token": token},
                            {"image": ("a.png", b"plain text, not a png", "image/png")})
    r = client.request("POST", url, body=body, content_type=ctype, headers=html)
    assert r.status == 400 and "image: not a valid JPEG, PNG or WebP image" in r.text and count(db) == 0
    # without the CSRF token: refused
    body, ctype = multipart({"form": "image_upload", "item_uuid": w.item["uuid"]},
                            {"image": ("a.jpg", picture(), "image/jpeg")})
    assert client.request("POST", url, body=body, content_type=ctype,
                          headers={"Origin": "http://testserver"}).status == 403
    ids = []
    for i in range(2):
        body, ctype = multipart({"form": "image_upload", "item_uuid": w.item["uuid"], "csrf_token": token},
                                {"image": ("a.jpg", picture(color=(0, i * 99, 0)), "image/jpeg")})
        r = client.request("POST", url, body=body, content_type=ctype)
        assert r.status == 303, r
    ids = [i["uuid"] for i in images.list_images(db, w.item["uuid"])]
    r = client.post(url, data={"form": "image_first", "image_uuid": ids[1], "csrf_token": token})
    assert r.status == 303
    assert [i["uuid"] for i in images.list_images(db, w.item["uuid"])] == [ids[1], ids[0]]
    page = client.get("/marketplace.php", headers=html).text
    assert f"/media/items/{ids[1]}.thumb.jpg" in page and "from $100.00" in page
    r = client.post(url, data={"form": "image_remove", "image_uuid": ids[1], "csrf_token": token})
    assert r.status == 303 and count(db) == 1


# -- cards and sorting -------------------------------------------------------------------

def test_cards_show_price_rating_and_sorts(db, client, media):
    w = market.world(db, price="100")
    cheap = market.item(db, w.vendor, w.store["uuid"], "cheap")
    market.package(db, w.vendor, cheap["uuid"], "9.50")
    market.package(db, w.vendor, cheap["uuid"], "12")
    dear = market.item(db, w.vendor, w.store["uuid"], "dear")
    market.package(db, w.vendor, dear["uuid"], "250.05")
    bare = market.item(db, w.vendor, w.store["uuid"], "bare")     # no package: last by price
    names = lambda sort: [i["name"] for i in client.get(f"/api/items.php?sort={sort}").json()["items"]]  # noqa: E731
    assert names("newest") == ["bare", "dear", "cheap", "widget"]
    assert names("price_asc") == ["cheap", "widget", "dear", "bare"]
    assert names("price_desc") == ["dear", "widget", "cheap", "bare"]
    # ratings: widget 5 and 4 (4.50), cheap 5 (5.00), others none
    for score in (5, 4):
        reviews.add_review(db, w.buyer, market.order(db, w, status="RELEASED"), score)
    w2 = dict(w, package=db.one("SELECT uuid FROM packages WHERE item_uuid = ? ORDER BY id LIMIT 1",
                                (cheap["uuid"],)))
    reviews.add_review(db, w.buyer, market.order(db, w2, status="RELEASED"), 5)
    assert names("rating")[:2] == ["cheap", "widget"]
    items = {i["name"]: i for i in client.get("/api/items.php").json()["items"]}
    assert items["cheap"]["price_from_usd"] == "9.50" and items["bare"]["price_from_usd"] is None
    assert items["widget"]["rating"] == {"average": "4.50", "count": 2}
    assert items["dear"]["rating"] == {"average": None, "count": 0} and items["dear"]["image"] is None
    page = client.get("/marketplace.php?sort=price_asc", headers={"Accept": "text/html"}).text
    assert page.index(">cheap<") < page.index(">widget<") < page.index(">dear<")
    assert "from $9.50" in page and "★ 4.50 (2 reviews)" in page and "no packages yet" in page
    for url in ("/api/items.php?sort=cheapest", "/marketplace.php?sort=1"):
        r = client.get(url)
        assert r.status == 400 and "sort" in r.text


def test_png_text_jpeg_comment_and_icc_are_dropped_and_orientation_applied(db, client, media):
    from PIL import PngImagePlugin
    w = market.world(db)
    text = PngImagePlugin.PngInfo()
    text.add_text("Location", GPS_TEXT.decode())
    png = io.BytesIO()
    Image.new("RGBA", (40, 30), (1, 2, 3, 128)).save(png, "PNG", pnginfo=text, icc_profile=b"ICCPROFILE-SECRET")
    jpeg = io.BytesIO()
    tags = Image.Exif()
    tags[0x0112] = 6                          # Orientation: rotate 90 degrees to show upright
    Image.new("RGB", (60, 20), (9, 9, 9)).save(jpeg, "JPEG", exif=tags.tobytes(), comment=GPS_TEXT)
    for data, name in ((png.getvalue(), "a.png"), (jpeg.getvalue(), "b.jpg")):
        assert GPS_TEXT in data
        r = upload(client, w.vendor, w.item["uuid"], data, filename=name)
        assert r.status == 200, r
        image = r.json()["image"]
        stored = (media / "items" / image["url"].rsplit("/", 1)[1]).read_bytes()
        assert GPS_TEXT not in stored and b"ICCPROFILE" not in stored and b"Exif" not in stored
        with Image.open(io.BytesIO(stored)) as im:
            assert not (set(im.info) & {"icc_profile", "exif", "comment", "Location"}), im.info
            if name == "a.png":
                assert im.mode == "RGBA" and im.getpixel((0, 0)) == (1, 2, 3, 128)
            else:
                assert im.size == (20, 60) and (image["width"], image["height"]) == (20, 60)


def test_home_page_cards_have_the_same_facts(db, client, media):
    w = market.world(db)
    image = upload(client, w.vendor, w.item["uuid"], picture()).json()["image"]
    page = client.get("/", headers={"Accept": "text/html"}).text
    assert image["thumb_url"] in page and "from $100.00" in page and "no reviews yet" in page


def test_a_store_limited_key_touches_only_its_stores_images(db, client, media):
    from tests.test_scopes import new_key
    w = market.world(db)
    other = market.store(db, w.vendor, "other")
    other_item = market.item(db, w.vendor, other["uuid"], "elsewhere")
    theirs = upload(client, w.vendor, other_item["uuid"], picture()).json()["image"]
    _, key = new_key(client, w.vendor, ["store"], w.store["uuid"])
    limited = {"headers": key}
    assert upload(client, limited, w.item["uuid"], picture()).status == 200
    r = upload(client, limited, other_item["uuid"], picture())
    assert r.status == 403 and "limited to the store" in r.json()["error"]
    r = client.post(API, data={"action": "remove", "image_uuid": theirs["uuid"]}, headers=key)
    assert r.status == 403 and "limited to the store" in r.json()["error"]
    assert db.value("SELECT COUNT(*) FROM item_images WHERE item_uuid = ?", (other_item["uuid"],)) == 1
