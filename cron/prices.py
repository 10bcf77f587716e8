"""Duty 8: USD prices into `prices`, and verification of newly added tokens.

Prices come from the Alchemy Prices API: the chains' native coins by symbol, ERC-20
tokens by (network, contract address); tokens on a chain Alchemy does not price
(the local dev chain) by symbol. Without ALCHEMY_API_KEY or ALCHEMY_PRICES_URL the
refresh is skipped (orders then use each token's manual_usd_price).

A token added by an admin is 'unverified' until cron checks it: an ERC-20 must
answer decimals() and symbol() through eth_call, its symbol must match the one the
admin entered, and a USD price (from the API or manual_usd_price) must exist; the
native coin must carry the chain's symbol. Then it becomes 'active', or 'rejected'
with the reason. A provider that cannot be reached leaves the token unverified for
the next run.

After those checks pass, an ERC-20 gets a simulated probe transfer (cron/token_probe.py:
eth_call with a state override, nothing spent) from an account that holds it; a token
that delivers less than was sent is rejected ("fee-on-transfer token: a transfer of X
delivered Y"). The probe is best effort: when no holder is found in the recent Transfer
logs, the node refuses state overrides, or the probe transfer reverts / returns false
(a blacklisted or paused holder), the token is activated anyway with the note in
status_reason and counted as tokens.probe_skipped.
"""
from decimal import Decimal

from cron.prices_client import PricesClient
from cron.rpc_client import RpcCallError, RpcTransportError
from cron.token_probe import ProbeResult, probe_transfer
from lib.chains import CHAINS, allow_dev_from_env, get_chain
from lib.db import utc_now


def _prices_client(ctx):
    if not (ctx.env.get("ALCHEMY_API_KEY") or ctx.env.get("ALCHEMY_PRICES_URL")):
        return None
    return PricesClient.from_env(ctx.env, timeout=float(ctx.env.get("CRON_RPC_TIMEOUT") or 10),
                                 retries=int(ctx.env.get("CRON_RPC_RETRIES") or 3),
                                 backoff=float(ctx.env.get("CRON_RPC_BACKOFF") or 0.5))


def refresh_prices(ctx):
    db = ctx.db
    tokens = db.query("SELECT chain_id, symbol, contract_address FROM accepted_tokens "
                      "WHERE status IN ('active', 'unverified') ORDER BY id")
    tokens = [t for t in tokens if int(t["chain_id"]) in CHAINS]
    if not tokens:
        return
    client = _prices_client(ctx)
    if client is None:
        ctx.count("prices", "skipped_no_api_key")
        return
    by_symbol, by_address = [], []
    for t in tokens:
        chain = get_chain(int(t["chain_id"]))
        if t["contract_address"] and chain.alchemy_network:
            by_address.append(t)
        else:
            by_symbol.append(t)
    found = {}
    try:
        if by_symbol:
            quotes = client.by_symbols([t["symbol"] for t in by_symbol])
            for t in by_symbol:
                found[(t["chain_id"], t["symbol"])] = (t, quotes.get(t["symbol"]))
        if by_address:
            pairs = [(get_chain(int(t["chain_id"])).alchemy_network, t["contract_address"]) for t in by_address]
            quotes = client.by_addresses(pairs)
            for t, pair in zip(by_address, pairs):
                found[(t["chain_id"], t["symbol"])] = (t, quotes.get(pair))
    except Exception as e:
        ctx.prices_unavailable = True
        ctx.error("prices", "Prices API: %s" % e)
    finally:
        client.close()
    now = utc_now()
    for (chain_id, symbol), (t, usd) in found.items():
        if usd is None:
            ctx.count("prices", "missing")
            continue
        db.upsert("prices", {"chain_id": int(chain_id), "symbol": symbol},
                  {"contract_address": t["contract_address"] or "", "usd_price": str(Decimal(usd)),
                   "fetched_at": now})
        ctx.count("prices", "updated")


def _has_price(db, token):
    if token["manual_usd_price"]:
        return True
    return db.value("SELECT 1 FROM prices WHERE chain_id = ? AND symbol = ?",
                    (token["chain_id"], token["symbol"])) is not None


def _set(db, token, status, reason=None, decimals=None):
    db.execute("UPDATE accepted_tokens SET status = ?, status_reason = ?, decimals = COALESCE(?, decimals), "
               "updated_at = ? WHERE id = ? AND status = 'unverified'",
               (status, reason[:255] if reason else None, decimals, utc_now(), token["id"]))


def verify_tokens(ctx):
    db = ctx.db
    for token in db.query("SELECT * FROM accepted_tokens WHERE status = 'unverified' ORDER BY id"):
        chain_id = int(token["chain_id"])
        chain = CHAINS.get(chain_id)
        if chain is None or (chain.dev and not allow_dev_from_env(ctx.env)):
            _set(db, token, "rejected", "chain %d is not supported here" % chain_id)
            ctx.count("tokens", "rejected")
            continue
        try:
            if token["contract_address"]:
                rpc = ctx.rpc(chain_id)
                try:
                    decimals = rpc.erc20_decimals(token["contract_address"])
                    symbol = rpc.erc20_symbol(token["contract_address"])
                except RpcTransportError:
                    raise
                except (RpcCallError, Exception) as e:  # reverted, not a contract, garbage
                    _set(db, token, "rejected", "not an ERC-20 token: %s" % e)
                    ctx.count("tokens", "rejected")
                    continue
                if symbol.strip().upper() != token["symbol"].strip().upper():
                    _set(db, token, "rejected", "the contract's symbol() is %r, not %r" % (symbol, token["symbol"]))
                    ctx.count("tokens", "rejected")
                    continue
            else:
                decimals = chain.native_decimals
                if token["symbol"].strip().upper() != chain.native_symbol:
                    _set(db, token, "rejected", "the native coin of chain %d is %s, not %s"
                         % (chain_id, chain.native_symbol, token["symbol"]))
                    ctx.count("tokens", "rejected")
                    continue
            if not _has_price(db, token):
                if getattr(ctx, "prices_unavailable", False):
                    continue    # the API could not be asked this run: decide next run
                _set(db, token, "rejected", "no USD price available (the Prices API has none; "
                                            "set manual_usd_price for test networks)")
                ctx.count("tokens", "rejected")
                continue
            note = None
            if token["contract_address"]:
                try:
                    probe = probe_transfer(rpc, token["contract_address"], decimals)
                except RpcTransportError:
                    raise       # the token stays unverified for the next run
                except Exception as e:  # a reply the probe did not expect: never reject for it
                    probe = ProbeResult("probe_error", detail="%s: %s" % (type(e).__name__, e))
                if probe.fee_on_transfer:
                    _set(db, token, "rejected", probe.reason)
                    ctx.count("tokens", "rejected")
                    ctx.count("tokens", "fee_on_transfer")
                    ctx.log("tokens: %s on chain %d rejected: %s" % (token["symbol"], chain_id, probe.reason))
                    continue
                if probe.skipped:
                    note = "fee-on-transfer check skipped: %s" % probe.detail
                    ctx.count("tokens", "probe_skipped")
                    ctx.log("tokens: %s on chain %d: %s" % (token["symbol"], chain_id, probe.reason))
            _set(db, token, "active", note, decimals)
            ctx.count("tokens", "activated")
        except Exception as e:
            ctx.error("tokens", "token %s on chain %d: %s" % (token["symbol"], chain_id, e))


def run(ctx):
    refresh_prices(ctx)
    verify_tokens(ctx)
