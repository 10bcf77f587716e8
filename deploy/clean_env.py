"""Start a web-process command without the chain secrets in its environment.

    .venv/bin/python deploy/clean_env.py COMMAND [ARG ...]

Replaces itself (exec, same PID: systemd's Type=notify and MAINPID keep working) by
COMMAND with this environment minus every key the web process must never have
(lib/env.py is_blocked: MNEMONIC, ALCHEMY_*, RPC_URL_*, COMMISSION_WALLET_*, ...).
Deleting such a key inside the process is not enough: /proc/PID/environ keeps the
environment a process was started with, and uwsgi's workers inherit the master's.
The systemd unit starts uwsgi through this; wsgi.py refuses to run under a uwsgi
started with a secret in its environment.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib.env import is_blocked  # noqa: E402


def main(argv):
    if not argv:
        print("usage: clean_env.py COMMAND [ARG ...]", file=sys.stderr)
        return 2
    removed = sorted(k for k in os.environ if is_blocked(k))
    if removed:
        print(f"clean_env: starting {os.path.basename(argv[0])} without {', '.join(removed)}",
              file=sys.stderr, flush=True)
    env = {k: v for k, v in os.environ.items() if not is_blocked(k)}
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        print(f"clean_env: cannot run {argv[0]}: {e}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
