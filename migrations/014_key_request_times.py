"""The API key rate limit in the key's own row.

api_keys.request_times: the times of the key's last RATE_LIMIT accepted requests, oldest
first, each 13 digits of milliseconds since the epoch (lib/api_keys.count_request checks
and appends in one UPDATE). MEDIUMTEXT on MariaDB: tests raise the limit to a million.
The rows of api_key_requests it replaces are deleted (a minute later they would all be
outside the window anyway).
"""
from lib.migrate import add_column


def up(db):
    add_column(db, "api_keys", "request_times", ("TEXT" if db.is_sqlite else "MEDIUMTEXT") + " NOT NULL DEFAULT ''")
    db.execute("DELETE FROM api_key_requests")
