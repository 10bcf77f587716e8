#!/usr/bin/env python3
"""Email delivery: sends the outbox that lib/mail fills.

    run(ctx)                 a duty of every cron run (cron/cron.py TASKS), after webhooks
    python cron/mail.py      one pass on its own

Settings (cron only; the web process never sees them): SMTP_URL
(smtp://user:pass@host:port, STARTTLS when the server offers it; smtps://... for TLS from
the start; no user: no login), EMAIL_FROM (default marketplace@<SITE_URL host>),
EMAIL_MAX_PER_RUN (200), EMAIL_MAX_ATTEMPTS (5), EMAIL_TIMEOUT (10 s). Without SMTP_URL
the pass does nothing (mails stay pending).

A row is claimed atomically (next_attempt_at pushed a lease ahead, only the worker whose
UPDATE changed it sends it); sent rows get status 'sent' and their body blanked (it may
hold a single-use link); failures retry after 60 s x attempts, then status 'failed'.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
    sys.path.insert(0, ROOT)

import smtplib  # noqa: E402
import ssl  # noqa: E402
import urllib.parse  # noqa: E402
from email.message import EmailMessage  # noqa: E402
from email.utils import formatdate, make_msgid  # noqa: E402

from lib.db import shift_time, utc_now  # noqa: E402

LEASE_SECONDS = 120


def _int(env, key, default):
    try:
        return max(1, int(env.get(key) or default))
    except ValueError:
        return default


def _later(seconds):
    return shift_time(utc_now(), seconds=seconds)


def parse_smtp_url(url):
    """(scheme, host, port, user, password) of smtp:// or smtps:// URL; ValueError otherwise."""
    u = urllib.parse.urlsplit(url or "")
    if u.scheme not in ("smtp", "smtps") or not u.hostname:
        raise ValueError("SMTP_URL must be smtp://[user:pass@]host[:port] or smtps://...")
    port = u.port or (465 if u.scheme == "smtps" else 25)
    user = urllib.parse.unquote(u.username) if u.username else None
    password = urllib.parse.unquote(u.password) if u.password else None
    return u.scheme, u.hostname, port, user, password


def _sender(env):
    if env.get("EMAIL_FROM"):
        return env["EMAIL_FROM"]
    host = urllib.parse.urlsplit(env.get("SITE_URL") or "").hostname or "localhost"
    return "marketplace@" + host


def _connect(env):
    scheme, host, port, user, password = parse_smtp_url(env.get("SMTP_URL"))
    timeout = _int(env, "EMAIL_TIMEOUT", 10)
    if scheme == "smtps":
        conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = smtplib.SMTP(host, port, timeout=timeout)
        conn.ehlo()
        if conn.has_extn("starttls"):
            conn.starttls(context=ssl.create_default_context())
            conn.ehlo()
    if user:
        conn.login(user, password or "")
    return conn


def deliver(env, db, count=None, log=None):
    """One pass over the due mails; returns {outcome: n}."""
    counts = {}
    count = count or (lambda key, n=1: None)

    def bump(key):
        counts[key] = counts.get(key, 0) + 1
        count(key)
    if not env.get("SMTP_URL"):
        return counts
    max_attempts = _int(env, "EMAIL_MAX_ATTEMPTS", 5)
    rows = db.query("SELECT id FROM email_outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id "
                    "LIMIT %d" % _int(env, "EMAIL_MAX_PER_RUN", 200), (utc_now(),))
    conn = None
    try:
        for r in rows:
            now = utc_now()
            if db.execute("UPDATE email_outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending' "
                          "AND next_attempt_at <= ?", (_later(LEASE_SECONDS), r["id"], now)) != 1:
                continue
            row = db.one("SELECT * FROM email_outbox WHERE id = ?", (r["id"],))
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = _sender(env), row["to_addr"], row["subject"]
            msg["Date"], msg["Message-ID"] = formatdate(usegmt=True), make_msgid()
            msg.set_content(row["body"])
            try:
                if conn is None:
                    conn = _connect(env)
                conn.send_message(msg)
            except (OSError, smtplib.SMTPException, ValueError) as e:
                conn = None
                attempts = row["attempts"] + 1
                status = "failed" if attempts >= max_attempts else "pending"
                db.execute("UPDATE email_outbox SET attempts = ?, status = ?, next_attempt_at = ?, last_error = ? "
                           "WHERE id = ?", (attempts, status, _later(60 * attempts), type(e).__name__[:255], row["id"]))
                bump(status if status == "failed" else "retry")
                if log:
                    log("email %d to outbox failed: %s" % (row["id"], type(e).__name__))
                continue
            db.execute("UPDATE email_outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, body = '' "
                       "WHERE id = ?", (utc_now(), row["id"]))
            bump("sent")
    finally:
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
    return counts


def run(ctx):
    """The cron duty: one pass (counts under 'mail')."""
    deliver(ctx.env, ctx.db, count=lambda key, n=1: ctx.count("mail", key, n), log=ctx.log)


def main():
    from cron import env as cron_env
    from lib import db as dbmod
    env = cron_env.load()
    db = dbmod.from_env()
    dbmod.set_db(db)
    print(deliver(env, db))


if __name__ == "__main__":
    main()
