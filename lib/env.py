"""The settings loader: the web process reads its settings here, cron (cron/env.py)
reads the same files with the same parser and adds its secrets; booleans are read by
`flag()` in both.

The web process may only see the keys it needs (SPEC section 3). `.env` is read
through an allow-list: a key that is not allowed is neither put into
`os.environ` nor kept in memory. If a chain secret was inherited from the
parent process environment, it is removed and a warning is logged, so a
compromised web process cannot read it from its own environment.

The process environment wins over `.env`; `ENV_FILE` names another file.
"""
import contextlib
import contextvars
import logging
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

log = logging.getLogger("env")

# Exact keys and prefixes the web process may read.
ALLOWED_KEYS = {
    "SESSION_SALT", "COOKIE_ENCRYPTION_SALT", "CSRF_SALT", "ENV_FILE",
    "ALLOW_DEV_CHAIN", "ALLOW_TESTNETS", "TRUSTED_PROXIES", "HOST", "PORT", "LOG_LEVEL",
    "SESSION_IDLE_MINUTES", "CI",
    "WEBHOOK_ALLOW_PRIVATE", "EMAIL_ENABLED",
    "AGENT_IDENTITY_VERIFY_URL", "AGENT_IDENTITY_SCOPES", "AGENT_IDENTITY_TIMEOUT",
    "MEDIA_DIR",
}
# Metrics (lib/metrics.py): who may read /metrics, and prometheus_client's own
# directory for the values of every uwsgi worker.
ALLOWED_KEYS |= {"METRICS_ALLOW", "PROMETHEUS_MULTIPROC_DIR"}
ALLOWED_PREFIXES = ("DB_", "SITE_")

# Keys the web process must never have, even if inherited.
BLOCKED_KEYS = {"MNEMONIC", "SECRETS_FILE"}
BLOCKED_PREFIXES = ("ALCHEMY_", "RPC_URL_", "COMMISSION_WALLET_", "GAS_STATION_", "SMTP_")


def is_allowed(key):
    return key in ALLOWED_KEYS or key.startswith(ALLOWED_PREFIXES)


def is_blocked(key):
    return key in BLOCKED_KEYS or key.startswith(BLOCKED_PREFIXES)


def parse_env_file(path):
    """Yield (key, value) pairs of a dotenv file: KEY=VALUE, # comments,
    optional single or double quotes, optional `export ` prefix."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        yield key, value


def env_file_path():
    path = os.environ.get("ENV_FILE") or os.path.join(ROOT, ".env")
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def scrub_environment():
    """Remove chain secrets inherited from the parent process."""
    for key in list(os.environ):
        if is_blocked(key):
            del os.environ[key]
            log.warning("removed blocked key %s from the web process environment", key)


_loaded = False


def load():
    """Load `.env` into os.environ through the allow-list (once per process)."""
    global _loaded
    scrub_environment()
    if _loaded:
        return
    for key, value in parse_env_file(env_file_path()):
        if is_allowed(key) and not is_blocked(key):
            os.environ.setdefault(key, value)
    _loaded = True


# How every boolean setting is read, by the web process and by cron alike.
TRUE_WORDS = ("1", "true", "yes", "on")


def parse_flag(value):
    """A boolean setting: 1, true, yes or on (any case, spaces around ignored) is on;
    anything else, a missing setting included, is off."""
    return str(value if value is not None else "").strip().lower() in TRUE_WORDS


def flag(key, settings=None):
    """A boolean setting from `settings` (cron's dict of every setting) when given, else
    from the web process's environment (through the allow-list)."""
    return parse_flag(settings.get(key) if settings is not None else get(key))


# Settings of the application serving the current request (wsgi.make_app), over the environment.
_app_settings = contextvars.ContextVar("app_settings", default=None)


@contextlib.contextmanager
def overriding(settings):
    """Inside the block (this thread or task only) get() answers `settings` first; only keys
    the web process may read are accepted. None or {} leaves the environment alone."""
    if not settings:
        yield
        return
    refused = sorted(k for k in settings if not is_allowed(k) or is_blocked(k))
    if refused:
        raise KeyError(f"{', '.join(refused)} not available to the web process")
    token = _app_settings.set(dict(_app_settings.get() or {}, **settings))
    try:
        yield
    finally:
        _app_settings.reset(token)


def get(key, default=None):
    if not is_allowed(key):
        raise KeyError(f"{key} is not available to the web process")
    settings = _app_settings.get()
    if settings is not None and key in settings:
        value = settings[key]
        return default if value is None else value
    load()
    return os.environ.get(key, default)


def write_env_file(path=None, example=None):
    """Create `.env` from `.env.example`, filling the empty salts with random values.

    Leaves an existing file alone. Used by `make run` on a fresh machine.
    """
    import secrets
    path = path or os.path.join(ROOT, ".env")
    example = example or os.path.join(ROOT, ".env.example")
    if os.path.exists(path):
        return False
    out = []
    with open(example, encoding="utf-8") as f:
        for line in f.read().splitlines():
            key = line.split("=", 1)[0].strip()
            if key.endswith("_SALT") and line.strip() == key + "=":
                line = f"{key}={secrets.token_hex(32)}"
            out.append(line)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return True


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["--init"]:
        target = env_file_path()  # .env, or the file ENV_FILE names
        print(f"{target} created with fresh salts" if write_env_file(target)
              else f"{target} exists; left as it is")
