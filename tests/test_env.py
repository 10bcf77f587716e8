"""Secrets isolation: the web process never sees chain secrets; cron sees everything."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ENV_TEXT = """
# a developer's .env
DB_DRIVER=sqlite
DB_DSN=sqlite:db/test-env.sqlite
SITE_URL=https://shop.example
SESSION_SALT='abc'
MNEMONIC="test test test test test test test test test test test junk"
ALCHEMY_API_KEY=alchemy-secret
RPC_URL_31337=http://127.0.0.1:8545
COMMISSION_WALLET_MAINNET=0x000000000000000000000000000000000000dEaD
UNKNOWN_THING=1
"""

WEB_PROBE = """
import os, sys, json
sys.path.insert(0, %r)
import wsgi  # importing the web app loads the environment
from lib import env
out = {k: os.environ.get(k) for k in ("MNEMONIC", "ALCHEMY_API_KEY", "RPC_URL_31337",
       "COMMISSION_WALLET_MAINNET", "UNKNOWN_THING", "SITE_URL", "SESSION_SALT", "DB_DSN")}
try:
    env.get("MNEMONIC"); out["get"] = "allowed"
except KeyError:
    out["get"] = "refused"
# Nothing in the process memory of loaded env values either: only os.environ holds them.
print(json.dumps(out))
""" % ROOT

CRON_PROBE = """
import sys, json
sys.path.insert(0, %r)
from cron import env
values = env.load()
print(json.dumps({k: values.get(k) for k in ("MNEMONIC", "ALCHEMY_API_KEY", "SITE_URL", "EXTRA")}))
""" % ROOT


def run(code, env_file, extra_env=None):
    import json
    environment = {"PATH": os.environ["PATH"], "ENV_FILE": str(env_file)}
    environment.update(extra_env or {})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=environment, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_web_never_sees_chain_secrets_from_env_file(tmp_path):
    f = tmp_path / ".env"
    f.write_text(ENV_TEXT)
    seen, _ = run(WEB_PROBE, f)
    assert seen["MNEMONIC"] is None and seen["ALCHEMY_API_KEY"] is None
    assert seen["RPC_URL_31337"] is None and seen["COMMISSION_WALLET_MAINNET"] is None
    assert seen["UNKNOWN_THING"] is None
    assert seen["get"] == "refused"
    assert seen["SITE_URL"] == "https://shop.example"
    assert seen["SESSION_SALT"] == "abc"


def test_web_scrubs_inherited_secrets_and_warns(tmp_path):
    f = tmp_path / ".env"
    f.write_text("SITE_URL=http://x\n")
    seen, stderr = run(WEB_PROBE, f, {"MNEMONIC": "leaked words", "ALCHEMY_API_KEY": "k"})
    assert seen["MNEMONIC"] is None and seen["ALCHEMY_API_KEY"] is None
    assert "MNEMONIC" in stderr and "removed" in stderr


def test_process_environment_wins_over_env_file(tmp_path):
    f = tmp_path / ".env"
    f.write_text("SITE_URL=http://from-file\n")
    seen, _ = run(WEB_PROBE, f, {"SITE_URL": "http://from-process"})
    assert seen["SITE_URL"] == "http://from-process"


def test_cron_sees_everything_including_secrets_file(tmp_path):
    f = tmp_path / ".env"
    f.write_text(ENV_TEXT.replace("MNEMONIC=", "#MNEMONIC=") + f"SECRETS_FILE={tmp_path}/secrets.env\n")
    (tmp_path / "secrets.env").write_text("MNEMONIC=from secrets file\nEXTRA=1\n")
    seen, _ = run(CRON_PROBE, f)
    assert seen == {"MNEMONIC": "from secrets file", "ALCHEMY_API_KEY": "alchemy-secret",
                    "SITE_URL": "https://shop.example", "EXTRA": "1"}


def test_cron_reads_mnemonic_from_env_file(tmp_path):
    f = tmp_path / ".env"
    f.write_text(ENV_TEXT)
    seen, _ = run(CRON_PROBE, f)
    assert seen["MNEMONIC"] == "test test test test test test test test test test test junk"


def test_write_env_file_fills_salts(tmp_path):
    from lib import env
    example = tmp_path / "example"
    example.write_text("SESSION_SALT=\nCSRF_SALT=\nDB_DRIVER=sqlite\n")
    target = tmp_path / ".env"
    assert env.write_env_file(str(target), str(example)) is True
    values = dict(env.parse_env_file(str(target)))
    assert len(values["SESSION_SALT"]) == 64 and values["SESSION_SALT"] != values["CSRF_SALT"]
    assert oct(os.stat(target).st_mode & 0o777) == "0o600"
    assert env.write_env_file(str(target), str(example)) is False  # never overwritten


FLAGS = ("ALLOW_DEV_CHAIN", "ALLOW_TESTNETS", "EMAIL_ENABLED", "WEBHOOK_ALLOW_PRIVATE")

WEB_FLAGS_PROBE = """
import json, sys
sys.path.insert(0, %r)
import wsgi  # noqa: F401 (loads the settings as the web process does)
from lib import mail, tokens, webhooks
print(json.dumps({"ALLOW_DEV_CHAIN": tokens.allow_dev(), "ALLOW_TESTNETS": tokens.allow_testnets(),
                  "EMAIL_ENABLED": mail.enabled(), "WEBHOOK_ALLOW_PRIVATE": webhooks.allow_private(),
                  "dev_chain_payable": tokens.chain_allowed(31337)}))
""" % ROOT

CRON_FLAGS_PROBE = """
import json, sys
sys.path.insert(0, %r)
from cron import env
from lib import chains, webhooks
from lib.env import flag
values = env.load()
print(json.dumps({"ALLOW_DEV_CHAIN": chains.allow_dev_from_env(values),
                  "ALLOW_TESTNETS": flag("ALLOW_TESTNETS", values),
                  "EMAIL_ENABLED": flag("EMAIL_ENABLED", values),
                  "WEBHOOK_ALLOW_PRIVATE": webhooks.allow_private(values)}))
""" % ROOT


@pytest.mark.parametrize("spelling,on", [("1", True), ("true", True), ("TRUE", True), ("yes", True),
                                         ("on", True), ("0", False), ("false", False), ("no", False),
                                         ("off", False), ("", False), ("2", False)])
def test_web_and_cron_read_every_boolean_setting_the_same_way(tmp_path, spelling, on):
    f = tmp_path / ".env"
    f.write_text("".join(f"{key}={spelling}\n" for key in FLAGS))
    web, _ = run(WEB_FLAGS_PROBE, f)
    cron, _ = run(CRON_FLAGS_PROBE, f)
    assert {k: web[k] for k in FLAGS} == cron == {k: on for k in FLAGS}
    assert web["dev_chain_payable"] is on  # cron watches chain 31337 exactly when the web takes its orders
