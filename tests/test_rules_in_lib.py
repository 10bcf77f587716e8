"""Business rules live in lib/, not in page scripts: each rule the pages used to carry
themselves, called as a function, with the rows it writes (both databases)."""
import pytest

from lib import config, disputes, orders, staff, tokens, users
from lib.http import BadRequest, Conflict
from tests.factories import make_user


def audits(db, action):
    return db.value("SELECT COUNT(*) FROM audit_log WHERE action = ?", (action,))


def test_admin_update_refuses_self_demotion_and_self_ban_changing_nothing(db):
    admin = make_user(db, "boss", role="admin")
    for change in ({"role": "customer"}, {"banned": True}, {"role": "staff", "can_sell": False}):
        with pytest.raises(Conflict) as e:
            users.admin_update(db, admin, admin["uuid"], **change)
        assert e.value.message == "you cannot demote or ban yourself"
    row = users.by_uuid(db, admin["uuid"])
    assert row["role"] == "admin" and not row["banned"]
    assert audits(db, "role_changed") + audits(db, "banned") + audits(db, "seller_revoked") == 0
    assert users.admin_update(db, admin, admin["uuid"], role="admin", banned=False)["role"] == "admin"


def test_admin_update_writes_every_change_audited(db):
    admin = make_user(db, "boss", role="admin")
    target = make_user(db, "carol")
    out = users.admin_update(db, admin, target["uuid"], role="staff", banned=True, can_sell=False, ip="10.0.0.1")
    assert (out["role"], bool(out["banned"]), bool(out["can_sell"])) == ("staff", True, False)
    assert (audits(db, "role_changed"), audits(db, "banned"), audits(db, "seller_revoked")) == (1, 1, 1)
    with pytest.raises(BadRequest):  # a bad role changes nothing, the ban included
        users.admin_update(db, admin, target["uuid"], role="emperor", banned=False)
    assert users.by_uuid(db, target["uuid"])["banned"] and audits(db, "unbanned") == 0


def test_token_and_config_changes_are_audited_in_their_transaction(db):
    admin = make_user(db, "boss", role="admin")
    token = tokens.add_token(db, 1, "ETH", "", by=admin["uuid"], ip="10.0.0.1")
    assert audits(db, "token_added") == 1
    with pytest.raises(Conflict):  # the duplicate writes neither a token nor an audit row
        tokens.add_token(db, 1, "ETH", "", by=admin["uuid"])
    assert audits(db, "token_added") == 1
    assert db.value("SELECT COUNT(*) FROM accepted_tokens") == 1
    tokens.remove_token(db, token["id"], by=admin["uuid"])
    assert audits(db, "token_removed") == 1
    detail = db.value("SELECT detail FROM audit_log WHERE action = 'token_added'")
    assert detail.startswith("ETH chain 1")
    name = next(iter(config.KEYS))
    config.set_values(db, {name: config.KEYS[name][1]}, by=admin["uuid"])
    assert audits(db, "config_changed") == 1
    tokens.add_token(db, 1, "USDC", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6)  # no `by`: no audit row
    assert audits(db, "token_added") == 1


def test_amount_due_and_waiting():
    order = {"decimals": 18, "required_amount": "1.5", "received_amount": "0.5", "current_status": "PENDING",
             "intents": [], "payouts": []}
    assert orders.amount_due(order) == (5 * 10 ** 17, 10 ** 18)
    assert orders.amount_due(dict(order, received_amount="2")) == (2 * 10 ** 18, 0)
    assert orders.amount_due(dict(order, received_amount=None)) == (0, 15 * 10 ** 17)
    assert orders.waiting(order)
    done = dict(order, current_status="RELEASED")
    assert not orders.waiting(done)
    assert orders.waiting(dict(done, intents=[{"status": "processing"}]))
    assert orders.waiting(dict(done, payouts=[{"status": "broadcast"}]))
    assert not orders.waiting(dict(done, intents=[{"status": "done"}], payouts=[{"status": "confirmed"}]))


def test_filters_are_checked_without_running_the_list():
    assert staff.search_text("al") == "al" and staff.search_text(None) is None
    with pytest.raises(BadRequest) as e:
        staff.search_text("x" * 17)
    assert e.value.fields == {"q": "at most 16 characters"}
    assert disputes.parse_status("open") == "open" and disputes.parse_status(None) is None
    with pytest.raises(BadRequest) as e:
        disputes.parse_status("lost")
    assert e.value.message == "status must be open or resolved"
