"""GET /health.php : database reachable, last cron run and its age, chain heads seen by cron,
and the payout engine's figures (lib.staff.payout_figures): counts of payouts waiting,
mined, replaced and failed, intents needing attention or held back, open staff flags, the
gas station's address and balance per chain, and `warnings` an operator should act on.

Public: counts and the gas station only, never order ids or amounts of orders. A few
indexed queries (payouts by status, intents by status, open flags), so it stays cheap.
"""

from lib import staff
from lib.db import age_seconds, get_db
from lib.http import json_response


def get(request):
    try:
        db = get_db()
        last = db.one("SELECT started_at, finished_at, ok FROM cron_runs ORDER BY id DESC LIMIT 1")
        heads = db.query("SELECT * FROM chain_heads ORDER BY chain_id")
    except Exception as e:
        return json_response({"ok": False, "database": "unreachable",
                              "error": type(e).__name__}, 503)
    figures = staff.payout_figures(db, heads=heads)
    cron = None
    if last:
        cron = {"started_at": last["started_at"], "finished_at": last["finished_at"],
                "ok": bool(last["ok"]), "age_seconds": int(age_seconds(last["started_at"]))}
    return json_response({"ok": True, "database": "reachable", "last_cron_run": cron,
                          "chains": [{"chain_id": h["chain_id"], "head_block": h["block_number"],
                                      "seen_at": h["seen_at"]} for h in heads],
                          "payouts": staff.public_payout_figures(figures),
                          "warnings": figures["warnings"]})
