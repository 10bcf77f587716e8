"""The HTML pages, in-process on SQLite and MariaDB: the status code of every page for
every role, forms refused without their CSRF token (and changing nothing), and
hostile names stored and shown as text everywhere they appear."""
import os
import re

import pytest

from lib import deposits, orders, status_machine as sm
from tests.client import Client
from tests.factories import login
from tests.ui_data import make_shop

HTML = {"Accept": "text/html,application/xhtml+xml"}
ROLES = ("anonymous", "customer", "vendor", "staff", "admin")
LOGIN_AS = {"customer": "buyer1", "vendor": "vendor1", "staff": "staff1", "admin": "admin1"}


@pytest.fixture
def settings():
    """The pages are exercised with ETH on the development chain 31337."""
    return {"ALLOW_DEV_CHAIN": "1"}


def browser(app, role):
    """A client logged in as the user of `role` (None for anonymous); returns (client, csrf)."""
    c = Client(app)
    token = login(c, LOGIN_AS[role]) if role != "anonymous" else None
    return c, token


def paid_order(db, shop):
    """An order of the buyer, paid (COMPLETED) with an escrow address, as cron leaves it."""
    result = orders.create_order(db, shop["buyer"], shop["package"]["uuid"], "ETH", 31337)
    uuid = result["uuid"]
    address = "0x" + uuid.replace("-", "")[:32] + "00000000"
    db.execute("UPDATE evm_transactions SET escrow_address = ?, derivation_index = ?, received_amount = "
               "required_amount WHERE transaction_uuid = ?", (address, abs(hash(uuid)) % 2**31, uuid))
    sm.append_status(db, uuid, sm.PENDING, "0", "escrow address assigned")
    required = db.value("SELECT required_amount FROM evm_transactions WHERE transaction_uuid = ?", (uuid,))
    sm.append_status(db, uuid, sm.COMPLETED, required, "paid")
    return uuid


def world(db):
    shop = make_shop(db)
    order = orders.create_order(db, shop["buyer"], shop["package"]["uuid"], "ETH", 31337)["uuid"]
    disputed = paid_order(db, shop)
    orders.take_action(db, shop["buyer"], disputed, "dispute", comment="never arrived")
    dispute = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (disputed,))
    deposit = deposits.open_deposit(db, shop["vendor"], shop["store"]["uuid"], "ETH", 31337)
    shop.update(order=order, disputed=disputed, dispute=dispute, deposit=deposit["uuid"])
    from lib import tickets
    shop["ticket"] = tickets.create(db, shop["buyer"], "Where is it?", "Not here yet.", order)["uuid"]
    return shop


def matrix(shop):
    """path -> expected status for (anonymous, customer=the buyer, vendor=the store owner, staff, admin)."""
    everyone = (200,) * 5
    session = (303, 200, 200, 200, 200)
    store_members = (303, 403, 200, 403, 403)
    staff = (303, 403, 403, 200, 200)
    admin = (303, 403, 403, 403, 200)
    return {
        "/": everyone,
        "/marketplace.php": everyone,
        "/marketplace.php?q=widget&category=%d" % shop["category_id"]: everyone,
        "/vendors.php": everyone,
        "/store.php?uuid=" + shop["store"]["uuid"]: everyone,
        "/item.php?uuid=" + shop["item"]["uuid"]: everyone,
        "/login.php": everyone,
        "/register.php": everyone,
        "/recover.php": everyone,
        "/reset.php": (404,) * 5,  # without a live reset_token (tests/test_account_recovery.py)
        "/recover-email.php": (404,) * 5,  # email is not configured here (tests/test_email.py)
        "/verify-email.php": (404,) * 5,
        "/logout.php": (303, 200, 200, 200, 200),  # a confirmation form; anonymous: 303 to /
        "/book.php?package_uuid=" + shop["package"]["uuid"]: (303, 200, 403, 200, 200),
        "/payment.php?uuid=" + shop["order"]: session,
        "/payment.php?uuid=" + shop["disputed"]: session,
        "/payments.php": session,
        "/payments.php?view=sales": (303, 403, 200, 403, 403),
        "/payments.php?view=all": (303, 403, 403, 200, 200),
        "/dispute.php?uuid=" + shop["dispute"]: session,
        "/create-store.php": session,
        "/settings/user.php": session,
        "/settings/two-factor.php": session,
        "/referrals.php": session,
        "/messages.php": session,
        "/messages.php?with=outsider1": session,
        "/messages.php?order=" + shop["disputed"]: session,
        "/notifications.php": session,
        "/settings/store.php": store_members,
        "/item/edit.php": store_members,
        "/item/edit.php?uuid=" + shop["item"]["uuid"]: store_members,
        "/item/edit.php?store_uuid=" + shop["store"]["uuid"]: store_members,
        "/deposits.php": store_members,
        "/deposits/add.php": store_members,
        "/deposits/withdraw.php?uuid=" + shop["deposit"]: (303, 404, 200, 200, 200),
        "/staff/": staff,
        "/staff/disputes.php": staff,
        "/staff/disputes.php?status=open": staff,
        "/staff/payouts.php": staff,
        "/staff/stores.php": staff,
        "/staff/users.php": staff,
        "/staff/stats.php": staff,
        "/staff/categories.php": staff,
        "/staff/deposits.php": staff,
        "/staff/deposits.php?limit=1&offset=0": staff,
        "/verification/agreement.php": everyone,
        "/verification/plan.php": everyone,
        # support tickets and store warnings; the ticket is the buyer's
        "/support.php": session,
        "/support/new.php": session,
        "/support/ticket.php?uuid=" + shop.get("ticket", ""): (303, 200, 404, 200, 200),
        "/staff/tickets.php": staff,
        "/staff/tickets.php?status=all": staff,
        "/staff/tickets.php?uuid=" + shop.get("ticket", ""): staff,
        "/staff/warnings.php": staff,
        "/staff/warnings.php?retired=1": staff,
        "/admin/": admin,
        "/admin/config.php": admin,
        "/admin/tokens.php": admin,
        "/admin/users.php": admin,
        # reviews and profiles: the review form is the buyer's alone (the order is not released yet)
        "/review/add.php?transaction_uuid=" + shop["order"]: (303, 200, 404, 404, 404),
        "/user.php?username=vendor1": everyone,
        # exports: the form for vendors and staff; a customer reads why there is none
        "/exports.php": session,
    }


def test_every_page_status_per_role(db, app):
    shop = world(db)
    expected = matrix(shop)
    wrong = []
    for i, role in enumerate(ROLES):
        c, _ = browser(app, role)
        for path, codes in expected.items():
            r = c.get(path, headers=HTML)
            if r.status != codes[i]:
                wrong.append(f"{role} GET {path}: {r.status}, expected {codes[i]}: {r.text[:200]!r}")
            elif r.status == 200:
                assert r.header("Content-Type").startswith("text/html"), path
                assert "Traceback" not in r.text
            elif r.status == 303:
                where = "/" if path == "/logout.php" else "/login.php?next="
                assert r.header("Location").startswith(where), (path, r.header("Location"))
    assert not wrong, "\n".join(wrong)


PUBLIC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "public")
# Scripts outside public/api/ that render no HTML page for GET, and why.
NOT_HTML_PAGES = {"/health.php": "JSON health check", "/admin/tokens-remove.php": "POST only"}
NOT_HTML_PAGES["/metrics.php"] = "Prometheus text, only for METRICS_ALLOW (tests/test_metrics.py)"
# Scripts with a POST handled by the accounts area's own tests (tests/test_accounts.py).
ACCOUNT_POSTS = {"/login.php", "/register.php", "/logout.php", "/recover.php", "/reset.php", "/recover-email.php"}


def public_pages():
    """{url: set of methods} for every script under public/ except the JSON API."""
    pages = {}
    for folder, dirs, files in os.walk(PUBLIC):
        dirs[:] = [d for d in dirs if d not in ("api", "static", "__pycache__")]
        for name in files:
            if not name.endswith(".py") or name.startswith(("_", ".")):
                continue
            rel = os.path.relpath(os.path.join(folder, name), PUBLIC)[:-3].replace(os.sep, "/")
            if rel == "index":
                url = "/"
            elif rel.endswith("/index"):
                url = "/" + rel[:-len("index")]
            else:
                url = "/" + rel.replace("_", "-") + ".php"
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                text = f.read()
            pages[url] = {m for m in ("get", "post") if re.search(rf"^def {m}\(", text, re.M)}
    return pages


def test_the_matrix_and_the_csrf_list_cover_every_page():
    """A new page without a row in matrix() (GET) or form_posts() (POST) fails here."""
    pages = public_pages()
    assert len(pages) >= 30 and "/payment.php" in pages and "/staff/" in pages, sorted(pages)
    fake = {k: {"uuid": "u"} for k in ("store", "item", "package")}
    fake.update(order="o", disputed="d", dispute="x", deposit="p", category_id=1, token={"id": 1},
                outsider={"uuid": "o"})
    in_matrix = {path.split("?")[0] for path in matrix(fake)}
    in_posts = {path.split("?")[0] for _role, path, _fields in form_posts(fake)}
    no_row = sorted(u for u, methods in pages.items()
                    if "get" in methods and u not in in_matrix and u not in NOT_HTML_PAGES)
    assert not no_row, f"pages without a row in matrix(): {no_row}"
    no_csrf = sorted(u for u, methods in pages.items()
                     if "post" in methods and u not in in_posts and u not in ACCOUNT_POSTS)
    assert not no_csrf, f"forms without a row in form_posts(): {no_csrf}"
    assert not (in_matrix - set(pages)), in_matrix - set(pages)


def test_outsiders_do_not_see_orders_and_disputes(db, app):
    shop = world(db)
    c = Client(app)
    login(c, "outsider1")
    for path in ("/payment.php?uuid=" + shop["order"], "/dispute.php?uuid=" + shop["dispute"],
                 "/deposits/withdraw.php?uuid=" + shop["deposit"]):
        r = c.get(path, headers=HTML)
        assert r.status == 404, (path, r)
        assert shop["order"] not in r.text


def test_bad_query_parameters_get_4xx_pages(db, app):
    shop = world(db)
    c, _ = browser(app, "customer")
    cases = {"/store.php": 400, "/store.php?uuid=nope": 404, "/item.php?uuid=" + shop["store"]["uuid"]: 404,
             "/payment.php": 400, "/payment.php?uuid=x": 404, "/book.php": 400, "/book.php?package_uuid=x": 404,
             "/marketplace.php?category=999": 400, "/marketplace.php?category=abc": 400,
             "/marketplace.php?offset=-1": 400, "/marketplace.php?q=" + "x" * 101: 400,
             "/dispute.php?uuid=" + shop["order"]: 404, "/payments.php?view=bogus": 400,
             "/no-such-page.php": 404}
    for path, status in cases.items():
        r = c.get(path, headers=HTML)
        assert r.status == status, (path, r)
        assert r.header("Content-Type").startswith("text/html"), path
        assert '<nav class="bar"' in r.text  # the error page uses the site layout


# -- CSRF ------------------------------------------------------------------------

def form_posts(shop):
    """(role, path, fields) of every HTML form that changes something."""
    return [
        ("customer", "/book.php?package_uuid=" + shop["package"]["uuid"], {"token": "31337:ETH"}),
        ("customer", "/payment.php?uuid=" + shop["order"], {"action": "cancel"}),
        ("customer", "/dispute.php?uuid=" + shop["dispute"], {"action": "claim", "claim": "hello"}),
        ("customer", "/create-store.php", {"storename": "Shop2", "vendorship_agree": "1"}),
        ("customer", "/settings/user.php", {"form": "addresses", "refund_address": ""}),
        ("customer", "/settings/two-factor.php", {"form": "begin"}),
        ("customer", "/messages.php", {"action": "send", "to": "vendor1", "body": "hello"}),
        ("customer", "/messages.php?order=" + shop["order"], {"action": "send", "body": "hello"}),
        ("customer", "/messages.php?with=vendor1", {"action": "block", "username": "vendor1"}),
        ("customer", "/notifications.php", {"action": "read_all"}),
        ("vendor", "/settings/store.php", {"description": "changed"}),
        ("vendor", "/item/edit.php?store_uuid=" + shop["store"]["uuid"],
         {"form": "item_create", "store_uuid": shop["store"]["uuid"], "name": "New"}),
        ("vendor", "/deposits/add.php", {"store_uuid": shop["store"]["uuid"], "token": "31337:ETH"}),
        ("vendor", "/deposits/withdraw.php?uuid=" + shop["deposit"], {"deposit_uuid": shop["deposit"]}),
        ("staff", "/dispute.php?uuid=" + shop["dispute"], {"action": "resolve", "resolution": "refund"}),
        ("staff", "/staff/stores.php", {"store_uuid": shop["store"]["uuid"], "action": "suspend"}),
        ("staff", "/staff/users.php", {"user_uuid": shop["outsider"]["uuid"], "banned": "1"}),
        ("staff", "/staff/payouts.php", {"action": "retry", "intent_uuid": shop["order"]}),
        ("staff", "/staff/categories.php", {"action": "add", "name": "Fresh"}),
        ("vendor", "/verification/agreement.php", {"action": "accept"}),
        ("admin", "/verification/agreement.php", {"action": "publish", "body": "New terms"}),
        ("customer", "/support/new.php", {"subject": "Help", "body": "please"}),
        ("customer", "/support/ticket.php?uuid=" + shop.get("ticket", ""), {"body": "more"}),
        ("staff", "/staff/tickets.php", {"action": "close", "uuid": shop.get("ticket", "")}),
        ("staff", "/staff/warnings.php", {"action": "add", "store": "Acme", "reason": "late"}),
        ("admin", "/admin/config.php", {"pending_duration": "1h"}),
        ("admin", "/admin/tokens.php", {"chain_id": "31337", "symbol": "TT",
                                        "contract_address": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}),
        ("admin", "/admin/tokens-remove.php", {"id": str(shop["token"]["id"])}),
        ("admin", "/admin/users.php", {"user_uuid": shop["outsider"]["uuid"], "role": "staff"}),
        ("customer", "/review/add.php?transaction_uuid=" + shop["order"], {"score": "5"}),
        ("vendor", "/review/manage.php", {"form": "reply", "review_uuid": shop["order"], "reply": "thanks"}),
        ("staff", "/review/manage.php", {"form": "hide", "review_uuid": shop["order"], "reason": "spam"}),
    ]


def snapshot(db):
    tables = ("transactions", "transaction_statuses", "transaction_intents", "dispute_claims", "disputes",
              "stores", "items", "packages", "deposits", "deposit_withdraw_intents", "config",
              "accepted_tokens", "shipping_statuses", "item_categories", "vendor_agreements",
              "messages", "message_threads", "user_blocks")
    tables += ("support_tickets", "ticket_messages", "ticket_statuses", "store_warnings")
    counts = {t: db.value(f"SELECT COUNT(*) FROM {t}") for t in tables}
    counts["users"] = db.query("SELECT uuid, role, banned, refund_address FROM users ORDER BY id")
    counts["store_rows"] = db.query("SELECT uuid, description, suspended FROM stores ORDER BY id")
    return counts


def each_form(app, shop):
    """(role, client, CSRF token, path, fields) for every form of form_posts, one client
    logged in per role."""
    clients = {}
    for role, path, fields in form_posts(shop):
        if role not in clients:
            clients[role] = browser(app, role)
        yield (role, *clients[role], path, fields)


def test_forms_are_refused_without_csrf_token(db, app):
    shop = world(db)
    before = snapshot(db)
    for role, c, _token, path, fields in each_form(app, shop):
        r = c.post(path, data=fields, headers=HTML)
        assert r.status == 403, (role, path, r)
        assert "CSRF" in r.text, (path, r.text[:300])
        r = c.post(path, data=dict(fields, csrf_token="0" * 64), headers=HTML)
        assert r.status == 403, (role, path, r)
    assert snapshot(db) == before


def test_every_form_carries_the_csrf_token(db, app):
    shop = world(db)
    for role, path in (("customer", "/book.php?package_uuid=" + shop["package"]["uuid"]),
                       ("customer", "/settings/user.php"), ("customer", "/payment.php?uuid=" + shop["order"]),
                       ("vendor", "/item/edit.php?uuid=" + shop["item"]["uuid"]), ("vendor", "/settings/store.php"),
                       ("staff", "/staff/stores.php"), ("staff", "/dispute.php?uuid=" + shop["dispute"]),
                       ("staff", "/staff/categories.php"), ("admin", "/verification/agreement.php"),
                       ("admin", "/admin/tokens.php"), ("admin", "/admin/config.php"), ("admin", "/admin/users.php"),
                       ("customer", "/support/new.php"), ("customer", "/support/ticket.php?uuid=" + shop["ticket"]),
                       ("staff", "/staff/tickets.php?uuid=" + shop["ticket"]), ("staff", "/staff/warnings.php")):
        c, token = browser(app, role)
        text = c.get(path, headers=HTML).text
        forms = re.findall(r'<form method="post".*?</form>', text, re.S)
        assert forms, path
        for form in forms:
            assert f'name="csrf_token" value="{token}"' in form, (path, form[:200])


# -- hostile names -----------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
JS_LINK = "javascript:alert(3)"


def hostile_world(db):
    """world() with hostile text in every free-text field a page can show: item name and
    description, package name and description, store description, dispatch note, dispute
    comment and claims. (User, store and token names are refused: see the test below.)"""
    from lib import catalog, disputes
    shop = make_shop(db, item_name=SCRIPT)
    store = shop["store"]
    catalog.update_store(db, shop["vendor"], store["uuid"], description=f"{JS_LINK} {IMG} {SCRIPT}")
    catalog.update_item(db, shop["vendor"], shop["item"]["uuid"], description=f"{IMG}\n{JS_LINK}")
    catalog.update_package(db, shop["vendor"], shop["package"]["uuid"], name=IMG[:64], description=SCRIPT)
    unpaid = orders.create_order(db, shop["buyer"], shop["package"]["uuid"], "ETH", 31337)["uuid"]
    order = paid_order(db, shop)
    orders.take_action(db, shop["vendor"], order, "dispatch", comment=IMG)
    orders.take_action(db, shop["buyer"], order, "dispute", comment=SCRIPT + JS_LINK)
    dispute = db.value("SELECT dispute_uuid FROM transactions WHERE uuid = ?", (order,))
    disputes.add_claim(db, shop["vendor"], dispute, IMG + " " + JS_LINK)
    deposit = deposits.open_deposit(db, shop["vendor"], shop["store"]["uuid"], "ETH", 31337)
    shop.update(order=unpaid, disputed=order, dispute=dispute, deposit=deposit["uuid"])
    from lib import store_warnings, tickets
    ticket = tickets.create(db, shop["buyer"], SCRIPT, f"{IMG}\n{JS_LINK}", order)
    tickets.reply(db, shop["staff"], ticket["uuid"], SCRIPT + IMG)
    store_warnings.add(db, shop["staff"], store["uuid"], f"{SCRIPT} {IMG} {JS_LINK}")
    shop["ticket"] = ticket["uuid"]
    return shop


def assert_inert(text, path):
    """No hostile string survives as markup; each shows as escaped text."""
    assert "<script>alert" not in text, path
    assert "<img src=x" not in text, path
    assert 'href="javascript:' not in text.lower() and "href='javascript:" not in text.lower(), path
    assert "src=\"javascript:" not in text.lower(), path


def test_hostile_names_are_shown_as_text_everywhere(db, app):
    """Every page of the matrix, for every role that may see it: hostile text is inert."""
    shop = hostile_world(db)
    expected = matrix(shop)
    seen = {SCRIPT: set(), IMG: set(), JS_LINK: set()}
    for i, role in enumerate(ROLES):
        c, _ = browser(app, role)
        for path, codes in expected.items():
            if codes[i] != 200:
                continue
            r = c.get(path, headers=HTML)
            assert r.status == 200, (role, path, r)
            assert_inert(r.text, path)
            if "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text:
                seen[SCRIPT].add(path)
            if "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in r.text:
                seen[IMG].add(path)
            if JS_LINK in r.text:
                seen[JS_LINK].add(path)
    # Each hostile string is displayed (escaped) where its field appears, never as markup.
    item, store = "/item.php?uuid=" + shop["item"]["uuid"], "/store.php?uuid=" + shop["store"]["uuid"]
    disputed, dispute = "/payment.php?uuid=" + shop["disputed"], "/dispute.php?uuid=" + shop["dispute"]
    assert {"/", "/marketplace.php", item, store, disputed, "/payments.php", "/payments.php?view=all",
            "/item/edit.php", "/book.php?package_uuid=" + shop["package"]["uuid"]} <= seen[SCRIPT], seen[SCRIPT]
    assert {item, disputed, dispute, "/book.php?package_uuid=" + shop["package"]["uuid"]} <= seen[IMG], seen[IMG]
    assert {store, item, dispute, "/vendors.php"} <= seen[JS_LINK], seen[JS_LINK]


def test_names_that_could_carry_markup_are_refused(db, app):
    """User names, store names and token symbols take no markup characters at all (400)."""
    from lib import catalog, tokens, users
    from lib.http import HttpError
    shop = make_shop(db)
    for bad in (SCRIPT[:16], IMG[:16], "javascript:x", "a b<"):
        with pytest.raises(HttpError) as e:
            users.create_user(db, bad, "password123")
        assert e.value.status == 400
        with pytest.raises(HttpError) as e:
            catalog.create_store(db, shop["outsider"], bad, "x", agreed=True)
        assert e.value.status == 400
        with pytest.raises(HttpError) as e:
            tokens.add_token(db, 31337, bad, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
        assert e.value.status == 400
    assert db.value("SELECT COUNT(*) FROM stores") == 1
    assert db.value("SELECT COUNT(*) FROM accepted_tokens") == 1


def test_hostile_input_in_forms_is_echoed_escaped(db, app):
    shop = make_shop(db)
    c, token = browser(app, "vendor")
    r = c.post("/item/edit.php?store_uuid=" + shop["store"]["uuid"], headers=HTML,
               data={"csrf_token": token, "form": "item_create", "store_uuid": shop["store"]["uuid"],
                     "name": IMG + "x" * 64, "description": SCRIPT})
    assert r.status == 400, r
    assert_inert(r.text, "item_create error")
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in r.text  # the value is kept in the form
    assert 'class="field-error"' in r.text and "at most 64 characters" in r.text
    c2, token2 = browser(app, "customer")
    r = c2.post("/settings/user.php", headers=HTML,
                data={"csrf_token": token2, "form": "addresses", "refund_address": IMG, "payout_address": ""})
    assert r.status == 400, r
    assert_inert(r.text, "settings error")
    assert 'id="refund_address-error"' in r.text
    assert db.value("SELECT refund_address FROM users WHERE username = 'buyer1'") is None


JUNK = [None, 7, 1.5, True, [], ["x"], {"a": 1}, "", " ", "x" * 5000, "\x00\x01", "' OR 1=1 --", "../../etc",
        "0x" + "f" * 40, "-1", "99999999999999999999999"]


def test_junk_input_gets_4xx_never_500(db, app):
    """Every form, every field, any JSON type or odd string: a clear 4xx (or success), never a 500."""
    shop = world(db)
    for role, c, token, path, fields in each_form(app, shop):
        names = list(fields) + ["csrf_token", "form", "action"]
        for name in names:
            for junk in JUNK:
                body = dict(fields, csrf_token=token)
                body[name] = junk
                r = c.request("POST", path, json_body=body, headers=HTML)
                assert r.status < 500, (role, path, name, junk, r.text[:300])
        for query in ("?uuid=%ff", "?offset=99999999999999999999", "?limit=0", "?uuid[]=1", "?q=%00"):
            r = c.get(path.split("?")[0] + query, headers=HTML)
            assert r.status < 500, (role, path, query, r.text[:300])
        r = c.request("POST", path, body=b"\xff\xfe=\x00", content_type="application/x-www-form-urlencoded",
                      headers=dict(HTML, **{"X-CSRF-Token": token}))
        assert r.status == 400, (path, r)


# -- screen readers ------------------------------------------------------------------

class _Controls:
    """Collects the form controls of a page and the ids its <label for=...> name."""

    def __init__(self, text):
        from html.parser import HTMLParser
        self.controls, self.label_for, self.unlabelled = [], set(), []
        depth = [0]
        outer = self

        class P(HTMLParser):
            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if tag == "label":
                    depth[0] += 1
                    if a.get("for"):
                        outer.label_for.add(a["for"])
                elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
                    outer.controls.append((tag, a, depth[0] > 0))

            def handle_endtag(self, tag):
                if tag == "label":
                    depth[0] -= 1

        P().feed(text)
        for tag, a, wrapped in self.controls:
            if not (wrapped or a.get("aria-label") or (a.get("id") and a["id"] in self.label_for)):
                self.unlabelled.append(f"<{tag} name={a.get('name')!r} id={a.get('id')!r}>")


def test_every_form_control_has_a_label(db, app):
    """Each input, select and textarea on every page (every role) has a label: a <label for>
    naming its id, a wrapping <label>, or an aria-label."""
    shop = world(db)
    expected = matrix(shop)
    missing_labels, controls = [], 0
    for i, role in enumerate(ROLES):
        c, _ = browser(app, role)
        for path, codes in expected.items():
            if codes[i] != 200:
                continue
            found = _Controls(c.get(path, headers=HTML).text)
            controls += len(found.controls)
            missing_labels += [f"{role} {path}: {x}" for x in found.unlabelled]
    assert controls > 100
    assert not missing_labels, "\n".join(missing_labels)
