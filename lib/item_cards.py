"""What an item's card shows besides the item: its first image, its lowest price in USD
and its rating (lib.images, lib.catalog, lib.reviews), looked up once per page of items."""
from lib import catalog, images, reviews


def add_card_facts(db, items):
    """Set `image` (the first image or None), `price_from_usd` (the cheapest active
    package's USD price as a string, or None) and `rating` on each item dict."""
    prices = catalog.cheapest_prices(db, [i["uuid"] for i in items])
    for i in items:
        low = prices.get(i["uuid"])
        i["price_from_usd"] = f"{low:.2f}" if low is not None else None
    images.add_first_images(db, items)
    reviews.add_ratings(db, items)
    return items
