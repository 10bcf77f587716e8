"""A small marketplace for the page and browser tests, built through lib/ (the same code
paths as the API): users of every role, a store with an item and a package, and ETH on
the development chain 31337 with a manual USD price."""
from lib import catalog, tokens
from tests.factories import make_user

DEV_CHAIN = 31337
ETH_USD = "2000"


def accept_eth(db, manual_usd_price=ETH_USD):
    """ETH on chain 31337, active (as cron leaves it after verifying), priced by hand.
    The caller sets ALLOW_DEV_CHAIN=1 (the `dev_chain` fixture)."""
    token = tokens.add_token(db, DEV_CHAIN, "ETH", "", manual_usd_price=manual_usd_price)
    tokens.set_status(db, token["id"], "active")
    return tokens.get_token(db, token["id"])


def make_shop(db, storename="Acme", item_name="Widget", price_usd="20.00", vendor="vendor1",
              buyer="buyer1"):
    """Users (buyer, vendor, staff, admin, outsider), a store, an item, a package, ETH."""
    shop = {
        "buyer": make_user(db, buyer),
        "vendor": make_user(db, vendor),
        "staff": make_user(db, "staff1", role="staff"),
        "admin": make_user(db, "admin1", role="admin"),
        "outsider": make_user(db, "outsider1"),
    }
    store = catalog.create_store(db, shop["vendor"], storename, "We sell widgets.", agreed=True)
    shop["vendor"]["role"] = "vendor"
    category = db.value("SELECT id FROM item_categories WHERE name = 'Digital goods'")
    item = catalog.create_item(db, shop["vendor"], store["uuid"], item_name, "A fine widget.", category)
    package = catalog.create_package(db, shop["vendor"], item["uuid"], "Single", "One widget.", price_usd)
    shop.update(store=store, item=item, package=package, token=accept_eth(db), category_id=category)
    return shop
