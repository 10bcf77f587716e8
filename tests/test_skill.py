"""GET /api/skill.php: the agent guide, generated from the OpenAPI document."""
import re

import pytest

from lib import openapi, skill, status_machine as sm
from tests.client import Client


@pytest.fixture
def settings():
    return {"SITE_URL": "https://market.example"}


@pytest.fixture
def guide(client):
    r = client.get("/api/skill.php")
    assert r.status == 200, r
    return r


def test_served_as_utf8_markdown(guide, client):
    assert guide.header("Content-Type") == "text/markdown; charset=utf-8"
    text = guide.body.decode("utf-8")             # valid UTF-8 (raises otherwise)
    assert text.startswith("# ") and text.endswith("\n")
    # well-formed Markdown: code fences are balanced, tables have a header separator
    assert text.count("```") % 2 == 0
    for block in re.findall(r"(?:^\|.*\|\n)+", text, flags=re.M):
        rows = block.strip("\n").split("\n")
        assert len(rows) >= 2 and re.fullmatch(r"\|(---\|)+", rows[1]), rows[:2]
        assert len({row.count(" | ") for row in rows[2:]} | {rows[0].count(" | ")}) == 1, rows[0]
    assert client.get("/api/skill").status == 200            # also without .php


def test_every_path_and_operation_of_the_openapi_document_is_in_it(guide):
    text = guide.text
    doc = openapi.document()
    for path, ops in doc["paths"].items():
        assert path in text, path
        for method, op in ops.items():
            heading = f"### {method.upper()} {path}\n"
            assert heading in text, heading
            section = text.split(heading, 1)[1].split("\n### ", 1)[0]
            assert op["summary"] in section
            assert "```sh\ncurl " in section and ("https://market.example" + path) in section
            for p in op.get("parameters", []):
                assert f"| `{p['name']}` | query |" in section, (path, p["name"])
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            for name in body.get("properties", {}):
                if name != "csrf_token":
                    assert f"| `{name}` | body |" in section, (path, name)


def test_it_states_constraints_and_builds_examples_from_the_schema(guide):
    text = guide.text
    section = text.split("### POST /api/stores.php\n", 1)[1].split("\n### ", 1)[0]
    assert "1-16 characters" in section and "pattern `" in section
    assert "--data-urlencode storename=my-shop" in section and "--data-urlencode vendorship_agree=1" in section
    assert '-H "Authorization: Bearer $MARKETPLACE_API_KEY"' in section
    actions = text.split("### POST /api/transaction-actions.php\n", 1)[1].split("\n### ", 1)[0]
    assert "integer; 1 to 100" in actions
    assert "one of `release`, `cancel`, `partial_refund`, `dispatch`, `confirm`, `dispute`" in actions
    public = text.split("### GET /api/items.php\n", 1)[1].split("\n### ", 1)[0]
    assert "Authentication: none" in public and "Authorization" not in public.split("```sh")[1]


def test_it_explains_base_url_keys_transports_and_lifecycle(guide):
    text = guide.text
    assert "Base URL: `https://market.example`" in text
    assert "https://market.example/register.php" in text and "https://market.example/api/keys.php" in text
    for transport in ("Authorization: Bearer KEY", "X-API-Key: KEY", "?token=KEY"):
        assert transport in text
    for status in sm.STATUSES:
        assert f"`{status}`" in text
    for action in sm.ACTIONS:
        assert f"| `{action}` |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `partial_refund` |"))
    assert "staff/admin: FROZEN with an open dispute" in row and "buyer" not in row
    row = next(line for line in text.splitlines() if line.startswith("| `confirm` |"))
    assert "buyer: COMPLETED, dispatched" in row


@pytest.mark.parametrize("settings", [{"SITE_URL": ""}])
def test_base_url_without_site_url_is_the_request_host(app):
    r = Client(app).get("/api/skill.php", headers={"Host": "agents.local:8000"})
    assert "Base URL: `http://agents.local:8000`" in r.text


def test_generated_from_the_document_at_request_time(guide, monkeypatch):
    doc = openapi.document()
    doc["paths"]["/api/brand-new.php"] = {"get": {"summary": "A new endpoint", "security": [],
                                                  "responses": {"200": {"description": "OK", "content": {
                                                      "application/json": {"schema": {"type": "object"}}}}}}}
    text = skill.markdown(doc, "http://x")
    assert "### GET /api/brand-new.php\n" in text and "curl http://x/api/brand-new.php" in text
