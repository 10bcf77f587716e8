"""Email, when configured: addresses, recovery links, notifications.

On only with EMAIL_ENABLED=1 in the web settings (set it together with cron's SMTP_URL;
the web process never sees SMTP_URL nor connects anywhere). Without it nothing here
runs: the settings page shows no email section and /recover-email.php says email is
not configured.

The web process only writes rows of `email_outbox`, in the transaction of the change
the mail reports; cron/email.py sends them (SMTP_URL, EMAIL_FROM) and blanks each body
once sent (a body may hold a single-use link).

- An address is verified by a link (/verify-email.php?code=..., single use, valid
  VERIFY_HOURS); until then it is not used.
- Password recovery (/recover-email.php): the answer is the same whether or not the
  address belongs to anyone. Rate limited: RESET_PER_IP requests per IP and
  RESET_PER_USER mails per account per hour (over the IP limit: 429; over the account
  limit: no mail, same answer). The link is single use, valid an hour; using it sets
  the password and ends every session of the account. Both limits are exact under
  concurrency (lib.users' reservation serializes the count and the insert).
- Notifications (order.paid, order.dispatched, order.released, dispute: opened, claim
  added, resolved) go to the buyer and the store's members with a verified address,
  except the kinds they turned off (users.email_off). A new message (lib/messages) mails
  its recipients the same way (kind "message"; the mail links to the thread and does not
  carry the message itself).
Tokens are stored as SHA-256 only.
"""
import hashlib
import re
import secrets

from lib import audit, env, users
from lib.db import shift_time, utc_now
from lib.http import BadRequest, NotFound, TooManyRequests

VERIFY_HOURS = 24
RESET_MINUTES = 60
RESET_PER_IP = 10
RESET_PER_USER = 3
EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]{20,100}")
# The kinds a user can turn off, and the label the settings show.
KINDS = {"order.paid": "an order was paid", "order.dispatched": "an order was dispatched",
         "order.released": "an order's money was released", "dispute": "a dispute was opened, updated or resolved",
         "message": "someone sent you a message"}
EVENT_KIND = {"order.paid": "order.paid", "order.dispatched": "order.dispatched",
              "order.released": "order.released", "dispute.opened": "dispute",
              "dispute.claim_added": "dispute", "dispute.resolved": "dispute"}


def enabled():
    return env.flag("EMAIL_ENABLED")


def require_enabled():
    if not enabled():
        raise NotFound("email is not configured on this site")


def site_url():
    return (env.get("SITE_URL", "") or "http://localhost:8000").rstrip("/")


def _hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def validate_email(address, field="email"):
    if not isinstance(address, str) or len(address.strip()) > 254 or not EMAIL_RE.fullmatch(address.strip()):
        raise BadRequest("not an email address", fields={field: "not an email address"})
    return address.strip()


def queue(db, user_uuid, to_addr, kind, subject, body):
    """Write one mail to the outbox (call inside the change's transaction)."""
    now = utc_now()
    return db.insert("email_outbox", {"user_uuid": user_uuid, "to_addr": to_addr, "kind": kind,
                                      "subject": subject[:255], "body": body, "status": "pending", "attempts": 0,
                                      "next_attempt_at": now, "last_error": None, "created_at": now,
                                      "sent_at": None})


def _new_token(db, user_uuid, purpose, expires_at, address=None):
    token = secrets.token_urlsafe(32)
    db.insert("email_tokens", {"user_uuid": user_uuid, "purpose": purpose, "token_hash": _hash(token),
                               "email": address, "created_at": utc_now(), "expires_at": expires_at,
                               "used_at": None})
    return token


def peek_token(db, token, purpose):
    """The live token's row (who it is for) without using it up; None if unknown, used or expired."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        return None
    row = db.one("SELECT * FROM email_tokens WHERE token_hash = ? AND purpose = ?", (_hash(token), purpose))
    if row is None or row["used_at"] or row["expires_at"] <= utc_now():
        return None
    return row


def _take_token(db, token, purpose):
    """Use up a live token (exactly once, also under concurrency); its row, else 400."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise BadRequest("this link is not valid", fields={"code": "not valid"})
    row = db.one("SELECT * FROM email_tokens WHERE token_hash = ? AND purpose = ?", (_hash(token), purpose))
    now = utc_now()
    if row is None or row["used_at"] or row["expires_at"] <= now:
        raise BadRequest("this link is not valid, was used already or has expired", fields={"code": "not valid"})
    if db.execute("UPDATE email_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL", (now, row["id"])) != 1:
        raise BadRequest("this link was used already", fields={"code": "used"})
    return row


# -- the user's address and preferences ------------------------------------------------

def settings_of(db, user_uuid):
    row = db.one("SELECT email, email_verified_at, email_off FROM users WHERE uuid = ?", (user_uuid,))
    off = set(filter(None, (row["email_off"] or "").split(","))) if row else set()
    pending = db.one("SELECT email FROM email_tokens WHERE user_uuid = ? AND purpose = 'verify' AND used_at IS NULL "
                     "AND expires_at > ? ORDER BY id DESC LIMIT 1", (user_uuid, utc_now()))
    return {"email": row["email"] if row else None, "email_verified_at": row["email_verified_at"] if row else None,
            "pending_email": pending["email"] if pending else None,
            "notifications": {k: k not in off for k in KINDS}}


def request_verification(db, user, address, ip=None):
    """Send a verification link to `address`; it becomes the user's address once opened."""
    require_enabled()
    address = validate_email(address)
    with db.transaction():
        db.execute("UPDATE email_tokens SET used_at = ? WHERE user_uuid = ? AND purpose = 'verify' "
                   "AND used_at IS NULL", (utc_now(), user["uuid"]))
        token = _new_token(db, user["uuid"], "verify", shift_time(utc_now(), hours=VERIFY_HOURS), address)
        link = f"{site_url()}/verify-email.php?code={token}"
        queue(db, user["uuid"], address, "verify", "Confirm your email address",
              f"Hello {user['username']},\n\nopen this link to use {address} for your account:\n\n{link}\n\n"
              f"It works once, for {VERIFY_HOURS} hours. If you did not ask for this, ignore this mail.\n")
        audit.log(db, "email_verification_sent", user["uuid"], user["uuid"], None, ip)
    return address


def verify(db, token, ip=None):
    """Open a verification link: the address becomes the user's. Returns the address."""
    require_enabled()
    with db.transaction():
        row = _take_token(db, token, "verify")
        db.execute("UPDATE users SET email = ?, email_verified_at = ?, updated_at = ? WHERE uuid = ?",
                   (row["email"], utc_now(), utc_now(), row["user_uuid"]))
        audit.log(db, "email_verified", row["user_uuid"], row["user_uuid"], None, ip)
    return row["email"]


def remove_email(db, user_uuid, ip=None):
    with db.transaction():
        db.execute("UPDATE users SET email = NULL, email_verified_at = NULL, updated_at = ? WHERE uuid = ?",
                   (utc_now(), user_uuid))
        db.execute("UPDATE email_tokens SET used_at = ? WHERE user_uuid = ? AND used_at IS NULL",
                   (utc_now(), user_uuid))
        audit.log(db, "email_removed", user_uuid, user_uuid, None, ip)


def set_notifications(db, user_uuid, on_kinds, ip=None):
    """`on_kinds`: the kinds that stay on (others are turned off)."""
    bad = [k for k in on_kinds if k not in KINDS]
    if bad:
        raise BadRequest("unknown notification kind " + ", ".join(sorted(bad)[:3]),
                        fields={"notify": "one of " + ", ".join(KINDS)})
    off = ",".join(k for k in KINDS if k not in on_kinds)
    with db.transaction():
        db.execute("UPDATE users SET email_off = ?, updated_at = ? WHERE uuid = ?", (off or None, utc_now(), user_uuid))
        audit.log(db, "email_notifications", user_uuid, user_uuid, off or "all on", ip)


# -- password recovery by email link ----------------------------------------------------

def request_reset(db, address, ip=None):
    """Mail a reset link to the account with this verified address, if there is one.
    The caller says the same thing either way. 429 over the per-IP limit."""
    require_enabled()
    address = validate_email(address)
    # Counted and inserted in one serialized reservation (as logins are), so concurrent
    # requests cannot both see room under a limit.
    with users._reservation(db):
        since = shift_time(utc_now(), hours=-1)
        if ip and db.value("SELECT COUNT(*) FROM email_requests WHERE ip = ? AND created_at > ?",
                           (ip[:45], since)) >= RESET_PER_IP:
            raise TooManyRequests("too many recovery requests from this address; try again in an hour",
                            [("Retry-After", "3600")])
        user = db.one("SELECT uuid, username, email FROM users WHERE email IS NOT NULL AND LOWER(email) = ? "
                      "AND email_verified_at IS NOT NULL AND banned = 0", (address.lower(),))
        db.insert("email_requests", {"ip": (ip or "")[:45] or None, "user_uuid": user["uuid"] if user else None,
                                     "created_at": utc_now()})
        if user is None:
            return False
        if db.value("SELECT COUNT(*) FROM email_requests WHERE user_uuid = ? AND created_at > ?",
                    (user["uuid"], since)) > RESET_PER_USER:
            return False
        token = _new_token(db, user["uuid"], "reset", shift_time(utc_now(), minutes=RESET_MINUTES))
        link = f"{site_url()}/recover-email.php?code={token}"
        queue(db, user["uuid"], user["email"], "reset", "Reset your password",
              f"Hello {user['username']},\n\nopen this link to choose a new password:\n\n{link}\n\n"
              "It works once, for an hour, and signs out every session of your account.\n"
              "If you did not ask for this, ignore this mail: your password stays as it is.\n")
        audit.log(db, "password_reset_mailed", user["uuid"], user["uuid"], None, ip)
    return True


def check_reset_token(db, token):
    """Whether a reset link is live (the form is shown only then); nothing is used up."""
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        return False
    row = db.one("SELECT used_at, expires_at FROM email_tokens WHERE token_hash = ? AND purpose = 'reset'",
                 (_hash(token),))
    return bool(row) and not row["used_at"] and row["expires_at"] > utc_now()


def reset_password(db, token, new_password, ip=None):
    """Use a reset link: set the password, end every session, use up the link."""
    require_enabled()
    users.validate_password(new_password, "new_password")
    password_hash = users.hash_password(new_password)
    with db.transaction():
        row = _take_token(db, token, "reset")
        db.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE uuid = ?",
                   (password_hash, utc_now(), row["user_uuid"]))
        db.execute("DELETE FROM sessions WHERE user_uuid = ?", (row["user_uuid"],))
        db.execute("UPDATE email_tokens SET used_at = ? WHERE user_uuid = ? AND purpose = 'reset' AND used_at IS NULL",
                   (utc_now(), row["user_uuid"]))
        audit.log(db, "password_reset_by_email", row["user_uuid"], row["user_uuid"], None, ip)
    return row["user_uuid"]


# -- notifications -------------------------------------------------------------------------

def notify(db, event_type, transaction_uuid, store_uuid, buyer_uuid, text=None):
    """Queue a notification of `event_type` (lib/webhooks' emit points call this inside
    the change's transaction) for the buyer and the store's members."""
    kind = EVENT_KIND.get(event_type)
    if kind is None or not enabled():
        return 0
    people = {buyer_uuid} if buyer_uuid else set()
    if store_uuid:
        people.update(r["user_uuid"] for r in db.query("SELECT user_uuid FROM store_users WHERE store_uuid = ?",
                                                       (store_uuid,)))
    if not people:
        return 0
    rows = db.query("SELECT uuid, username, email, email_off FROM users WHERE uuid IN (%s) AND email IS NOT NULL "
                    "AND email_verified_at IS NOT NULL AND banned = 0" % ", ".join("?" * len(people)), sorted(people))
    n = 0
    what = text or event_type.replace(".", " ").replace("_", " ")
    for r in rows:
        if kind in (r["email_off"] or "").split(","):
            continue
        queue(db, r["uuid"], r["email"], event_type, f"Order {transaction_uuid[:8]}: {what}",
              f"Hello {r['username']},\n\n{what}: order {transaction_uuid}.\n\n"
              f"{site_url()}/payment.php?uuid={transaction_uuid}\n\n"
              f"Turn these mails off in {site_url()}/settings/user.php\n")
        n += 1
    return n


def notify_message(db, user_uuids, sender_name, link):
    """Queue a new-message mail (inside the message's transaction) for each of `user_uuids`
    with a verified address who did not turn the "message" kind off. Returns how many."""
    people = sorted(set(u for u in user_uuids if u))
    if not enabled() or not people:
        return 0
    rows = db.query("SELECT uuid, username, email, email_off FROM users WHERE uuid IN (%s) AND email IS NOT NULL "
                    "AND email_verified_at IS NOT NULL AND banned = 0" % ", ".join("?" * len(people)), people)
    n = 0
    for r in rows:
        if "message" in (r["email_off"] or "").split(","):
            continue
        queue(db, r["uuid"], r["email"], "message", f"New message from {sender_name}",
              f"Hello {r['username']},\n\n{sender_name} sent you a message:\n\n{site_url()}{link}\n\n"
              f"Turn these mails off in {site_url()}/settings/user.php\n")
        n += 1
    return n
