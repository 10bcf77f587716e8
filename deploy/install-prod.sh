#!/usr/bin/env bash
# Production install of the marketplace on Debian/Ubuntu (SPEC sections 3 and 9).
#
#     sudo SERVER_NAME=shop.example.com make install-prod
#
# Idempotent: run it again after `git pull` or a change of settings. It
#   1. installs nginx, the build tools for uwsgi, cron and logrotate (apt);
#   2. creates the web user (runs uwsgi) and the cron user (runs cron, the only
#      one that can read the chain secrets); the cron user joins the web group
#      to read .env and write the SQLite files; the web user joins nginx's group
#      to hand it the uwsgi socket;
#   3. builds .venv with the runtime dependencies and uwsgi;
#   4. creates .env (fresh salts) if missing, moves every chain secret out of it
#      into SECRETS_FILE (owner cron user, mode 0600), .env becomes root:web 0640;
#   5. initialises or migrates the database as the web user;
#   6. renders deploy/ templates: uwsgi.ini, the systemd unit, the nginx site,
#      /etc/cron.d/marketplace and the logrotate rule;
#   7. enables and (re)starts uwsgi, checks and reloads nginx.
#
# Every setting below can be given in the environment. Tests run it with all
# paths in a temporary directory and INSTALL_PACKAGES=0 INSTALL_VENV=0 INIT_DB=0
# START_SERVICES=0.
set -euo pipefail

APP_DIR=${APP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SERVER_NAME=${SERVER_NAME:-$(hostname -f 2>/dev/null || hostname)}
WEB_USER=${WEB_USER:-mkt-web}
CRON_USER=${CRON_USER:-mkt-cron}
NGINX_GROUP=${NGINX_GROUP:-www-data}
ENV_FILE=${ENV_FILE:-$APP_DIR/.env}
ETC_DIR=${ETC_DIR:-/etc/marketplace}
SECRETS_FILE=${SECRETS_FILE:-$ETC_DIR/secrets.env}
DATA_DIR=${DATA_DIR:-/var/lib/marketplace}
MEDIA_DIR=${MEDIA_DIR:-$DATA_DIR/media}
LOG_DIR=${LOG_DIR:-/var/log/marketplace}
RUN_DIR=${RUN_DIR:-/run/marketplace}
SYSTEMD_DIR=${SYSTEMD_DIR:-/etc/systemd/system}
NGINX_SITES=${NGINX_SITES:-/etc/nginx/sites-available}
NGINX_ENABLED=${NGINX_ENABLED:-/etc/nginx/sites-enabled}
CRON_D=${CRON_D:-/etc/cron.d}
LOGROTATE_D=${LOGROTATE_D:-/etc/logrotate.d}
ACME_ROOT=${ACME_ROOT:-/var/www/letsencrypt}
NGINX_ACCESS_LOG=${NGINX_ACCESS_LOG:-/var/log/nginx/access.log}
TLS_CERT=${TLS_CERT:-/etc/letsencrypt/live/$SERVER_NAME/fullchain.pem}
TLS_KEY=${TLS_KEY:-/etc/letsencrypt/live/$SERVER_NAME/privkey.pem}
INSTALL_PACKAGES=${INSTALL_PACKAGES:-1}
INSTALL_VENV=${INSTALL_VENV:-1}
INIT_DB=${INIT_DB:-1}
START_SERVICES=${START_SERVICES:-1}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'install-prod: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo make install-prod)"
[ -f "$APP_DIR/wsgi.py" ] || die "APP_DIR=$APP_DIR is not the project directory"
DEPLOY="$APP_DIR/deploy"

# --- 1. packages -------------------------------------------------------------------
if [ "$INSTALL_PACKAGES" = 1 ]; then
    say "packages: nginx, python3-venv, build tools for uwsgi, cron, logrotate"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nginx python3 python3-venv python3-dev gcc make cron logrotate \
        openssl ssl-cert util-linux >/dev/null
fi

# --- 2. users ----------------------------------------------------------------------
make_user() {
    if ! getent passwd "$1" >/dev/null; then
        useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "$2" "$1"
        echo "created system user $1"
    fi
}
say "users: $WEB_USER (web), $CRON_USER (cron)"
make_user "$WEB_USER" "marketplace web (uwsgi)"
make_user "$CRON_USER" "marketplace cron (holds the chain secrets)"
# The cron user reads .env and writes the SQLite files through the web group;
# never the other way round: the web user is in no group of the cron user's.
usermod -a -G "$WEB_USER" "$CRON_USER"
if getent group "$NGINX_GROUP" >/dev/null; then
    usermod -a -G "$NGINX_GROUP" "$WEB_USER"
else
    echo "warning: group $NGINX_GROUP does not exist (is nginx installed?)" >&2
fi
if id -nG "$WEB_USER" | tr ' ' '\n' | grep -qx "$CRON_USER"; then
    die "$WEB_USER is a member of group $CRON_USER: remove it (gpasswd -d $WEB_USER $CRON_USER)"
fi
if ! runuser -u "$WEB_USER" -- test -r "$APP_DIR/wsgi.py"; then
    die "$WEB_USER cannot read $APP_DIR (put the checkout in e.g. /srv/marketplace, readable by all)"
fi

# --- 3. virtualenv -----------------------------------------------------------------
if [ "$INSTALL_VENV" = 1 ]; then
    say "virtualenv: runtime dependencies and uwsgi"
    (cd "$APP_DIR" && make .venv/.installed PYTHON=/usr/bin/python3)
    "$APP_DIR/.venv/bin/pip" install -q --disable-pip-version-check -r "$APP_DIR/requirements-prod.txt"
fi
PY="$APP_DIR/.venv/bin/python"
[ -x "$PY" ] || PY=python3
TOOL="$PY $DEPLOY/deploytool.py"

# --- 4. settings and the secrets split ---------------------------------------------
say "settings: $ENV_FILE (web and cron), chain secrets in $SECRETS_FILE (cron only)"
install -d -m 0755 -o root -g root "$ETC_DIR" "$(dirname "$SECRETS_FILE")"
if [ ! -e "$ENV_FILE" ]; then
    (cd "$APP_DIR" && $PY -c 'import sys; from lib.env import write_env_file; write_env_file(sys.argv[1])' "$ENV_FILE")
    $TOOL set-env "$ENV_FILE" SITE_URL "https://$SERVER_NAME"
    $TOOL set-env "$ENV_FILE" DB_DSN "sqlite:$DATA_DIR/store.sqlite"
    echo "created $ENV_FILE with fresh salts (SQLite in $DATA_DIR; see README for MariaDB)"
fi
$TOOL split-secrets "$ENV_FILE" "$SECRETS_FILE"
chown root:"$WEB_USER" "$ENV_FILE"
chmod 0640 "$ENV_FILE"
chown "$CRON_USER":"$CRON_USER" "$SECRETS_FILE"
chmod 0600 "$SECRETS_FILE"
if runuser -u "$WEB_USER" -- test -r "$SECRETS_FILE"; then
    die "$WEB_USER can read $SECRETS_FILE: check its directories' ACLs"
fi

install -d -m 2770 -o "$WEB_USER" -g "$WEB_USER" "$DATA_DIR"
# Uploaded images: written by the web user, read by nginx (its group, inherited by the
# files through the setgid bit).
install -d -m 2750 -o "$WEB_USER" -g "$NGINX_GROUP" "$MEDIA_DIR"
$TOOL set-env "$ENV_FILE" MEDIA_DIR "$MEDIA_DIR"
install -d -m 0750 -o "$CRON_USER" -g "$CRON_USER" "$LOG_DIR"
install -d -m 0755 "$ACME_ROOT"

# --- 5. database ---------------------------------------------------------------------
if [ "$INIT_DB" = 1 ]; then
    say "database: create or migrate the schema"
    (cd "$APP_DIR" && runuser -u "$WEB_USER" -- sh -c "umask 007 && exec $PY -m lib.migrate")
fi
# SQLite creates its files 0644 whatever the umask: let the cron user (web group) write
# them too. Its -wal and -shm files copy the database file's mode.
find "$DATA_DIR" -maxdepth 1 -type f -name '*.sqlite*' -exec chmod g+rw {} +

# --- 6. configuration files ----------------------------------------------------------
if [ ! -r "$TLS_CERT" ] || [ ! -r "$TLS_KEY" ]; then
    echo "warning: no certificate at $TLS_CERT; using the snakeoil one until you run" \
         "certbot (README, Deployment)" >&2
    if [ ! -r /etc/ssl/certs/ssl-cert-snakeoil.pem ] && command -v make-ssl-cert >/dev/null; then
        make-ssl-cert generate-default-snakeoil
    fi
    TLS_CERT=/etc/ssl/certs/ssl-cert-snakeoil.pem
    TLS_KEY=/etc/ssl/private/ssl-cert-snakeoil.key
fi
say "configuration: uwsgi, systemd, nginx, cron, logrotate"
install -d -m 0755 "$SYSTEMD_DIR" "$NGINX_SITES" "$NGINX_ENABLED" "$CRON_D" "$LOGROTATE_D"
$TOOL render "$DEPLOY/uwsgi.ini" "$ETC_DIR/uwsgi.ini" ROOT="$APP_DIR" \
    UWSGI_SOCKET="$RUN_DIR/uwsgi.sock" UWSGI_STATS="$RUN_DIR/stats.sock" \
    SOCKET_OWNER="$WEB_USER:$NGINX_GROUP" UWSGI_LOCAL="$ETC_DIR/uwsgi-local.ini"
$TOOL render "$DEPLOY/marketplace-uwsgi.service" "$SYSTEMD_DIR/marketplace-uwsgi.service" \
    ROOT="$APP_DIR" WEB_USER="$WEB_USER" NGINX_GROUP="$NGINX_GROUP" ETC_DIR="$ETC_DIR" \
    SECRETS_FILE="$SECRETS_FILE" ENV_FILE="$ENV_FILE"
$TOOL render "$DEPLOY/nginx.conf" "$NGINX_SITES/marketplace" ROOT="$APP_DIR" \
    SERVER_NAME="$SERVER_NAME" HTTP_LISTEN=80 HTTPS_LISTEN=443 TLS_CERT="$TLS_CERT" \
    TLS_KEY="$TLS_KEY" UWSGI_SOCKET="$RUN_DIR/uwsgi.sock" ACME_ROOT="$ACME_ROOT" \
    ACCESS_LOG="$NGINX_ACCESS_LOG" MEDIA_DIR="$MEDIA_DIR"
ln -sfn "$NGINX_SITES/marketplace" "$NGINX_ENABLED/marketplace"
$TOOL render "$DEPLOY/crontab" "$CRON_D/marketplace" ROOT="$APP_DIR" CRON_USER="$CRON_USER" \
    LOG_DIR="$LOG_DIR" ENV_FILE="$ENV_FILE"
$TOOL render "$DEPLOY/logrotate.conf" "$LOGROTATE_D/marketplace" LOG_DIR="$LOG_DIR" \
    CRON_USER="$CRON_USER"
chown root:root "$ETC_DIR/uwsgi.ini" "$CRON_D/marketplace" "$LOGROTATE_D/marketplace"

# --- 7. services ---------------------------------------------------------------------
if [ "$START_SERVICES" = 1 ]; then
    if [ -d /run/systemd/system ]; then
        say "services: marketplace-uwsgi, nginx"
        systemctl daemon-reload
        systemctl enable marketplace-uwsgi >/dev/null
        systemctl restart marketplace-uwsgi
        nginx -t
        systemctl reload-or-restart nginx
    else
        echo "systemd is not running: start uwsgi yourself with" >&2
        echo "  runuser -u $WEB_USER -- $APP_DIR/.venv/bin/uwsgi --ini $ETC_DIR/uwsgi.ini" >&2
    fi
fi

cat <<EOF

Installed. Next:
  - put the chain secrets (MNEMONIC, ALCHEMY_API_KEY, COMMISSION_WALLET_*) in
    $SECRETS_FILE (sudoedit; it stays $CRON_USER:$CRON_USER 0600)
  - a real certificate: certbot certonly --webroot -w $ACME_ROOT -d $SERVER_NAME,
    then run this script again (it picks up /etc/letsencrypt/live/$SERVER_NAME)
  - the first admin: cd $APP_DIR && sudo -u $WEB_USER ENV_FILE=$ENV_FILE .venv/bin/python -m lib.users create-admin NAME
  - check: curl -sS https://$SERVER_NAME/health.php
EOF
