"""Environment loader for the cron process: it loads everything.

Order of precedence: the process environment, then `.env` (or `ENV_FILE`),
then `SECRETS_FILE` (a file only the cron user can read, holding MNEMONIC,
ALCHEMY_API_KEY, COMMISSION_WALLET_* ...). The secrets are kept in a dict
returned by `load()` rather than exported, so child processes do not inherit them.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from lib import env as web_env  # noqa: E402  (the same parser and allow-list as the web)


def _abs(path):
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def load():
    """Return every setting as a dict (process env > .env > SECRETS_FILE); read booleans
    from it with lib.env.flag(key, settings).

    The non-secret settings (DB_*, SITE_* ...) are also exported to os.environ so
    lib.db and lib.config (shared with the web) find them.
    """
    values = {}
    file_values = dict(web_env.parse_env_file(web_env.env_file_path()))
    secrets_file = os.environ.get("SECRETS_FILE") or file_values.get("SECRETS_FILE")
    if secrets_file:
        secrets_file = _abs(secrets_file)
        if not os.path.exists(secrets_file):
            raise RuntimeError(f"SECRETS_FILE {secrets_file} does not exist")
        values.update(web_env.parse_env_file(secrets_file))
    values.update(file_values)
    values.update(os.environ)
    for key, value in values.items():
        if web_env.is_allowed(key) and not web_env.is_blocked(key):
            os.environ.setdefault(key, value)
    return values
