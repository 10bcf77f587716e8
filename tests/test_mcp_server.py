"""The MCP server (agent_mcp/) driven by the `mcp` client library against
the marketplace on a live HTTP server, with the chain on anvil and cron run in-process.

A vendor agent (streamable HTTP transport, sending its own API key in the Authorization header) opens a store, sets its payout
address, lists an item and a $100 package; a buyer agent (stdio transport, a subprocess)
searches the catalog, creates an order, reads its payment instructions; the test pays the
EIP-681 URI the tool gave on anvil; the vendor agent dispatches, the buyer agent releases,
cron pays out, and the order reads RELEASED through the MCP tool. Also: an API refusal is
an MCP tool error carrying the API's message and status; no key -> a clear error.
"""
import ast
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client   # requirements.txt pins mcp
from mcp.client.streamable_http import streamable_http_client

from tests.chain import fresh_address
from tests.cron_support import run_cron
from tests.factories import make_user
from tests.market import add_token, fast_hashing  # noqa: F401 (autouse fixture: cheap scrypt)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = {"whoami", "search_catalog", "list_stores", "get_store", "get_item", "create_order",
         "get_payment_instructions", "get_order", "list_orders", "order_action", "open_dispute",
         "list_disputes", "get_dispute", "add_dispute_claim", "resolve_dispute", "list_my_stores",
         "create_store", "create_item", "create_package", "update_store_settings"}


def run_async(fn):
    """anyio.run in a thread of its own: the browser tests' Playwright (sync API) keeps an
    event loop running in the main thread for the whole session."""
    result = {}

    def target():
        try:
            result["value"] = anyio.run(fn)
        except BaseException as e:      # noqa: B902 - re-raised in the test's thread
            result["error"] = e
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def server_env(url, key):
    env = {"MARKETPLACE_URL": url, "PYTHONUNBUFFERED": "1"}
    if key:
        env["MARKETPLACE_API_KEY"] = key
    return env


@asynccontextmanager
async def stdio_session(url, key, errlog):
    params = StdioServerParameters(command=sys.executable, args=["-m", "agent_mcp.server"], cwd=ROOT,
                                   env=server_env(url, key))
    async with stdio_client(params, errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def http_server(url, errlog, server_key=None):
    """`python -m agent_mcp.server --transport http` as a subprocess; yields its MCP endpoint."""
    port = free_port()
    penv = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETPLACE_", "MCP_"))}
    penv.update(server_env(url, server_key))
    proc = subprocess.Popen([sys.executable, "-m", "agent_mcp.server", "--transport", "http",
                             "--port", str(port)], cwd=ROOT, env=penv, stdout=errlog, stderr=errlog)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "MCP HTTP server did not start"
                await anyio.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@asynccontextmanager
async def http_client_session(endpoint, client_key=None):
    """A session to a streamable HTTP MCP server that sends `client_key` (if any) as
    `Authorization: Bearer` on every request."""
    from mcp.shared._httpx_utils import create_mcp_http_client
    headers = {"Authorization": "Bearer " + client_key} if client_key else None
    async with create_mcp_http_client(headers=headers) as http, \
            streamable_http_client(endpoint, http_client=http) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


@asynccontextmanager
async def http_session(url, errlog, server_key=None, client_key=None):
    async with http_server(url, errlog, server_key) as endpoint:
        async with http_client_session(endpoint, client_key) as session:
            yield session


async def call(session, tool, **args):
    """A successful tool call's structured result."""
    result = await session.call_tool(tool, args)
    assert not result.is_error, (tool, result.content)
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def call_error(session, tool, **args):
    result = await session.call_tool(tool, args)
    assert result.is_error, (tool, result)
    return result.content[0].text, result.structured_content


@pytest.mark.parametrize("settings", [{"ALLOW_DEV_CHAIN": "1"}])     # the web side accepts chain 31337
def test_agents_buy_pay_dispatch_release(anvil, db, live_server, env, tmp_path):
    buyer = make_user(db, "buyer1")
    vendor = make_user(db, "vendor1")
    add_token(db, 31337, "ETH", manual_usd_price="2000")
    vendor_addr, refund_addr = fresh_address(), fresh_address()
    log = open(tmp_path / "mcp.log", "w")

    async def flow():
        # The HTTP server has no key of its own: the vendor agent sends its key with each request.
        async with http_session(live_server, log, client_key=vendor["api_key"]) as seller, \
                stdio_session(live_server, buyer["api_key"], log) as agent:
            # Both transports list the same tools, each with a description and a schema.
            for session in (seller, agent):
                tools = (await session.list_tools()).tools
                assert {t.name for t in tools} == TOOLS
                assert all(t.description and t.input_schema["type"] == "object" for t in tools)
            assert (await call(agent, "whoami"))["username"] == "buyer1"
            assert (await call(seller, "whoami"))["username"] == "vendor1"

            # The vendor agent opens a store and lists a $100 package.
            store = await call(seller, "create_store", storename="agentshop", agree_vendorship=True,
                               description="run by an agent")
            store_uuid = store["uuid"]
            settings = await call(seller, "update_store_settings", store_uuid=store_uuid,
                                  payout_address=vendor_addr)
            assert settings["store"]["payout_address"] == vendor_addr
            item = await call(seller, "create_item", store_uuid=store_uuid, name="robot widget",
                              description="a widget for robots")
            package = await call(seller, "create_package", item_uuid=item["uuid"], name="one", price_usd="100")
            assert [s["uuid"] for s in (await call(seller, "list_my_stores"))["stores"]] == [store_uuid]

            # The buyer agent finds it with a live quote on the dev chain.
            found = await call(agent, "search_catalog", query="robot")
            assert [i["uuid"] for i in found["items"]] == [item["uuid"]]
            [pkg] = found["items"][0]["packages"]
            assert pkg["uuid"] == package["uuid"]
            [quote] = [q for q in pkg["quotes"] if q["chain_id"] == 31337 and q["currency"] == "ETH"]
            assert quote["required_amount"] == "0.05"
            assert (await call(agent, "get_item", item_uuid=item["uuid"]))["item"]["packages"][0]["uuid"] == pkg["uuid"]

            # An API refusal is a tool error with the API's message and status.
            text, detail = await call_error(agent, "create_order", package_uuid=pkg["uuid"], currency="ETH",
                                            chain_id=31337, refund_address="0xnot-an-address")
            assert detail["status"] == 400 and "refund_address" in detail["error"]
            assert detail["error"] in text and "400" in text and "Traceback" not in text
            text, detail = await call_error(agent, "get_order", order_uuid="no-such-order")
            assert detail["status"] == 404 and detail["error"] == "no such order"

            order = await call(agent, "create_order", package_uuid=pkg["uuid"], currency="ETH", chain_id=31337,
                               refund_address=refund_addr)
            assert order["ok"] is True and order["required_amount"] == "0.05"
            uuid = order["uuid"]
            pay = await call(agent, "get_payment_instructions", order_uuid=uuid)
            assert pay["escrow_address"] is None and pay["payment_uri"] is None and not pay["ready_to_pay"]

            assert run_cron(env, db)["ok"]               # cron assigns the escrow address
            pay = await call(agent, "get_payment_instructions", order_uuid=uuid)
            escrow = pay["escrow_address"]
            assert pay["ready_to_pay"] and escrow and pay["amount_due"] == pay["amount_remaining"] == "0.05"
            from lib import payment_uri
            assert pay["payment_uri"] == payment_uri.eip681(escrow, 31337, 5 * 10 ** 16)

            # Pay exactly what the URI asks for.
            m = re.fullmatch(r"ethereum:(0x[0-9a-fA-F]{40})@31337\?value=(\d+)", pay["payment_uri"])
            anvil.send_eth(4, m.group(1), int(m.group(2)))
            anvil.mine(3)
            r = run_cron(env, db)
            assert r["ok"], r["errors"]
            assert (await call(agent, "get_order", order_uuid=uuid))["transaction"]["current_status"] == "COMPLETED"

            # The vendor agent sees the sale and dispatches it; the buyer agent releases.
            sales = await call(seller, "list_orders", scope="vendor")
            assert [o["uuid"] for o in sales["transactions"]] == [uuid]
            text, detail = await call_error(agent, "order_action", order_uuid=uuid, action="dispatch")
            assert detail["status"] == 403
            done = await call(seller, "order_action", order_uuid=uuid, action="dispatch")
            assert done["ok"] is True and done["action"] == "dispatch"
            released = await call(agent, "order_action", order_uuid=uuid, action="release")
            assert released["ok"] is True and released["action"] == "release"

            for _ in range(4):
                r = run_cron(env, db)
                assert r["ok"], r["errors"]
                final = (await call(agent, "get_order", order_uuid=uuid))["transaction"]
                if final["current_status"] == "RELEASED":
                    break
                anvil.mine(3)
            assert final["current_status"] == "RELEASED", final
            assert final["current_shipping_status"] == "DISPATCHED"
            assert (await call(seller, "get_order", order_uuid=uuid))["transaction"]["current_status"] == "RELEASED"
            assert (await call(agent, "get_payment_instructions", order_uuid=uuid))["payment_uri"] is None
            return uuid

    async def bounded():
        with anyio.fail_after(120):
            return await flow()

    run_async(bounded)
    assert anvil.balance(vendor_addr) == 5 * 10 ** 16 * 4 // 5    # free tier: 20 % commission


def test_agents_dispute_claims_and_resolution(db, live_server, tmp_path):
    """The buyer agent (stdio) opens a dispute on a paid order and follows it; the vendor and
    a staff agent share one streamable HTTP server, each sending its own key."""
    from tests import market
    w = market.world(db)
    uuid = market.order(db, w, status="COMPLETED")
    log = open(tmp_path / "mcp.log", "w")

    async def flow():
        async with stdio_session(live_server, w.buyer["api_key"], log) as buyer, \
                http_server(live_server, log) as endpoint, \
                http_client_session(endpoint, w.vendor["api_key"]) as vendor, \
                http_client_session(endpoint, w.staff["api_key"]) as staff:
            assert (await call(vendor, "whoami"))["username"] == "vendor1"
            assert (await call(staff, "whoami"))["role"] == "staff"
            opened = await call(buyer, "open_dispute", order_uuid=uuid, comment="arrived broken")
            dispute_uuid = opened["dispute_uuid"]
            assert opened["ok"] is True and dispute_uuid
            assert (await call(buyer, "get_order", order_uuid=uuid))["transaction"]["current_status"] == "FROZEN"
            listed = await call(vendor, "list_disputes", status="open")
            assert [d["uuid"] for d in listed["disputes"]] == [dispute_uuid]
            claim = await call(vendor, "add_dispute_claim", dispute_uuid=dispute_uuid,
                               claim="it left here intact")
            assert claim["claim"]["username"] == "vendor1"
            thread = (await call(buyer, "get_dispute", dispute_uuid=dispute_uuid))["dispute"]
            assert "it left here intact" in [c["claim"] for c in thread["claims"]]
            text, detail = await call_error(vendor, "resolve_dispute", dispute_uuid=dispute_uuid,
                                            resolution="release")
            assert detail["status"] == 403 and detail["error"] in text
            decided = await call(staff, "resolve_dispute", dispute_uuid=dispute_uuid,
                                 resolution="partial_refund", refund_percent=40, comment="split")
            assert decided["ok"] is True
            text, detail = await call_error(buyer, "add_dispute_claim", dispute_uuid=dispute_uuid, claim="more")
            assert detail["status"] == 409
            assert (await call(buyer, "list_disputes", status="resolved"))["disputes"][0]["uuid"] == dispute_uuid

    run_async(flow)


def test_no_credentials_and_bad_key(db, live_server, tmp_path):
    """Without a key the public catalog still answers; everything else is a clear error."""
    log = open(tmp_path / "mcp.log", "w")

    async def flow():
        async with stdio_session(live_server, None, log) as anon:
            text, detail = await call_error(anon, "whoami")
            assert detail["status"] == 401 and "MARKETPLACE_API_KEY" in text
            text, detail = await call_error(anon, "list_orders")
            assert "no credentials" in text
            assert (await call(anon, "search_catalog"))["items"] == []
        async with stdio_session(live_server, "0" * 64, log) as bad:
            text, detail = await call_error(bad, "whoami")
            assert detail["status"] == 401 and detail["error"] and "Traceback" not in text

    run_async(flow)


def test_bad_arguments_are_tool_errors(tmp_path):
    """Arguments that break a tool's schema are refused by the SDK before any API call (the
    marketplace URL here answers nothing), and an unreachable marketplace is a clear error."""
    log = open(tmp_path / "mcp.log", "w")

    async def flow():
        async with stdio_session("http://127.0.0.1:%d" % free_port(), "f" * 64, log) as agent:
            result = await agent.call_tool("order_action", {"order_uuid": "x", "action": "steal"})
            assert result.is_error and "action" in result.content[0].text
            result = await agent.call_tool("create_package", {"item_uuid": "x", "name": "n", "price_usd": "1e9"})
            assert result.is_error and "price_usd" in result.content[0].text
            result = await agent.call_tool("order_action", {"order_uuid": "x", "action": "confirm",
                                                             "refund_percent": 101})
            assert result.is_error and "refund_percent" in result.content[0].text
            text, detail = await call_error(agent, "whoami")
            assert detail["status"] == 0 and "unreachable" in text
        async with http_session("http://127.0.0.1:%d" % free_port(), log) as anon:   # no key anywhere
            text, detail = await call_error(anon, "whoami")
            assert detail["status"] == 401 and "Authorization: Bearer" in text

    run_async(flow)


def test_payment_instructions_erc20_and_partial_payment():
    """The client computes the same EIP-681 URI as the payment page (lib/payment_uri.py),
    for an ERC-20 order and for the remainder after a partial payment."""
    from agent_mcp.api import payment_instructions
    from lib import payment_uri
    escrow, token = fresh_address(), fresh_address()
    order = {"uuid": "u", "current_status": "PENDING", "chain_id": 8453, "currency": "USDC",
             "token_contract": token, "decimals": 6, "escrow_address": escrow,
             "required_amount": "100.5", "received_amount": "40.25"}
    pay = payment_instructions(order)
    assert pay["ready_to_pay"] and pay["amount_remaining"] == "60.25"
    assert pay["amount_remaining_base_units"] == "60250000"
    assert pay["payment_uri"] == payment_uri.eip681(escrow, 8453, 60250000, token)
    eth = dict(order, token_contract="", currency="ETH", decimals=18, required_amount="0.05",
               received_amount="0")
    assert payment_instructions(eth)["payment_uri"] == payment_uri.eip681(escrow, 8453, 5 * 10 ** 16)
    paid = dict(eth, received_amount="0.05")
    assert payment_instructions(paid)["payment_uri"] is None
    assert payment_instructions(dict(eth, current_status="COMPLETED"))["payment_uri"] is None
    assert payment_instructions(dict(eth, escrow_address=None))["note"].startswith("the escrow address")


def test_agent_mcp_is_only_an_http_client():
    """agent_mcp never imports the core (lib), cron or a database driver."""
    pkg = os.path.join(ROOT, "agent_mcp")
    for name in os.listdir(pkg):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(pkg, name)).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            for mod in mods:
                assert mod.split(".")[0] not in ("lib", "cron", "pymysql", "sqlite3", "eth_account",
                                                 "coincurve", "wsgi"), (name, mod)
