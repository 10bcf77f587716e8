"""The fuzz test's requests through nginx -> uwsgi -> the app (deploy/localstack.py), on
MariaDB (default) or SQLite; prints the figures. Not part of the suite (it takes minutes):

    .venv/bin/python -m tests.fuzz_stack [--seconds 60] [--sqlite]

Status 0 in the figures: the request never got an answer it could read (a header value
http.client refuses to send, or nginx closed the connection on a too long URL while it was
being sent). Each role gets KEYS_PER_ROLE API keys used in turn, so the per-key limit (60 a minute,
which the uwsgi process keeps) leaves most requests to reach the endpoints.
"""
import argparse
import http.client
import json
import os
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("ENV_FILE", os.path.join(ROOT, "tests", "no-such.env"))

from tests.client import Client, Result  # noqa: E402

KEYS_PER_ROLE = 20


class StackClient(Client):
    """tests.client.Client's interface, over HTTPS to the stack."""

    stack = None

    def request(self, method, path, data=None, json_body=None, headers=None, body=None, content_type=None):
        import urllib.parse
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        elif data is not None:
            body = urllib.parse.urlencode(data).encode()
            content_type = content_type or "application/x-www-form-urlencoded"
        all_headers = dict(headers or {})
        rotate = getattr(self, "keys", None)
        if rotate and "Authorization" in all_headers:
            all_headers["Authorization"] = "Bearer " + rotate[self.turn % len(rotate)]
            self.turn += 1
        if content_type:
            all_headers["Content-Type"] = content_type
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = http.client.HTTPSConnection("127.0.0.1", self.stack.https_port, timeout=60,
                                           context=self.stack.ssl_context)
        try:
            try:
                conn.request(method, urllib.parse.quote(path, safe="/?&=%:@!$'()*+,;~-._"), body=body or None,
                             headers=all_headers)
                resp = conn.getresponse()
                result = Result(resp.status, resp.getheaders(), resp.read())
            except ValueError:  # a header value http.client will not send (a NUL): nginx never sees it
                return Result(0, [], b"")
            except (OSError, http.client.HTTPException):
                # nginx answered early and closed (e.g. 414 for a 200 kB URL while it was sent)
                return Result(0, [], b"")
        finally:
            conn.close()
        return self.keep_cookies(result)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of each random phase")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of MariaDB on 127.0.0.1:3306")
    args = parser.parse_args()
    from lib import api_keys, db as dbmod, migrate, users
    from lib import env as env_settings
    from deploy.localstack import Stack
    from tests import test_fuzz as fuzz
    users.SCRYPT_N = 2 ** 10  # the test users' hashes (verified under uwsgi with these parameters)
    tmp = tempfile.mkdtemp(prefix="mkt-fuzz-")
    admin = None
    if args.sqlite:
        dsn, user, password = f"sqlite:{tmp}/fuzz.sqlite", None, None
    else:
        import pymysql
        name = f"mkt_fuzz_{uuid.uuid4().hex[:8]}"
        admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        dsn, user, password = f"mysql:host=127.0.0.1;port=3306;dbname={name};charset=utf8mb4", "root", ""
    db = dbmod.Db(dsn, user, password)
    migrate.init(db)
    migrate.seed_defaults(db)
    salts = {"SESSION_SALT": "s" * 32, "CSRF_SALT": "c" * 32, "COOKIE_ENCRYPTION_SALT": "e" * 32}
    env = dict(salts, DB_DSN=dsn, DB_USER=user or "", DB_PASSWORD=password or "", LOG_LEVEL="WARNING")
    stack = Stack(env=env, tmp=tmp)
    stack.start()
    StackClient.stack = stack
    try:
        with dbmod.using(db), env_settings.overriding(salts):   # this process's lib calls: the stack's Db and salts
            fuzzer = fuzz.Fuzzer(db, None, make_client=StackClient)
            for role in fuzz.ROLES:
                client, _headers = fuzzer.clients[f"key:{role}"]
                client.keys = [api_keys.create_key(db, fuzzer.world[role]["uuid"], f"fuzz{i}")[0]
                               for i in range(KEYS_PER_ROLE)]
                client.turn = 0
            before = fuzz.snapshot(db)
            fuzz.sweep(fuzzer, fuzz.SWEEP_BAD, fuzz.BAD_HEADERS)
            fuzz.run_phase(fuzzer, fuzz.request_strategy(lambda j: fuzz.bad_value(j), True), args.seconds)
            after = fuzz.snapshot(db)
            bad_total = fuzzer.requests
            fuzz.sweep(fuzzer, fuzz.SWEEP_ODD)
            fuzz.run_phase(fuzzer, fuzz.request_strategy(lambda j: fuzz.any_value(fuzzer.ids, j), False), args.seconds)
    finally:
        stack.stop()
        if admin is not None:
            db.close()
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    figures = {"stack": "nginx -> uwsgi -> app", "database": "sqlite" if args.sqlite else "mariadb",
               "requests": fuzzer.requests, "bad_input_requests": bad_total,
               "statuses": {str(k): v for k, v in sorted(fuzzer.statuses.items())},
               "5xx": sum(n for s, n in fuzzer.statuses.items() if s >= 500),
               "rows_changed_by_bad_input": changed, "failures": fuzzer.failures[:10]}
    print(json.dumps(figures, indent=1))
    return 1 if figures["5xx"] or changed else 0


if __name__ == "__main__":
    sys.exit(main())
