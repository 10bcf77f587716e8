"""GET /verify-email.php?code= : open the verification link mailed by the settings page
(lib.mail.verify): the address becomes the account's. Single use, expires (24 h); a used,
expired or unknown link is 400. 404 when email is not configured.
"""
from lib import account_pages, mail
from lib.db import get_db
from lib.http import text_response
from lib.templates import render_string


def get(request):
    mail.require_enabled()
    address = mail.verify(get_db(), request.arg("code"), request.client_ip)
    if not request.wants_html:
        return text_response(f"Email address {address} verified")
    return account_pages.page("Email verified", render_string(
        "<p>Your email address <strong>{{ a }}</strong> is verified.</p>"
        '<p><a href="/settings/user.php">Settings</a></p>', a=address))
