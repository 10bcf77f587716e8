"""Seed the demo database: an admin, staff, a vendor with a store and items, a buyer,
and ETH on the local chain 31337 priced at a fixed $2,000 (a test network, so the
price is set by hand instead of fetched). Run by `make demo` (demo/run.py)."""
from demo import common

ITEMS = [
    ("Field guide to escrow", "Digital goods", "A short ebook on how escrow protects buyers and sellers.",
     [("PDF", "Instant download link after dispatch.", "4.99")]),
    ("Marketplace T-shirt", "Physical goods", "Organic cotton, printed locally.",
     [("Size M", None, "19.00"), ("Size L", None, "21.00")]),
    ("Code review (1 hour)", "Services", "An hour of review of your smart contract by a human.",
     [("One hour", "Scheduled within a week.", "120.00")]),
]


def seed(db, vendor_wallet=None, buyer_wallet=None):
    """Create the demo's people, store, items and token; returns (people, store)."""
    from lib import catalog, tokens, users
    vendor_wallet = vendor_wallet or common.dev_account(common.VENDOR_WALLET)
    buyer_wallet = buyer_wallet or common.dev_account(common.BUYER_WALLET)
    people = {}
    for name, role in (("admin", "admin"), ("staff", "staff"), ("vendor", "customer"), ("buyer", "customer")):
        people[name] = users.create_user(db, name, common.PASSWORD, role=role)
    vendor, buyer = people["vendor"], people["buyer"]
    store = catalog.create_store(db, vendor, "Demo Store", "Everything here is for the demo: pay with "
                                 "the local chain's ETH.", agreed=True)
    catalog.update_store(db, vendor, store["uuid"], payout_address=vendor_wallet)
    users.set_addresses(db, buyer["uuid"], buyer_wallet, None)
    categories = {c["name"]: c["id"] for c in catalog.list_categories(db)}
    for name, category, description, packages in ITEMS:
        item = catalog.create_item(db, vendor, store["uuid"], name, description, categories[category])
        for pname, pdescription, price in packages:
            catalog.create_package(db, vendor, item["uuid"], pname, pdescription, price)
    token = tokens.add_token(db, common.CHAIN_ID, "ETH", "", manual_usd_price="2000")
    tokens.set_status(db, token["id"], "active")
    return people, store


def main():
    common.use_env()
    from lib import db as dbmod, migrate
    db = dbmod.from_env()
    migrate.init(db)
    migrate.seed_defaults(db)
    seed(db)
    print("demo data seeded")


if __name__ == "__main__":
    main()
