"""GET /payments.php : my purchases, my stores' sales (with dispatch), and for staff all orders.

`view` = purchases (default), sales, all (staff). Lists come from lib.orders.list_orders,
the same scoped query as GET /api/transactions.php.
"""
from lib import catalog, orders, web
from lib.db import get_db
from lib.http import HttpError

SCOPE = {"purchases": "buyer", "sales": "vendor", "all": "all"}


def get(request):
    user = web.login(request)
    db = get_db()
    views = [("purchases", "My purchases")]
    if catalog.user_store_uuids(db, user["uuid"]):
        views.append(("sales", "My stores' sales"))
    if catalog.is_staff(user):
        views.append(("all", "All orders"))
    view = request.arg("view", "purchases")
    if view not in dict(views):
        raise HttpError(400 if view not in SCOPE else 403, f"view must be one of {', '.join(k for k, _ in views)}")
    pager = web.pager(request, lambda limit, offset: orders.list_orders(
        db, user, limit=limit, offset=offset, scope=SCOPE[view]))
    if view == "sales":
        completed = [o for o in pager.rows if o["current_status"] == "COMPLETED"]
        actions = orders.allowed_actions_many(db, user, completed)
        for o in pager.rows:
            o["can_dispatch"] = "dispatch" in actions.get(o["uuid"], ())
    return web.page(request, "payments.html", "Orders", views=views, view=view, pager=pager,
                    nav_active="payments", loop_last=lambda key, seq: key == seq[-1][0])
