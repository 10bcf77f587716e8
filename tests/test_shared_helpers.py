"""The helpers every module shares, each in one home: lib/validate (input checks),
lib/roles (who is staff), lib/db (stored times, LIKE patterns)."""
import datetime

import pytest

from lib import catalog, roles, users, validate
from lib.db import age_seconds, like_pattern, parse_time, shift_time, utc_now
from lib.http import BadRequest
from tests.factories import make_user


@pytest.mark.parametrize("value,expected", [("1", True), ("TRUE", True), ("on", True), ("yes", True),
                                            ("0", False), ("off", False), ("No", False), ("false", False)])
def test_boolean_reads_the_usual_words(value, expected):
    assert validate.boolean(value, "banned") is expected


@pytest.mark.parametrize("value", ["2", "", "maybe", None, 1])
def test_boolean_refuses_anything_else_naming_the_field(value):
    with pytest.raises(BadRequest) as e:
        validate.boolean(value, "can_sell")
    assert (e.value.message, e.value.fields) == ("can_sell must be 1 or 0", {"can_sell": "1 or 0"})


def test_validators_keep_their_old_names_in_catalog():
    assert catalog.is_uuid is validate.is_uuid and catalog.text is validate.text
    assert catalog.is_staff is roles.is_staff
    assert validate.is_uuid("0b7c2f0e-1d2a-4c3b-9f8e-7a6b5c4d3e2f") and not validate.is_uuid("x")


def test_staff_roles():
    assert roles.is_staff({"role": "staff"}) and roles.is_staff({"role": "admin"})
    assert not roles.is_staff({"role": "vendor"}) and not roles.is_staff(None)
    assert roles.is_admin({"role": "admin"}) and not roles.is_admin({"role": "staff"})


def test_stored_times():
    assert shift_time("2026-01-31 23:30:00", minutes=45) == "2026-02-01 00:15:00"
    assert shift_time("2026-01-01 00:00:00", hours=-1) == "2025-12-31 23:00:00"
    assert parse_time("2026-01-01 00:00:00").tzinfo == datetime.timezone.utc
    assert 3599 <= age_seconds(shift_time(utc_now(), hours=-1)) <= 3601


def test_like_pattern_matches_wildcards_literally(db):
    for name in ("a_b", "axb", "a.b"):
        make_user(db, name)
    found = lambda q: sorted(u["username"] for u in users.list_users(db, 50, 0, q))  # noqa: E731
    assert found("a_b") == ["a_b"]
    assert found("A") == ["a.b", "a_b", "axb"]
    assert found("%") == [] and found("!") == [] and found("a%b") == []
    assert like_pattern("A_b") == "%a!_b%"
