"""GET /api/skill.php: a guide for an AI agent to this marketplace (text/markdown; charset=utf-8),
generated at request time from the OpenAPI document (lib/openapi.py) and the order rule book,
so it never drifts from the API (lib/skill.py). Anyone may read it."""
from lib import env, openapi, skill
from lib.http import Response


def base_url(request):
    site = (env.get("SITE_URL", "") or "").strip().rstrip("/")
    if site:
        return site
    scheme = request.environ.get("wsgi.url_scheme", "http")
    host = request.headers.get("host") or request.environ.get("SERVER_NAME", "localhost")
    return f"{scheme}://{host}"


def get(request):
    text = skill.markdown(openapi.document(), base_url(request))
    return Response(text, 200, "text/markdown; charset=utf-8", [("Cache-Control", "no-cache")])
