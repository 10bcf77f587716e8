"""GET / : the home page for browsers, `OK` for health checks of the original."""
from lib.http import html_response, text_response


def get(request):
    if not request.wants_html:
        return text_response("OK")
    return html_response(
        "<!doctype html><html><head><meta charset='utf-8'><title>Marketplace</title>"
        "<link rel='stylesheet' href='/static/style.css'></head>"
        "<body><main><h1>Marketplace</h1><p>Crypto-escrow marketplace.</p></main></body></html>")
