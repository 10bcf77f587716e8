#!/bin/sh
# What tests/test_deploy.py and bench/web.py need beside the virtualenv:
# nginx, openssl and systemd (systemd-analyze checks the unit) from the distribution's
# packages, uwsgi (requirements-prod.txt) built into .venv. Idempotent and quick when
# everything is there.
#     sh deploy/deps.sh [extra Debian packages, e.g. wrk]
# Run by `make deploy-deps` (a prerequisite of `make test`).
set -eu
cd "$(dirname "$0")/.."

missing=""
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
has nginx || missing="$missing nginx"
has openssl || missing="$missing openssl"
has runuser || missing="$missing util-linux"
has systemd-analyze || missing="$missing systemd"
for pkg in "$@"; do
    has "$pkg" || missing="$missing $pkg"
done
want_uwsgi=$(sed -n 's/^uWSGI==//p' requirements-prod.txt)
have_uwsgi=$(.venv/bin/uwsgi --version 2>/dev/null || true)
if [ "$have_uwsgi" != "$want_uwsgi" ]; then
    has gcc || missing="$missing gcc"
fi

if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "deploy-deps: cannot install$missing (not root, no sudo); the deployment" \
             "test will skip them (fail under CI)" >&2
        SUDO=none
    fi
    if [ "$SUDO" != none ]; then
        echo "deploy-deps: installing$missing"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        # shellcheck disable=SC2086
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi

if [ "$have_uwsgi" != "$want_uwsgi" ]; then
    echo "deploy-deps: building uwsgi $want_uwsgi into .venv (about half a minute)"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-prod.txt
fi
