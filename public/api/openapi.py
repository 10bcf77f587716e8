"""GET /api/openapi.json: the OpenAPI 3.1 description of every JSON endpoint (lib/openapi.py)."""
from lib import openapi
from lib.http import json_response


def get(request):
    return json_response(openapi.document())
