#!/usr/bin/env python3
"""Helpers for deploy/install-prod.sh and tests/test_deploy.py (standard library only).

    deploytool.py render TEMPLATE OUT NAME=VALUE ...
        Copy TEMPLATE to OUT replacing every @NAME@; fails if a placeholder is
        left unfilled or a given NAME is not used (a typo).
    deploytool.py split-secrets ENV_FILE SECRETS_FILE
        Move every chain secret (the keys the web process must never have:
        MNEMONIC, ALCHEMY_*, RPC_URL_*, COMMISSION_WALLET_*, ...) out of ENV_FILE
        into SECRETS_FILE (created with mode 0600), and point ENV_FILE's
        SECRETS_FILE= at it. A value already in SECRETS_FILE is kept.
    deploytool.py set-env ENV_FILE NAME VALUE
        Set NAME=VALUE in ENV_FILE (replacing an existing line, else appending).

The policy of what is a chain secret is lib/env.py's own (is_blocked), so the
split on disk and the web process's allow-list can never disagree.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib.env import is_blocked, parse_env_file  # noqa: E402

PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
LINE_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def render_text(text, values):
    used = set()

    def fill(match):
        name = match.group(1)
        if name not in values:
            raise SystemExit(f"render: placeholder @{name}@ has no value")
        used.add(name)
        return str(values[name])

    out = PLACEHOLDER.sub(fill, text)
    unused = set(values) - used
    if unused:
        raise SystemExit(f"render: unknown placeholder(s) {', '.join(sorted(unused))}")
    return out


def render(template, out, values):
    with open(template, encoding="utf-8") as f:
        text = render_text(f.read(), values)
    write_file(out, text, 0o644)


def write_file(path, text, mode):
    """Write atomically; the file never exists with looser permissions than `mode`."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        if os.path.exists(path):
            st = os.stat(path)
            if os.geteuid() == 0:
                os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def line_key(line):
    if line.lstrip().startswith("#"):
        return None
    m = LINE_KEY.match(line)
    return m.group(1) if m else None


def set_env(path, name, value):
    lines = read_lines(path)
    new = f"{name}={value}"
    for i, line in enumerate(lines):
        if line_key(line) == name:
            lines[i] = new
            break
    else:
        lines.append(new)
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o600
    write_file(path, "\n".join(lines) + "\n", mode)


def split_secrets(env_path, secrets_path):
    """Returns the list of keys moved. Comment lines (documentation) stay in .env."""
    env_lines = read_lines(env_path)
    existing = dict(parse_env_file(secrets_path))
    secret_lines = read_lines(secrets_path)
    if not secret_lines:
        secret_lines = [
            "# Chain secrets of the marketplace cron (SPEC section 3).",
            "# Readable only by the cron user; the web process never sees this file.",
        ]
    keep, moved = [], []
    for line in env_lines:
        key = line_key(line)
        if key is None or key == "SECRETS_FILE" or not is_blocked(key):
            keep.append(line)
            continue
        moved.append(key)
        value = line_value(line)
        if key not in existing:
            secret_lines.append(line.strip())
            existing[key] = value
        elif value and not existing[key]:
            secret_lines = [line.strip() if line_key(s) == key else s for s in secret_lines]
            existing[key] = value
        elif value and value != existing[key]:
            print(f"split-secrets: {key} differs between {env_path} and {secrets_path};"
                  f" keeping the value in {secrets_path}", file=sys.stderr)
    write_file(secrets_path, "\n".join(secret_lines) + "\n", 0o600)
    env_mode = os.stat(env_path).st_mode & 0o777 if os.path.exists(env_path) else 0o600
    write_file(env_path, "\n".join(keep) + "\n", env_mode)
    set_env(env_path, "SECRETS_FILE", secrets_path)
    return moved


def line_value(line):
    """The value of a KEY=VALUE line, parsed as lib.env.parse_env_file does."""
    value = line.split("=", 1)[1].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def main(argv):
    if len(argv) >= 3 and argv[0] == "render":
        values = {}
        for item in argv[3:]:
            if "=" not in item:
                raise SystemExit(f"render: expected NAME=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            values[k] = v
        render(argv[1], argv[2], values)
    elif len(argv) == 3 and argv[0] == "split-secrets":
        moved = split_secrets(argv[1], argv[2])
        print(f"moved to {argv[2]}: {', '.join(moved) if moved else 'nothing'}")
    elif len(argv) == 4 and argv[0] == "set-env":
        set_env(argv[1], argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
