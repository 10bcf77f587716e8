"""GET /admin/ : the admin dashboard linking configuration, tokens and users."""
from lib import admin_pages, audit, staff, tokens, web
from lib.db import get_db


def get(request):
    admin_pages.require_admin(request)
    db = get_db()
    all_tokens = tokens.list_tokens(db)
    return web.page(request, "admin/index.html", "Admin", stats=staff.stats(db), token_count=len(all_tokens),
                    active_tokens=sum(1 for t in all_tokens if t["status"] == "active"),
                    recent=audit.recent(db, limit=20), nav_active="admin", admin_tab="index")
