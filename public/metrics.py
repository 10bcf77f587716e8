"""GET /metrics : Prometheus text format (lib/metrics.py), only for addresses in
METRICS_ALLOW; everyone else gets the same 404 as a path that does not exist."""
from lib import metrics
from lib.db import get_db
from lib.http import NotFound, Response


def get(request):
    if not metrics.allowed(request.client_ip):
        raise NotFound("not found")
    return Response(metrics.exposition(get_db()), 200, metrics.CONTENT_TYPE,
                    [("Cache-Control", "no-store")])
