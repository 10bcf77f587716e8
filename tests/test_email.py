"""Email when configured (verification, recovery by link, notifications),
against a local SMTP server the test starts (tests/smtp_sink.py), on both databases."""
import re

import pytest

from cron import mail as cron_mail
from lib import mail, webhooks
from tests import market
from tests.client import Client
from tests.factories import login, make_user
from tests.smtp_sink import SmtpSink, free_closed_port

BROWSER = {"Accept": "text/html,application/xhtml+xml"}
SITE = "http://testserver"
EMAIL_ON = {"EMAIL_ENABLED": "1", "SITE_URL": SITE}    # the web side sends mail, with links to SITE


@pytest.fixture
def settings():
    return EMAIL_ON


@pytest.fixture
def sink():
    s = SmtpSink(auth=True)
    yield s
    s.close()


def send(db, sink, **extra):
    env = {"SMTP_URL": sink.url, "SITE_URL": SITE, "EMAIL_FROM": "shop@testserver"}
    env.update(extra)
    return cron_mail.deliver(env, db)


def link(message, path):
    m = re.search(re.escape(SITE + path) + r"\?code=([A-Za-z0-9_\-]+)", message["body"])
    assert m, message["body"]
    return m.group(1)


def add_email(client, db, sink, address):
    token = login(client, client.username)
    r = client.post("/settings/user.php", data={"form": "email", "email": address, "csrf_token": token},
                    headers=BROWSER)
    assert r.status == 303, r.text
    assert send(db, sink) == {"sent": 1}
    got = sink.to(address)[-1]
    return link(got, "/verify-email.php")


def user_client(app, db, name):
    make_user(db, name)
    c = Client(app)
    c.username = name
    return c


@pytest.mark.parametrize("settings", [{"EMAIL_ENABLED": None}])
def test_without_email_nothing_depends_on_it(app, db):
    c = user_client(app, db, "alice")
    token = login(c, "alice")
    page = c.get("/settings/user.php", headers=BROWSER)
    assert "Email is not configured on this site." in page.text and 'id="email-form"' not in page.text
    assert c.post("/settings/user.php", data={"form": "email", "email": "a@example.com", "csrf_token": token},
                  headers=BROWSER).status == 404
    assert c.get("/recover-email.php").status == 404
    assert c.post("/recover-email.php", data={"email": "a@example.com"}).status == 404
    assert c.get("/verify-email.php?code=" + "a" * 40).status == 404
    # an order event queues no mail
    w = market.world(db)
    uuid = market.order(db, w, "COMPLETED")
    with db.transaction():
        webhooks.order_event(db, "order.paid", uuid)
    assert db.value("SELECT COUNT(*) FROM email_outbox") == 0
    # and cron without SMTP_URL sends nothing
    assert cron_mail.deliver({}, db) == {}


def test_add_address_verification_link_works_once(app, db, sink):
    c = user_client(app, db, "alice")
    alice = db.one("SELECT uuid FROM users WHERE username = 'alice'")
    token = login(c, "alice")
    # bad input: 400, nothing queued
    r = c.post("/settings/user.php", data={"form": "email", "email": "not an address", "csrf_token": token},
               headers=BROWSER)
    assert r.status == 400 and db.value("SELECT COUNT(*) FROM email_outbox") == 0
    # no CSRF token: 403
    assert c.post("/settings/user.php", data={"form": "email", "email": "a@example.com"},
                  headers=BROWSER).status == 403
    vtoken = add_email(c, db, sink, "alice@example.com")
    m = sink.to("alice@example.com")[0]
    assert m["msg"]["From"] == "shop@testserver" and m["msg"]["Subject"] == "Confirm your email address"
    assert sink.logins, "logged in with the SMTP_URL's user"
    # the address is not used until verified
    assert db.value("SELECT email FROM users WHERE uuid = ?", (alice["uuid"],)) is None
    assert "Waiting for you to open the link" in c.get("/settings/user.php", headers=BROWSER).text
    # the sent body is blanked, the token is stored hashed only
    assert db.value("SELECT body FROM email_outbox") == ""
    assert db.value("SELECT COUNT(*) FROM email_tokens WHERE token_hash = ?", (vtoken,)) == 0
    r = Client(app).get("/verify-email.php?code=" + vtoken)
    assert r.status == 200 and "alice@example.com verified" in r.text
    assert db.value("SELECT email FROM users WHERE uuid = ?", (alice["uuid"],)) == "alice@example.com"
    assert Client(app).get("/verify-email.php?code=" + vtoken).status == 400      # once
    assert Client(app).get("/verify-email.php?code=" + "x" * 43).status == 400
    assert Client(app).get("/verify-email.php?code=bad!").status == 400
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'email_verified'") == 1
    assert "alice@example.com" in c.get("/settings/user.php", headers=BROWSER).text
    assert send(db, sink) == {}                                                      # nothing left


def test_recovery_link_resets_the_password_once(app, db, sink):
    c = user_client(app, db, "alice")
    vtoken = add_email(c, db, sink, "alice@example.com")
    Client(app).get("/verify-email.php?code=" + vtoken)
    anon = Client(app, remote_addr="203.0.113.5")
    # the same answer for a known and an unknown address
    known = anon.post("/recover-email.php", data={"email": "Alice@example.com"})
    unknown = anon.post("/recover-email.php", data={"email": "nobody@example.com"})
    assert known.status == unknown.status == 200 and known.text == unknown.text
    assert anon.post("/recover-email.php", data={"email": "nope"}).status == 400
    assert send(db, sink) == {"sent": 1}
    assert sink.to("nobody@example.com") == []
    rtoken = link(sink.to("alice@example.com")[-1], "/recover-email.php")
    # the link shows the form (nothing used up yet)
    page = anon.get("/recover-email.php?code=" + rtoken, headers=BROWSER)
    assert page.status == 200 and 'name="new_password"' in page.text
    assert c.get("/api/auth-user.php").status == 200
    # a too-short password: 400, the link still works
    assert anon.post("/recover-email.php", data={"code": rtoken, "new_password": "short"}).status == 400
    r = anon.post("/recover-email.php", data={"code": rtoken, "new_password": "brand-new-pass"})
    assert r.status == 200, r.text
    assert c.get("/api/auth-user.php").status == 401                                 # every session ended
    assert Client(app).post("/login.php", data={"username": "alice", "password": "brand-new-pass"}).status == 200
    assert Client(app).post("/login.php", data={"username": "alice", "password": "password123"}).status == 401
    # once only
    assert anon.post("/recover-email.php", data={"code": rtoken, "new_password": "another-pass1"}).status == 400
    assert anon.get("/recover-email.php?code=" + rtoken, headers=BROWSER).status == 400
    assert db.value("SELECT COUNT(*) FROM audit_log WHERE action = 'password_reset_by_email'") == 1


def test_recovery_link_expires_after_an_hour(app, db, sink):
    c = user_client(app, db, "alice")
    Client(app).get("/verify-email.php?code=" + add_email(c, db, sink, "alice@example.com"))
    Client(app).post("/recover-email.php", data={"email": "alice@example.com"})
    send(db, sink)
    rtoken = link(sink.to("alice@example.com")[-1], "/recover-email.php")
    db.execute("UPDATE email_tokens SET expires_at = '2000-01-01 00:00:00' WHERE purpose = 'reset'")
    r = Client(app).post("/recover-email.php", data={"code": rtoken, "new_password": "brand-new-pass"})
    assert r.status == 400


def test_recovery_is_rate_limited(app, db, sink):
    c = user_client(app, db, "alice")
    Client(app).get("/verify-email.php?code=" + add_email(c, db, sink, "alice@example.com"))
    anon = Client(app, remote_addr="203.0.113.6")
    answers = [anon.post("/recover-email.php", data={"email": "alice@example.com"}) for _ in range(mail.RESET_PER_IP)]
    assert {r.status for r in answers} == {200} and len({r.text for r in answers}) == 1
    r = anon.post("/recover-email.php", data={"email": "someone@example.com"})
    assert r.status == 429
    # per account: at most RESET_PER_USER mails an hour, whatever the IPs
    assert send(db, sink) == {"sent": mail.RESET_PER_USER}
    Client(app, remote_addr="203.0.113.7").post("/recover-email.php", data={"email": "alice@example.com"})
    assert send(db, sink) == {}


def test_browser_recovery_form_needs_its_csrf_token(app, db, sink):
    anon = Client(app)
    page = anon.get("/recover-email.php", headers=BROWSER)
    assert page.status == 200 and 'name="email"' in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert anon.post("/recover-email.php", data={"email": "a@example.com"}, headers=BROWSER).status == 403
    r = anon.post("/recover-email.php", data={"email": "a@example.com", "csrf_token": token}, headers=BROWSER)
    assert r.status == 200 and "If an account has this verified email address" in r.text


def test_order_notifications_and_turning_them_off(app, db, sink):
    w = market.world(db)
    buyer = Client(app)
    buyer.username = "buyer1"
    Client(app).get("/verify-email.php?code=" + add_email(buyer, db, sink, "buyer@example.com"))
    vendor = Client(app)
    vendor.username = "vendor1"
    Client(app).get("/verify-email.php?code=" + add_email(vendor, db, sink, "vendor@example.com"))
    uuid = market.order(db, w, "COMPLETED")
    with db.transaction():                           # as cron/tasks.py reports a paid order
        webhooks.order_event(db, "order.paid", uuid)
    assert send(db, sink) == {"sent": 2}
    for address in ("buyer@example.com", "vendor@example.com"):
        m = sink.to(address)[-1]
        assert m["msg"]["Subject"].startswith("Order ") and uuid in m["body"] and "order paid" in m["body"]
    # a rolled-back change sends nothing
    with pytest.raises(RuntimeError):
        with db.transaction():
            webhooks.order_event(db, "order.paid", uuid)
            raise RuntimeError("boom")
    assert db.value("SELECT COUNT(*) FROM email_outbox WHERE status = 'pending'") == 0
    # the buyer turns order.paid off (keeps dispatched)
    token = login(buyer, "buyer1")
    page = buyer.get("/settings/user.php", headers=BROWSER)
    assert 'name="notify_order_paid"' in page.text
    r = buyer.post("/settings/user.php", data={"form": "email_notify", "notify_order_dispatched": "1",
                                               "notify_order_released": "1", "notify_dispute": "1",
                                               "csrf_token": token}, headers=BROWSER)
    assert r.status == 303
    before = len(sink.to("buyer@example.com"))
    with db.transaction():
        webhooks.order_event(db, "order.paid", uuid)
    assert send(db, sink) == {"sent": 1}             # the vendor only
    assert len(sink.to("buyer@example.com")) == before
    # dispatched (the real action) still reaches the buyer
    r = Client(app).post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "dispatch"},
                         headers=w.vendor["headers"])
    assert r.status == 200, r.text
    assert send(db, sink).get("sent", 0) >= 1
    assert "order dispatched" in sink.to("buyer@example.com")[-1]["body"]
    # a dispute update reaches both
    n = len(sink.messages)
    r = Client(app).post("/api/transaction-actions.php", data={"transaction_uuid": uuid, "action": "dispute",
                                                               "comment": "broken"}, headers=w.buyer["headers"])
    assert r.status == 200, r.text
    assert send(db, sink) == {"sent": 2} and len(sink.messages) == n + 2


def test_unreachable_smtp_server_is_retried(app, db, sink):
    c = user_client(app, db, "alice")
    token = login(c, "alice")
    c.post("/settings/user.php", data={"form": "email", "email": "a@example.com", "csrf_token": token}, headers=BROWSER)
    dead = f"smtp://127.0.0.1:{free_closed_port()}"
    assert cron_mail.deliver({"SMTP_URL": dead}, db) == {"retry": 1}
    row = db.one("SELECT * FROM email_outbox")
    assert row["status"] == "pending" and row["attempts"] == 1 and row["body"]
    db.execute("UPDATE email_outbox SET next_attempt_at = '2000-01-01 00:00:00'")
    assert send(db, sink) == {"sent": 1}


def test_smtp_url_parsing():
    assert cron_mail.parse_smtp_url("smtps://u%40x:p%3Aw@mail.example:2465") == \
        ("smtps", "mail.example", 2465, "u@x", "p:w")
    assert cron_mail.parse_smtp_url("smtp://mail.example") == ("smtp", "mail.example", 25, None, None)
    with pytest.raises(ValueError):
        cron_mail.parse_smtp_url("http://mail.example")
