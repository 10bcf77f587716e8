"""The marketplace as MCP tools, for agent hosts (the `mcp` package, the protocol's official SDK).

    MARKETPLACE_URL=http://127.0.0.1:8000 MARKETPLACE_API_KEY=... python -m agent_mcp.server
    python -m agent_mcp.server --transport http --port 8765      # streamable HTTP at /mcp
    make mcp  /  make mcp MCP_TRANSPORT=http MCP_PORT=8765

It is a client of the JSON API (agent_mcp/api.py) acting as the user of its API key; it
holds no database, chain or key material. An API refusal becomes an MCP tool error
(is_error) whose text and structured content carry the API's {"error": ...} message and
HTTP status, so the agent can read why and correct itself; it never shows a traceback.
"""
import argparse
import functools
import logging
import os
import sys
from typing import Annotated, Any, Literal, Optional

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from agent_mcp.api import (DEFAULT_URL, ApiError, MarketplaceAPI, key_from_headers, payment_instructions,
                           request_key)

log = logging.getLogger("agent_mcp")

INSTRUCTIONS = """\
Tools for a crypto-escrow marketplace. Buyers pay an order in ETH or an ERC-20 token into a
per-order escrow address; the marketplace holds it until the buyer releases it to the vendor
(or it is refunded). Typical buyer flow: search_catalog -> get_item (packages with live quotes
per token) -> create_order -> get_payment_instructions (repeat until escrow_address is set,
then pay payment_uri) -> get_order until COMPLETED -> after the vendor dispatches, order_action
release (or confirm, or open_dispute). Vendor flow: list_my_stores -> list_orders scope=vendor
-> order_action dispatch. Amounts are decimal strings in token units. Errors carry the API's
message and HTTP status (401 no/invalid key, 403 not allowed, 404 not found, 409 wrong state)."""

Uuid = Annotated[str, Field(description="a uuid, as the API returned it", min_length=1, max_length=64)]
Limit = Annotated[int, Field(description="page size (1-200)", ge=1, le=200)]
Offset = Annotated[int, Field(description="rows to skip, for paging", ge=0)]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=True)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
MONEY = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True)

MAX_QUOTED_ITEMS = 10      # search_catalog fetches packages for at most this many items (rate limit 60/min)


def _api_errors(fn):
    """ApiError -> an MCP tool error carrying {"error", "status", "request"}."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ApiError as e:
            log.info("tool %s: %s", fn.__name__, e)
            return CallToolResult(content=[TextContent(type="text", text=str(e))],
                                  structured_content=e.as_dict(), is_error=True)
    return wrapper


async def forward_client_key(ctx, call_next):
    """Middleware: over streamable HTTP, a request carrying its own marketplace key
    (`Authorization: Bearer KEY` or `X-API-Key: KEY`) acts as that key's user, so one
    remote server can serve several agents; without one, the configured key is used."""
    token = request_key.set(key_from_headers(getattr(getattr(ctx, "request", None), "headers", None)))
    try:
        return await call_next(ctx)
    finally:
        request_key.reset(token)


def build_server(api: MarketplaceAPI) -> MCPServer:
    mcp = MCPServer("marketplace", title="Crypto-escrow marketplace", instructions=INSTRUCTIONS,
                    version="1", log_level=os.environ.get("MCP_LOG_LEVEL", "WARNING").upper(),
                    middleware=[forward_client_key])

    def tool(annotations, title):
        def register(fn):
            mcp.add_tool(_api_errors(fn), name=fn.__name__, title=title, description=fn.__doc__,
                         annotations=annotations)
            return fn
        return register

    # -- identity ----------------------------------------------------------------

    @tool(READ, "Who am I")
    def whoami() -> dict[str, Any]:
        """The marketplace user this server acts as (its API key's user): username, role
        (customer, vendor, staff, admin) and user_uuid."""
        return api.get("/api/auth-user.php")

    # -- catalog -----------------------------------------------------------------

    @tool(READ, "Search the catalog")
    def search_catalog(
        query: Annotated[str, Field(description="words to find in item names and descriptions; empty for all")] = "",
        store_uuid: Annotated[Optional[str], Field(description="only items of this store")] = None,
        category_id: Annotated[Optional[int], Field(description="only items of this category id")] = None,
        include_packages: Annotated[bool, Field(description=(
            "also fetch each item's packages with prices in USD and a live quote per accepted token "
            f"(for the first {MAX_QUOTED_ITEMS} items)"))] = True,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Search the marketplace's items (active items of active stores, newest first). Each
        item comes with its packages (the things you actually buy: name, price_usd) and, per
        package, `quotes`: for each accepted token (chain_id, currency) the amount an order
        would cost now (required_amount, token units) or an error when no fresh rate exists."""
        found = api.get("/api/items.php", auth=False, q=query or None, store_uuid=store_uuid,
                        category_id=category_id, limit=limit, offset=offset)
        items = found.get("items", [])
        if include_packages:
            for item in items[:MAX_QUOTED_ITEMS]:
                item["packages"] = api.get("/api/packages.php", auth=False,
                                           item_uuid=item["uuid"]).get("packages", [])
        return {"items": items, "categories": found.get("categories", []),
                "limit": found.get("limit", limit), "offset": found.get("offset", offset)}

    @tool(READ, "List stores")
    def list_stores(limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        """The marketplace's stores (uuid, storename, description, tier, created_at)."""
        return api.get("/api/stores.php", auth=False, limit=limit, offset=offset)

    @tool(READ, "Get a store")
    def get_store(store_uuid: Uuid) -> dict[str, Any]:
        """One store; its members also see payout_address, suspended and the member list."""
        return api.get("/api/stores.php", auth=False, uuid=store_uuid)

    @tool(READ, "Get an item with its packages and live quotes")
    def get_item(item_uuid: Uuid) -> dict[str, Any]:
        """One item with its store and its packages; each package has price_usd and `quotes`,
        a live price per accepted token (chain_id, currency, required_amount in token units).
        Use a package's uuid and a quote's chain_id/currency with create_order."""
        item = api.get("/api/items.php", auth=False, uuid=item_uuid)["item"]
        item["packages"] = api.get("/api/packages.php", auth=False, item_uuid=item_uuid).get("packages", [])
        return {"item": item}

    # -- orders ------------------------------------------------------------------

    @tool(MONEY, "Create an order")
    def create_order(
        package_uuid: Annotated[str, Field(description="the package to buy (from get_item/search_catalog)")],
        currency: Annotated[str, Field(description="token symbol to pay in, as in the package's quotes")] = "ETH",
        chain_id: Annotated[int, Field(description="chain of that token: 1 Ethereum, 11155111 Sepolia, "
                                                   "8453 Base, 137 Polygon, 31337 local dev chain")] = 1,
        refund_address: Annotated[Optional[str], Field(description=(
            "EIP-55 checksummed address that gets the money back if the order is cancelled or "
            "refunded; defaults to the refund address of your profile"))] = None,
    ) -> dict[str, Any]:
        """Buy a package: creates an escrow order priced by the server (required_amount in token
        units of `currency`). The escrow address is assigned within about a minute; then call
        get_payment_instructions with the returned uuid to get the address and the EIP-681
        payment URI."""
        result = api.post("/api/transactions.php", package_uuid=package_uuid, currency=currency,
                          chain_id=chain_id, refund_address=refund_address)
        result["next"] = "call get_payment_instructions with order_uuid=" + str(result.get("uuid"))
        return result

    @tool(READ, "Get payment instructions for an order")
    def get_payment_instructions(order_uuid: Uuid) -> dict[str, Any]:
        """What to pay for an order: escrow_address (null until assigned), chain_id, currency,
        token_contract (null for the native coin), amount_due / amount_received /
        amount_remaining (token units; amount_remaining_base_units as an integer string), and
        payment_uri, the EIP-681 URI a wallet pays exactly (set once the order is PENDING with an
        escrow address and something remains to pay). `note` says what to do next."""
        order = api.get("/api/transactions.php", uuid=order_uuid)["transaction"]
        try:
            return payment_instructions(order)
        except ValueError as e:
            raise ApiError(502, f"the order's amounts could not be read: {e}", "GET",
                           "/api/transactions.php") from None

    @tool(READ, "Get an order")
    def get_order(order_uuid: Uuid) -> dict[str, Any]:
        """One order where you are the buyer or a store member (staff: any): current_status
        (PENDING, COMPLETED, FROZEN, RELEASED, CANCELLED, FAILED), current_shipping_status,
        amounts, escrow_address, status and shipping history, intents, payouts with explorer
        links, the dispute, my_roles and allowed_actions (what order_action accepts now)."""
        return api.get("/api/transactions.php", uuid=order_uuid)

    @tool(READ, "List my orders")
    def list_orders(
        scope: Annotated[Literal["mine", "buyer", "vendor", "all"], Field(description=(
            "mine: bought or sold by me; buyer: my purchases; vendor: my stores' sales; all: staff only"))] = "mine",
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Orders you bought or your stores sold, newest first."""
        return api.get("/api/transactions.php", scope=scope, limit=limit, offset=offset)

    @tool(MONEY, "Take an order action")
    def order_action(
        order_uuid: Uuid,
        action: Annotated[Literal["release", "cancel", "dispatch", "confirm", "dispute", "partial_refund"],
                          Field(description=(
                              "release: pay the vendor (buyer; vendor after the buyer confirmed; staff). "
                              "cancel: refund the buyer (buyer while PENDING; vendor declining a paid, "
                              "undispatched order; staff). dispatch: vendor marks it shipped. confirm: "
                              "buyer confirms receipt. dispute: buyer or vendor freezes the order and "
                              "opens a dispute. partial_refund: staff, with refund_percent"))],
        refund_percent: Annotated[Optional[int], Field(description="partial_refund only: percent to the buyer",
                                                       ge=1, le=100)] = None,
        comment: Annotated[Optional[str], Field(description="dispute only: why", max_length=2000)] = None,
    ) -> dict[str, Any]:
        """Act on an order (SPEC lifecycle). Answers {ok, action, transaction_uuid, intent}; a
        release/cancel/partial_refund writes a payout intent that the marketplace's cron pays on
        chain within minutes (follow it with get_order). 403: not your role; 409: wrong state."""
        return api.post("/api/transaction-actions.php", transaction_uuid=order_uuid, action=action,
                        refund_percent=refund_percent, comment=comment)

    # -- disputes ----------------------------------------------------------------

    @tool(MONEY, "Open a dispute")
    def open_dispute(
        order_uuid: Uuid,
        comment: Annotated[str, Field(description="what went wrong, for staff and the other party",
                                      min_length=1, max_length=2000)],
    ) -> dict[str, Any]:
        """Freeze a paid (COMPLETED) order and open a dispute (buyer or vendor); staff then decide
        release, refund or partial refund. Returns the action result and the dispute_uuid to
        follow with get_dispute / add_dispute_claim."""
        result = api.post("/api/transaction-actions.php", transaction_uuid=order_uuid, action="dispute",
                          comment=comment)
        order = api.get("/api/transactions.php", uuid=order_uuid)["transaction"]
        result["dispute_uuid"] = order.get("dispute_uuid")
        return result

    @tool(READ, "List disputes")
    def list_disputes(
        status: Annotated[Optional[Literal["open", "resolved"]], Field(description="filter by state")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Disputes of orders you are party to (staff: all)."""
        return api.get("/api/disputes.php", status=status, limit=limit, offset=offset)

    @tool(READ, "Read a dispute")
    def get_dispute(dispute_uuid: Uuid) -> dict[str, Any]:
        """One dispute with its order, state, resolution and the thread of claims."""
        return api.get("/api/disputes.php", uuid=dispute_uuid)

    @tool(WRITE, "Add a claim to a dispute")
    def add_dispute_claim(
        dispute_uuid: Uuid,
        claim: Annotated[str, Field(description="your statement or evidence", min_length=1)],
    ) -> dict[str, Any]:
        """Add a message to an open dispute's thread (buyer, store members, staff)."""
        return api.post("/api/disputes.php", dispute_uuid=dispute_uuid, claim=claim)

    @tool(MONEY, "Resolve a dispute (staff)")
    def resolve_dispute(
        dispute_uuid: Uuid,
        resolution: Annotated[Literal["release", "refund", "partial_refund"],
                              Field(description="release to the vendor, refund all to the buyer, or partial")],
        refund_percent: Annotated[Optional[int], Field(description="partial_refund: percent to the buyer",
                                                       ge=1, le=100)] = None,
        comment: Annotated[Optional[str], Field(description="the decision's reason")] = None,
    ) -> dict[str, Any]:
        """Staff only: close an open dispute and write the payout intent in one step."""
        return api.post("/api/disputes.php", dispute_uuid=dispute_uuid, resolution=resolution,
                        refund_percent=refund_percent, comment=comment)

    # -- stores, items, packages ----------------------------------------------------

    @tool(READ, "List my stores")
    def list_my_stores() -> dict[str, Any]:
        """The stores you are a member of (with your role)."""
        return api.get("/api/stores.php", mine=1)

    @tool(WRITE, "Create a store")
    def create_store(
        storename: Annotated[str, Field(description="1-16 characters, unique", min_length=1, max_length=16)],
        agree_vendorship: Annotated[bool, Field(description=(
            "must be true: you agree to the marketplace's vendorship terms"))],
        description: Annotated[str, Field(description="shown on the store page")] = "",
    ) -> dict[str, Any]:
        """Open a store; you become its owner and a vendor."""
        return api.post("/api/stores.php", storename=storename, description=description,
                        vendorship_agree="1" if agree_vendorship else "0")

    @tool(WRITE, "Create an item")
    def create_item(
        store_uuid: Uuid,
        name: Annotated[str, Field(description="1-64 characters", min_length=1, max_length=64)],
        description: Annotated[str, Field(description="item description")] = "",
        category_id: Annotated[Optional[int], Field(description="a category id (see search_catalog)")] = None,
    ) -> dict[str, Any]:
        """Add an item to a store you are a member of; then give it packages with create_package."""
        return api.post("/api/items.php", store_uuid=store_uuid, name=name, description=description,
                        category_id=category_id)

    @tool(WRITE, "Create a package")
    def create_package(
        item_uuid: Uuid,
        name: Annotated[str, Field(description="1-64 characters, e.g. '1 kg'", min_length=1, max_length=64)],
        price_usd: Annotated[str, Field(description="price in USD as a decimal string, 0.01-1000000, cents",
                                        pattern=r"^[0-9]+(\.[0-9]{1,2})?$")],
        description: Annotated[str, Field(description="package description")] = "",
    ) -> dict[str, Any]:
        """Add a purchasable package (a priced variant) to an item of your store. Buyers pay its
        USD price in any accepted token at the live rate."""
        return api.post("/api/packages.php", item_uuid=item_uuid, name=name, description=description,
                        price_usd=price_usd)

    @tool(WRITE, "Update store settings")
    def update_store_settings(
        store_uuid: Uuid,
        description: Annotated[Optional[str], Field(description="new description")] = None,
        payout_address: Annotated[Optional[str], Field(description=(
            "EIP-55 checksummed address that receives the store's sales; '' clears it"))] = None,
    ) -> dict[str, Any]:
        """Store owner: change the description and/or the payout address (give at least one)."""
        return api.post("/api/store-settings.php", store_uuid=store_uuid, description=description,
                        payout_address=payout_address)

    return mcp


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m agent_mcp.server", description=__doc__.split("\n")[0])
    p.add_argument("--url", default=os.environ.get("MARKETPLACE_URL") or DEFAULT_URL,
                   help="marketplace base URL (env MARKETPLACE_URL; default %(default)s)")
    p.add_argument("--api-key", default=os.environ.get("MARKETPLACE_API_KEY") or None,
                   help="the API key the server acts with (env MARKETPLACE_API_KEY)")
    p.add_argument("--transport", choices=("stdio", "http"), default=os.environ.get("MCP_TRANSPORT") or "stdio",
                   help="stdio for local agent hosts, http for streamable HTTP (env MCP_TRANSPORT)")
    p.add_argument("--host", default=os.environ.get("MCP_HOST") or "127.0.0.1",
                   help="HTTP transport: address to bind (env MCP_HOST; default %(default)s)")
    p.add_argument("--port", type=int, default=int(os.environ.get("MCP_PORT") or 8765),
                   help="HTTP transport: port (env MCP_PORT; default %(default)s)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="agent_mcp: %(message)s")
    if not args.api_key:
        log.warning("MARKETPLACE_API_KEY is not set: only the public catalog tools work%s; every other "
                    "tool answers 'no credentials'",
                    " (and requests that send their own key)" if args.transport == "http" else "")
    server = build_server(MarketplaceAPI(args.url, args.api_key))
    if args.transport == "http":
        if args.host not in ("127.0.0.1", "localhost", "::1") and args.api_key:
            log.warning("serving on %s with a configured API key: anyone who can reach this port acts "
                        "as that key's user; prefer no MARKETPLACE_API_KEY here and let each client send "
                        "its own key as 'Authorization: Bearer KEY'", args.host)
        print(f"agent_mcp: streamable HTTP on http://{args.host}:{args.port}/mcp -> {args.url}",
              file=sys.stderr, flush=True)
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
