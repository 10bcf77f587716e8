"""Stores, items, packages and categories.

Plain functions taking (db, user, ...) and raising HttpError for bad input, shared
by the JSON API and the HTML pages. Rules:
- a store's creator becomes its owner (store_users) and a vendor (customers are promoted);
- only members of a store add or edit its items and packages; only the owner edits the
  store's settings (description, payout address);
- a suspended store and everything in it is hidden from listings and cannot sell;
- packages are priced in USD (a decimal string, cents); every price change appends a
  `package_prices` row.
"""
import re
import uuid as uuidlib
from decimal import Decimal

from lib import agreement, audit, bond, catalog_cache, config, pricing, tokens as tokmod, users
from lib.db import IntegrityError, like_pattern, utc_now
from lib.http import BadRequest, Conflict, Forbidden, HttpError, NotFound
from lib.roles import STAFF_ROLES, is_staff  # noqa: F401 (catalog.is_staff: names other code uses)
from lib.tokens import optional_address, parse_usd
from lib.validate import is_uuid, text, truthy  # noqa: F401

DEFAULT_CATEGORIES = ("Digital goods", "Physical goods", "Services", "Other")

STORENAME_RE = re.compile(r"^[A-Za-z0-9_.\-](?:[A-Za-z0-9 _.\-]{0,14}[A-Za-z0-9_.\-])?$")
MAX_DESCRIPTION = 10000
MAX_PRICE_USD = "1000000"
TIERS = config.TIERS
UNCHANGED = object()

STORE_PUBLIC = ("s.uuid, s.storename, s.description, s.tier, s.vendorship_agreed_at, "
                "s.created_at, s.updated_at")
ITEM_COLUMNS = ("i.uuid, i.store_uuid, s.storename, i.name, i.description, i.category_id, "
                "c.name AS category, i.active, i.created_at, i.updated_at")
PACKAGE_COLUMNS = ("p.uuid, p.item_uuid, p.name, p.description, p.price_usd, p.active, "
                   "p.created_at, p.updated_at")


def seed_categories(db):
    """Insert the default item categories once (idempotent)."""
    for name in DEFAULT_CATEGORIES:
        if db.value("SELECT id FROM item_categories WHERE name = ?", (name,)) is None:
            db.insert("item_categories", {"name": name, "parent_id": None})
            catalog_cache.changed(db)


def require_staff(user):
    if not is_staff(user):
        raise Forbidden("staff only")


def parse_price_usd(value, field="price_usd"):
    """A package price: USD with at most 2 decimals, from 0.01 to 1,000,000."""
    return parse_usd(value, field, maximum=Decimal(MAX_PRICE_USD), places=2)


# -- categories ------------------------------------------------------------------

def list_categories(db):
    return db.query("SELECT id, name, parent_id FROM item_categories ORDER BY name")


def category_tree(db):
    """The categories as a depth-first list: each row id, name, parent_id, depth, path
    ("Parent / Child"), items (how many items use it) and children (how many categories)."""
    rows = list_categories(db)
    counts = {r["category_id"]: int(r["n"]) for r in db.query(
        "SELECT category_id, COUNT(*) AS n FROM items WHERE category_id IS NOT NULL GROUP BY category_id")}
    by_parent = {}
    ids = {r["id"] for r in rows}
    for r in rows:
        parent = r["parent_id"] if r["parent_id"] in ids else None
        by_parent.setdefault(parent, []).append(r)
    out = []

    def walk(parent, depth, prefix, seen):
        for r in by_parent.get(parent, []):
            if r["id"] in seen:
                continue
            path = f"{prefix} / {r['name']}" if prefix else r["name"]
            kids = by_parent.get(r["id"], [])
            out.append({"id": r["id"], "name": r["name"], "parent_id": r["parent_id"], "depth": depth,
                        "path": path, "items": counts.get(r["id"], 0), "children": len(kids),
                        "indent": "\u2014 " * depth})
            walk(r["id"], depth + 1, path, seen | {r["id"]})

    walk(None, 0, "", frozenset())
    return out


def category_rows(db):
    """The tree as the JSON API shows it (category_tree without the page's indent)."""
    return [{k: c[k] for k in ("id", "name", "parent_id", "depth", "path", "items", "children")}
            for c in category_tree(db)]


def _category_name(value):
    name = text(value, "name", 64, required=True, multiline=False)
    if "/" in name:
        raise BadRequest("name must not contain '/'", fields={"name": "no '/'"})
    return name


def _parent_id(db, value, field="parent_id"):
    if value in (None, ""):
        return None
    text_value = str(value).strip()
    if not (text_value.isascii() and text_value.isdigit() and len(text_value) < 10):
        raise BadRequest(f"{field} must be a category id number", fields={field: "bad"})
    cid = int(text_value)
    if db.value("SELECT id FROM item_categories WHERE id = ?", (cid,)) is None:
        raise BadRequest(f"unknown {field} {cid}", fields={field: "unknown"})
    return cid


def _category(db, value):
    cid = _parent_id(db, value, "category_id")
    if cid is None:
        raise BadRequest("category_id is required", fields={"category_id": "required"})
    return db.one("SELECT id, name, parent_id FROM item_categories WHERE id = ?", (cid,))


def _name_free(db, name, except_id=None):
    row = db.value("SELECT id FROM item_categories WHERE LOWER(name) = ?", (name.lower(),))
    if row is not None and row != except_id:
        raise Conflict(f"a category named {name} exists", fields={"name": "taken"})


def add_category(db, user, name, parent_id=None, ip=None):
    """Staff add a category (optionally under `parent_id`). 400 bad input, 409 name taken."""
    require_staff(user)
    name = _category_name(name)
    with db.transaction():
        parent = _parent_id(db, parent_id)
        _name_free(db, name)
        try:
            cid = db.insert("item_categories", {"name": name, "parent_id": parent})
        except IntegrityError:
            raise Conflict(f"a category named {name} exists", fields={"name": "taken"})
        cid = db.value("SELECT id FROM item_categories WHERE name = ?", (name,))
        catalog_cache.changed(db)
        audit.log(db, "category_added", user["uuid"], str(cid), f"{name} parent={parent}", ip=ip)
    return db.one("SELECT id, name, parent_id FROM item_categories WHERE id = ?", (cid,))


def rename_category(db, user, category_id, name, ip=None):
    require_staff(user)
    name = _category_name(name)
    with db.transaction():
        row = _category(db, category_id)
        _name_free(db, name, except_id=row["id"])
        db.execute("UPDATE item_categories SET name = ? WHERE id = ?", (name, row["id"]))
        catalog_cache.changed(db)
        audit.log(db, "category_renamed", user["uuid"], str(row["id"]), f"{row['name']} -> {name}", ip=ip)
    return db.one("SELECT id, name, parent_id FROM item_categories WHERE id = ?", (row["id"],))


def move_category(db, user, category_id, parent_id, ip=None):
    """Staff give a category a new parent (empty: top level). 400 unknown parent, or a
    parent that is the category itself or one of its descendants (a cycle)."""
    require_staff(user)
    with db.transaction():
        row = _category(db, category_id)
        parent = _parent_id(db, parent_id)
        seen = set()
        cursor = parent
        while cursor is not None and cursor not in seen:
            if cursor == row["id"]:
                raise BadRequest("parent_id is the category itself or one of its subcategories",
                                fields={"parent_id": "cycle"})
            seen.add(cursor)
            cursor = db.value("SELECT parent_id FROM item_categories WHERE id = ?", (cursor,))
        db.execute("UPDATE item_categories SET parent_id = ? WHERE id = ?", (parent, row["id"]))
        catalog_cache.changed(db)
        audit.log(db, "category_moved", user["uuid"], str(row["id"]),
                  f"{row['name']} parent {row['parent_id']} -> {parent}", ip=ip)
    return db.one("SELECT id, name, parent_id FROM item_categories WHERE id = ?", (row["id"],))


def remove_category(db, user, category_id, ip=None):
    """Staff remove a category no item and no subcategory uses (409 otherwise)."""
    require_staff(user)
    with db.transaction():
        row = _category(db, category_id)
        if db.value("SELECT COUNT(*) FROM items WHERE category_id = ?", (row["id"],)):
            raise Conflict(f"items use the category {row['name']}; move them first")
        if db.value("SELECT COUNT(*) FROM item_categories WHERE parent_id = ?", (row["id"],)):
            raise Conflict(f"the category {row['name']} has subcategories; move or remove them first")
        db.execute("DELETE FROM item_categories WHERE id = ?", (row["id"],))
        catalog_cache.changed(db)
        audit.log(db, "category_removed", user["uuid"], str(row["id"]), row["name"], ip=ip)
    return row


def parse_category_id(db, value, required=False):
    if value in (None, ""):
        if required:
            raise BadRequest("category_id is required", fields={"category_id": "required"})
        return None
    text_value = str(value).strip()
    if not (text_value.isascii() and text_value.isdigit() and len(text_value) < 10):
        raise BadRequest("category_id must be a category id number", fields={"category_id": "bad"})
    cid = int(text_value)
    if db.value("SELECT id FROM item_categories WHERE id = ?", (cid,)) is None:
        raise BadRequest(f"unknown category_id {cid}", fields={"category_id": "unknown"})
    return cid


# -- stores ----------------------------------------------------------------------

def _store_json(row):
    return {"uuid": row["uuid"], "storename": row["storename"], "description": row["description"],
            "tier": row["tier"], "vendorship_agreed_at": row["vendorship_agreed_at"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def create_store(db, user, storename, description=None, agreed=False):
    """Create a store owned by `user`; the user becomes a vendor. Returns the store dict.

    400 bad name / no agreement, 403 an admin has not let the user open stores,
    409 name taken (case-insensitive).
    """
    if str(db.value("SELECT can_sell FROM users WHERE uuid = ?", (user["uuid"],), default=1)) == "0":
        raise Forbidden("an admin has not allowed you to open stores; ask an administrator to grant "
                             "you the right to sell")
    if not truthy(agreed):
        raise BadRequest("you must agree to the vendorship terms (vendorship_agree=1)",
                        fields={"vendorship_agree": "required"})
    name = text(storename, "storename", 16, required=True, multiline=False)
    if not STORENAME_RE.match(name):
        raise BadRequest("storename must be 1-16 characters: letters, digits, spaces, '_', '-', '.'",
                        fields={"storename": "invalid characters"})
    description = text(description, "description", MAX_DESCRIPTION)
    now = utc_now()
    row = {"uuid": str(uuidlib.uuid4()), "storename": name, "storename_lower": name.lower(),
           "description": description, "tier": "free", "payout_address": None, "suspended": 0,
           "vendorship_agreed_at": now, "created_at": now, "updated_at": now}
    version = agreement.current_version(db)
    if version is not None:   # agreeing when opening the store accepts the current agreement
        row.update(agreement_version=int(version), agreement_accepted_at=now)
    with db.transaction():
        if db.value("SELECT id FROM stores WHERE storename_lower = ?", (name.lower(),)) is not None:
            raise Conflict(f"the store name {name} is taken", fields={"storename": "taken"})
        try:
            db.insert("stores", row)
        except IntegrityError:
            raise Conflict(f"the store name {name} is taken", fields={"storename": "taken"})
        db.insert("store_users", {"store_uuid": row["uuid"], "user_uuid": user["uuid"],
                                  "role": "owner", "created_at": now})
        if user.get("role") == "customer":
            users.set_role(db, user["uuid"], "vendor")
        catalog_cache.changed(db)
        audit.log(db, "store_created", user["uuid"], row["uuid"], name)
    return _store_json(row)


def list_stores(db, limit=50, offset=0, include_suspended=False):
    where = "" if include_suspended else " WHERE s.suspended = 0"
    cols = STORE_PUBLIC + (", s.suspended" if include_suspended else "")
    rows = db.query(f"SELECT {cols} FROM stores s{where} ORDER BY s.id DESC LIMIT ? OFFSET ?",
                    (int(limit), int(offset)))
    out = []
    for r in rows:
        item = _store_json(r)
        if include_suspended:
            item["suspended"] = bool(r["suspended"])
        out.append(item)
    return out


def store_row(db, store_uuid):
    """The full stores row (payout address, suspended) or None. For internal use."""
    if not is_uuid(store_uuid):
        return None
    return db.one("SELECT * FROM stores WHERE uuid = ?", (store_uuid,))


def get_store(db, store_uuid, user=None):
    """The public store dict; 404 if unknown or suspended (unless a member or staff asks).

    Members and staff also get `payout_address`, `suspended` and `members`.
    """
    row = store_row(db, store_uuid)
    if row is None:
        raise NotFound("no such store")
    insider = is_staff(user) or (user is not None and member_role(db, user, row["uuid"]) is not None)
    if row["suspended"] and not insider:
        raise NotFound("no such store")
    out = _store_json(row)
    choice = tokmod.store_choice(db, row["uuid"])
    # The tokens the store takes ("CHAIN_ID:SYMBOL"); null: every accepted token.
    out["tokens"] = sorted(f"{c}:{s}" for c, s in choice) if choice else None
    if insider:
        out["payout_address"] = row["payout_address"]
        out["suspended"] = bool(row["suspended"])
        out["members"] = db.query("SELECT u.uuid AS user_uuid, u.username, su.role FROM store_users su "
                                  "JOIN users u ON u.uuid = su.user_uuid WHERE su.store_uuid = ? "
                                  "ORDER BY su.id", (row["uuid"],))
    return out


def member_role(db, user, store_uuid):
    """'owner' (or another member role) if `user` belongs to the store, else None."""
    if not user:
        return None
    return db.value("SELECT role FROM store_users WHERE store_uuid = ? AND user_uuid = ?",
                    (store_uuid, user["uuid"]))


def user_store_uuids(db, user_uuid):
    return [r["store_uuid"] for r in db.query(
        "SELECT store_uuid FROM store_users WHERE user_uuid = ? ORDER BY id", (user_uuid,))]


def store_owner(db, store_uuid):
    """The username of the store's (first, not banned) owner, or None."""
    return db.value("SELECT u.username FROM store_users su JOIN users u ON u.uuid = su.user_uuid "
                    "WHERE su.store_uuid = ? AND su.role = 'owner' AND u.banned = 0 ORDER BY su.id LIMIT 1",
                    (store_uuid,))


def require_my_stores(db, user, refusal):
    """my_stores(), or 403 `refusal` for a user who is a member of no store."""
    stores = my_stores(db, user)
    if not stores:
        raise Forbidden(refusal)
    return stores


def my_stores(db, user):
    """Stores `user` is a member of (suspended ones included), with role and payout address."""
    rows = db.query(f"SELECT {STORE_PUBLIC}, s.payout_address, s.suspended, su.role AS member_role "
                    "FROM store_users su JOIN stores s ON s.uuid = su.store_uuid "
                    "WHERE su.user_uuid = ? ORDER BY s.id", (user["uuid"],))
    out = []
    for r in rows:
        item = _store_json(r)
        item.update({"payout_address": r["payout_address"], "suspended": bool(r["suspended"]),
                     "member_role": r["member_role"]})
        out.append(item)
    return out


def require_member(db, user, store_uuid, owner=False, for_selling=True):
    """The store row if `user` is a member (the owner when owner=True).

    404 unknown store, 403 not a member / not the owner, 409 suspended (when for_selling).
    """
    row = store_row(db, store_uuid)
    if row is None:
        raise NotFound("no such store")
    role = member_role(db, user, row["uuid"])
    if role is None:
        if row["suspended"]:
            raise NotFound("no such store")
        raise Forbidden("you are not a member of this store")
    if owner and role != "owner":
        raise Forbidden("only the store owner may do this")
    if for_selling and row["suspended"]:
        raise Conflict("this store is suspended")
    return row


def update_store(db, user, store_uuid, description=UNCHANGED, payout_address=UNCHANGED, tokens=UNCHANGED):
    """Owner edits the description and/or payout address ('' clears) and/or the tokens
    the store takes (lib.tokens.parse_token_choice; '' or 'all' for every accepted token).
    Returns the store dict."""
    changes = {}
    if description is not UNCHANGED and description is not None:
        changes["description"] = text(description, "description", MAX_DESCRIPTION)
    if payout_address is not UNCHANGED and payout_address is not None:
        changes["payout_address"] = optional_address(payout_address, "payout_address")
    chosen = UNCHANGED
    if tokens is not UNCHANGED and tokens is not None:
        chosen = tokmod.parse_token_choice(db, tokens)
    if not changes and chosen is UNCHANGED:
        raise BadRequest("nothing to change: give description, payout_address and/or tokens")
    with db.transaction():
        row = require_member(db, user, store_uuid, owner=True, for_selling=False)
        if chosen is not UNCHANGED:
            tokmod.set_store_tokens(db, row["uuid"], chosen)
            audit.log(db, "store_tokens_set", user["uuid"], row["uuid"],
                      ", ".join(f"{t['chain_id']}:{t['symbol']}" for t in chosen) if chosen else "all")
        changes["updated_at"] = utc_now()
        sets = ", ".join(f"{k} = ?" for k in changes)
        db.execute(f"UPDATE stores SET {sets} WHERE uuid = ?", list(changes.values()) + [row["uuid"]])
        catalog_cache.changed(db)
        if "payout_address" in changes:
            audit.log(db, "store_payout_set", user["uuid"], row["uuid"], changes["payout_address"])
    return get_store(db, row["uuid"], user)


def set_store_tier(db, staff_user, store_uuid, tier):
    """Staff set a store's tier (gold, silver, bronze, free): it drives the commission."""
    require_staff(staff_user)
    if tier not in TIERS:
        raise BadRequest(f"tier must be one of {', '.join(TIERS)}", fields={"tier": "bad"})
    with db.transaction():
        if db.execute("UPDATE stores SET tier = ?, updated_at = ? WHERE uuid = ?",
                      (tier, utc_now(), store_uuid if is_uuid(store_uuid) else "")) != 1:
            raise NotFound("no such store")
        catalog_cache.changed(db)
        audit.log(db, "store_tier", staff_user["uuid"], store_uuid, tier)


def set_store_suspended(db, staff_user, store_uuid, suspended):
    """Staff suspend or reinstate a store. A suspended store is hidden and cannot sell."""
    require_staff(staff_user)
    flag = 1 if truthy(suspended) else 0
    with db.transaction():
        if db.execute("UPDATE stores SET suspended = ?, updated_at = ? WHERE uuid = ?",
                      (flag, utc_now(), store_uuid if is_uuid(store_uuid) else "")) != 1:
            raise NotFound("no such store")
        catalog_cache.changed(db)
        audit.log(db, "store_suspended" if flag else "store_reinstated", staff_user["uuid"], store_uuid)


def store_commission(db, store):
    """The commission fraction (Decimal) of the store's tier."""
    return config.commission(db, store["tier"])


# -- items -----------------------------------------------------------------------

def _item_json(row):
    return {"uuid": row["uuid"], "store_uuid": row["store_uuid"], "storename": row["storename"],
            "name": row["name"], "description": row["description"],
            "category_id": row["category_id"], "category": row["category"],
            "active": bool(row["active"]), "created_at": row["created_at"],
            "updated_at": row["updated_at"]}


def category_and_descendants(db, category_id):
    """The id and every descendant id of a category (a filter on a parent shows its subtree)."""
    ids, frontier = [int(category_id)], [int(category_id)]
    while frontier:
        marks = ", ".join("?" * len(frontier))
        frontier = [r["id"] for r in db.query(f"SELECT id FROM item_categories WHERE parent_id IN ({marks})",
                                              frontier) if r["id"] not in ids]
        ids += frontier
    return ids


def _item_filters(q, category_id, store_uuid, db=None):
    where = ["i.active = 1", "s.suspended = 0"]
    params = []
    if db is not None:
        hidden = bond.unbonded_stores(db)
        if hidden:
            where.append("i.store_uuid NOT IN (%s)" % ", ".join("?" * len(hidden)))
            params += sorted(hidden)
    if store_uuid is not None:
        where.append("i.store_uuid = ?")
        params.append(store_uuid)
    if category_id is not None:
        ids = category_and_descendants(db, category_id) if db is not None else [int(category_id)]
        where.append("i.category_id IN (%s)" % ", ".join("?" * len(ids)))
        params += ids
    if q:
        where.append("(LOWER(i.name) LIKE ? ESCAPE '!' OR LOWER(i.description) LIKE ? ESCAPE '!')")
        params += [like_pattern(q), like_pattern(q)]
    return " AND ".join(where), params


def _check_q(q):
    if q is None:
        return None
    if not isinstance(q, str) or len(q) > 100:
        raise BadRequest("q is longer than 100 characters", fields={"q": "too long"})
    return q.strip() or None


# The marketplace's orders. Price: the item's cheapest active package, items without one
# last; rating: the mean of the visible review scores, items without reviews last. The
# databases compare these as numbers for ordering only; prices and averages shown are
# computed exactly (Decimal) from the stored strings and integer scores.
SORTS = ("newest", "price_asc", "price_desc", "rating")
_CHEAPEST = ("LEFT JOIN (SELECT item_uuid, MIN(CAST(price_usd AS DECIMAL(12, 2))) AS low FROM packages "
             "WHERE active = 1 GROUP BY item_uuid) pp ON pp.item_uuid = i.uuid ")
_RATED = ("LEFT JOIN (SELECT item_uuid, SUM(score) * 1.0 / COUNT(*) AS mean, COUNT(*) AS n FROM reviews "
          "WHERE hidden = 0 GROUP BY item_uuid) rr ON rr.item_uuid = i.uuid ")
_SORT_SQL = {"newest": ("", "i.id DESC"),
             "price_asc": (_CHEAPEST, "CASE WHEN pp.low IS NULL THEN 1 ELSE 0 END, pp.low ASC, i.id DESC"),
             "price_desc": (_CHEAPEST, "CASE WHEN pp.low IS NULL THEN 1 ELSE 0 END, pp.low DESC, i.id DESC"),
             "rating": (_RATED, "CASE WHEN rr.n IS NULL THEN 1 ELSE 0 END, rr.mean DESC, rr.n DESC, i.id DESC")}


def parse_sort(value):
    """One of SORTS (default newest); 400 naming `sort` otherwise."""
    if value in (None, ""):
        return "newest"
    if value not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}", fields={"sort": "unknown order"})
    return value


def list_items(db, q=None, category_id=None, store_uuid=None, limit=50, offset=0, sort="newest"):
    """Active items of non-suspended stores, newest first (or by `sort`, see SORTS);
    search `q` in name and description."""
    q = _check_q(q)
    joins, order = _SORT_SQL[parse_sort(sort)]
    if store_uuid is not None and not is_uuid(store_uuid):
        raise BadRequest("store_uuid is not a uuid", fields={"store_uuid": "bad"})
    where, params = _item_filters(q, category_id, store_uuid, db)
    rows = db.query(f"SELECT {ITEM_COLUMNS} FROM items i JOIN stores s ON s.uuid = i.store_uuid "
                    f"LEFT JOIN item_categories c ON c.id = i.category_id {joins}WHERE {where} "
                    f"ORDER BY {order} LIMIT ? OFFSET ?", params + [int(limit), int(offset)])
    return [_item_json(r) for r in rows]


def cheapest_prices(db, item_uuids):
    """{item_uuid: the lowest active package price (Decimal)} for the items that have one."""
    uuids = sorted(set(item_uuids))
    out = {}
    if not uuids:
        return out
    rows = db.query("SELECT item_uuid, price_usd FROM packages WHERE active = 1 AND item_uuid IN (%s)"
                    % ", ".join("?" * len(uuids)), uuids)
    for r in rows:
        price = Decimal(r["price_usd"])
        if r["item_uuid"] not in out or price < out[r["item_uuid"]]:
            out[r["item_uuid"]] = price
    return out


def count_items(db, q=None, category_id=None, store_uuid=None):
    q = _check_q(q)
    where, params = _item_filters(q, category_id, store_uuid, db)
    return db.value(f"SELECT COUNT(*) FROM items i JOIN stores s ON s.uuid = i.store_uuid WHERE {where}",
                    params)


def get_item(db, item_uuid, user=None):
    """An item dict with its store; 404 when unknown, inactive or in a suspended store
    (members of the store and staff still see it)."""
    if not is_uuid(item_uuid):
        raise NotFound("no such item")
    row = db.one(f"SELECT {ITEM_COLUMNS}, s.suspended FROM items i JOIN stores s ON s.uuid = i.store_uuid "
                 "LEFT JOIN item_categories c ON c.id = i.category_id WHERE i.uuid = ?", (item_uuid,))
    if row is None:
        raise NotFound("no such item")
    hidden = row["suspended"] or not row["active"] or not bond.is_bonded(db, row["store_uuid"])
    if hidden and not (is_staff(user) or member_role(db, user, row["store_uuid"]) is not None):
        raise NotFound("no such item")
    return _item_json(row)


def create_item(db, user, store_uuid, name, description=None, category_id=None):
    """A store member adds an item. 400 bad fields, 403 not a member, 404 no store."""
    name = text(name, "name", 64, required=True, multiline=False)
    description = text(description, "description", MAX_DESCRIPTION)
    if not is_uuid(store_uuid):
        raise HttpError(400 if not store_uuid else 404,
                        "store_uuid is required" if not store_uuid else "no such store",
                        fields={"store_uuid": "required"})
    category_id = parse_category_id(db, category_id)
    now = utc_now()
    row = {"uuid": str(uuidlib.uuid4()), "store_uuid": store_uuid, "name": name,
           "description": description, "category_id": category_id, "active": 1,
           "created_at": now, "updated_at": now}
    with db.transaction():
        require_member(db, user, store_uuid)
        agreement.require_accepted(db, store_uuid)
        db.insert("items", row)
        catalog_cache.changed(db)
    return get_item(db, row["uuid"], user)


def _listing_changes(name, description, active):
    """The validated name / description / active changes an item or package edit asks for."""
    changes = {}
    if name is not UNCHANGED:
        changes["name"] = text(name, "name", 64, required=True, multiline=False)
    if description is not UNCHANGED:
        changes["description"] = text(description, "description", MAX_DESCRIPTION)
    if active is not UNCHANGED:
        changes["active"] = 1 if truthy(active) else 0
    return changes


def _item_store_uuid(db, item_uuid):
    """The store of an item; 404 when there is no such item."""
    store_uuid = db.value("SELECT store_uuid FROM items WHERE uuid = ?",
                          (item_uuid if is_uuid(item_uuid) else "",))
    if store_uuid is None:
        raise NotFound("no such item")
    return store_uuid


def update_item(db, user, item_uuid, name=UNCHANGED, description=UNCHANGED, category_id=UNCHANGED,
                active=UNCHANGED):
    """A store member edits an item (any of the fields). Returns the item dict."""
    changes = _listing_changes(name, description, active)
    if category_id is not UNCHANGED:
        changes["category_id"] = parse_category_id(db, category_id)
    if not changes:
        raise BadRequest("nothing to change")
    with db.transaction():
        require_member(db, user, _item_store_uuid(db, item_uuid))
        changes["updated_at"] = utc_now()
        db.execute(f"UPDATE items SET {', '.join(k + ' = ?' for k in changes)} WHERE uuid = ?",
                   list(changes.values()) + [item_uuid])
        catalog_cache.changed(db)
    return get_item(db, item_uuid, user)


# -- packages --------------------------------------------------------------------

def _package_json(row):
    return {"uuid": row["uuid"], "item_uuid": row["item_uuid"], "name": row["name"],
            "description": row["description"], "price_usd": row["price_usd"],
            "active": bool(row["active"]), "created_at": row["created_at"],
            "updated_at": row["updated_at"]}


def list_packages(db, item_uuid, user=None, include_inactive=False):
    """Packages of a visible item (404 otherwise), oldest first."""
    get_item(db, item_uuid, user)
    where = "" if include_inactive else " AND p.active = 1"
    rows = db.query(f"SELECT {PACKAGE_COLUMNS} FROM packages p WHERE p.item_uuid = ?{where} ORDER BY p.id",
                    (item_uuid,))
    return [_package_json(r) for r in rows]


def package_for_sale(db, package_uuid):
    """The package row joined with its item and store, for checkout.

    404 unknown/inactive package, 409 the store is suspended.
    """
    if not is_uuid(package_uuid):
        raise NotFound("no such package")
    row = db.one("SELECT p.uuid, p.item_uuid, p.name, p.description, p.price_usd, p.active, "
                 "i.name AS item_name, i.active AS item_active, i.store_uuid, s.storename, s.tier, "
                 "s.suspended FROM packages p JOIN items i ON i.uuid = p.item_uuid "
                 "JOIN stores s ON s.uuid = i.store_uuid WHERE p.uuid = ?", (package_uuid,))
    if row is None or not row["active"] or not row["item_active"]:
        raise NotFound("no such package")
    if row["suspended"]:
        raise Conflict("this store is suspended and cannot sell")
    if not bond.is_bonded(db, row["store_uuid"]):
        raise Conflict("this store's deposits do not hold the vendor bond; it cannot sell until they do")
    return row


def get_package(db, package_uuid, user=None):
    if not is_uuid(package_uuid):
        raise NotFound("no such package")
    row = db.one(f"SELECT {PACKAGE_COLUMNS} FROM packages p WHERE p.uuid = ?", (package_uuid,))
    if row is None:
        raise NotFound("no such package")
    item = get_item(db, row["item_uuid"], user)
    if not row["active"] and not (is_staff(user) or member_role(db, user, item["store_uuid"])):
        raise NotFound("no such package")
    return _package_json(row)


def create_package(db, user, item_uuid, name, description=None, price_usd=None):
    """A store member adds a package priced in USD. Returns the package dict."""
    name = text(name, "name", 64, required=True, multiline=False)
    description = text(description, "description", MAX_DESCRIPTION)
    if price_usd in (None, ""):
        raise BadRequest("price_usd is required", fields={"price_usd": "required"})
    price = parse_price_usd(price_usd)
    if not item_uuid:
        raise BadRequest("item_uuid is required", fields={"item_uuid": "required"})
    now = utc_now()
    row = {"uuid": str(uuidlib.uuid4()), "item_uuid": item_uuid, "name": name,
           "description": description, "price_usd": price, "active": 1,
           "created_at": now, "updated_at": now}
    with db.transaction():
        require_member(db, user, _item_store_uuid(db, item_uuid))
        db.insert("packages", row)
        db.insert("package_prices", {"package_uuid": row["uuid"], "price_usd": price, "created_at": now})
        catalog_cache.changed(db)
    return _package_json(row)


def update_package(db, user, package_uuid, name=UNCHANGED, description=UNCHANGED, price_usd=UNCHANGED,
                   active=UNCHANGED):
    """A store member edits a package; a new price appends a package_prices row."""
    changes = _listing_changes(name, description, active)
    if price_usd is not UNCHANGED:
        changes["price_usd"] = parse_price_usd(price_usd)
    if not changes:
        raise BadRequest("nothing to change")
    with db.transaction():
        row = db.one("SELECT p.uuid, p.price_usd, i.store_uuid FROM packages p "
                     "JOIN items i ON i.uuid = p.item_uuid WHERE p.uuid = ?",
                     (package_uuid if is_uuid(package_uuid) else "",))
        if row is None:
            raise NotFound("no such package")
        require_member(db, user, row["store_uuid"])
        now = changes["updated_at"] = utc_now()
        db.execute(f"UPDATE packages SET {', '.join(k + ' = ?' for k in changes)} WHERE uuid = ?",
                   list(changes.values()) + [package_uuid])
        catalog_cache.changed(db)
        if "price_usd" in changes and changes["price_usd"] != row["price_usd"]:
            db.insert("package_prices", {"package_uuid": package_uuid, "price_usd": changes["price_usd"],
                                         "created_at": now})
    return get_package(db, package_uuid, user)


def price_history(db, package_uuid):
    return db.query("SELECT price_usd, created_at FROM package_prices WHERE package_uuid = ? ORDER BY id",
                    (package_uuid,))


def package_quotes(db, price_usd, tokens=None):
    """A live quote per active token: {chain_id, currency, decimals, required_amount (token
    units string), usd_rate} or, when the rate is missing/stale, {..., required_amount: None,
    error}. Never raises for a rate problem (the order itself would get the 409)."""
    return _quotes(price_usd, _token_rates(db, tokens))


def add_quotes(db, packages, tokens=None):
    """Set p['quotes'] (as package_quotes) on every package, looking each rate up once."""
    rates = _token_rates(db, tokens)
    for p in packages:
        p["quotes"] = _quotes(p["price_usd"], rates)
    return packages


def _token_rates(db, tokens=None):
    """[(token, usd rate or None, error message or None)] for the active tokens."""
    out = []
    for token in (tokens if tokens is not None else tokmod.active_tokens(db)):
        try:
            out.append((token, pricing.quotable_rate(db, token)[0], None))
        except HttpError as e:
            out.append((token, None, e.message))
    return out


def _quotes(price_usd, rates):
    out = []
    for token, rate, error in rates:
        entry = {"chain_id": token["chain_id"], "currency": token["symbol"],
                 "contract_address": token["contract_address"], "decimals": token["decimals"]}
        if error is not None:
            entry.update({"required_amount": None, "usd_rate": None, "error": error})
        else:
            amount = pricing.amount_for(price_usd, rate, token["decimals"])
            entry.update({"required_amount": pricing.format_amount(amount, token["decimals"]),
                          "usd_rate": rate, "error": None})
        out.append(entry)
    return out


def member_items(db, user, store_uuid, limit=50, offset=0):
    """All items of a store (inactive ones too) for its members and staff, newest first.

    Added for the vendor pages (item list on /item/edit.php). 404 unless member or staff.
    """
    row = store_row(db, store_uuid)
    if row is None or not (is_staff(user) or member_role(db, user, row["uuid"]) is not None):
        raise NotFound("no such store")
    rows = db.query(f"SELECT {ITEM_COLUMNS} FROM items i JOIN stores s ON s.uuid = i.store_uuid "
                    "LEFT JOIN item_categories c ON c.id = i.category_id WHERE i.store_uuid = ? "
                    "ORDER BY i.id DESC LIMIT ? OFFSET ?", (row["uuid"], int(limit), int(offset)))
    return [_item_json(r) for r in rows]
