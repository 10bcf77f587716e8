#!/usr/bin/env python3
"""Run the production stack (nginx -> uwsgi -> app) from this project's own deploy/
templates on free loopback ports, inside a throw-away directory.

Used by tests/test_deploy.py and bench/web.py; a sysadmin can use it as a smoke
test of a checkout before installing it:

    .venv/bin/python deploy/localstack.py        # serves until Ctrl-C

nginx and uwsgi run as foreground children (nginx `daemon off`, pid, logs and
temp files inside the directory), with the same deploy/nginx.conf and
deploy/uwsgi.ini a production install uses, filled by deploy/deploytool.py's
renderer: only ports, paths and the certificate (a fresh self-signed one) differ.
"""
import grp
import http.client
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

DEPLOY = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DEPLOY)
sys.path.insert(0, ROOT)

from deploy.deploytool import render  # noqa: E402


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_nginx():
    for path in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if path and os.access(path, os.X_OK):
            return path
    return None


def find_uwsgi():
    path = os.path.join(ROOT, ".venv", "bin", "uwsgi")
    return path if os.access(path, os.X_OK) else None


def find_mime_types(nginx):
    out = subprocess.run([nginx, "-V"], capture_output=True, text=True).stderr
    conf_dir = "/etc/nginx"
    for word in out.split():
        if word.startswith("--conf-path="):
            conf_dir = os.path.dirname(word.split("=", 1)[1])
    path = os.path.join(conf_dir, "mime.types")
    return path if os.path.exists(path) else None


def make_certificate(directory, host="127.0.0.1"):
    """A self-signed P-256 certificate for `host` and localhost, valid for a day."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
         "-addext", f"subjectAltName=IP:{host},DNS:localhost"],
        check=True, capture_output=True)
    return cert, key


MAIN_CONF = """\
# nginx main configuration of a local stack (the production one is the distribution's
# /etc/nginx/nginx.conf); the site itself is deploy/nginx.conf, rendered.
daemon off;
master_process on;
worker_processes {workers};
{user}pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{
    worker_connections 512;
}}
http {{
    {mime}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30s;
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    include {tmp}/site.conf;
}}
"""


class StackError(RuntimeError):
    pass


class Stack:
    """nginx (HTTP and HTTPS on 127.0.0.1) in front of uwsgi running wsgi.py.

    `env` is the environment of the uwsgi process (DB_DSN, salts ...). After
    start(): .base_url (https), .http_url, .ssl_context (trusts the throw-away
    certificate), .stats_socket, .tmp; stop() ends both servers.

    `nodes=2` runs two web nodes: two uwsgi instances (each its own master, socket and
    stats socket, as on two machines) in one nginx upstream, the way deploy/nginx.conf's
    upstream example spreads requests over several uwsgi servers.
    """

    def __init__(self, env=None, tmp=None, processes=None, threads=None, nodes=1):
        self.env = dict(env or {})
        self.own_tmp = tmp is None
        self.tmp = tmp or tempfile.mkdtemp(prefix="mkt-stack-")
        self.env.setdefault("MEDIA_DIR", os.path.join(self.tmp, "media"))   # the app writes, nginx serves
        self.processes = processes
        self.threads = threads
        self.nginx_proc = None
        self.uwsgi_proc = None
        self.http_port = free_port()
        self.https_port = free_port()
        self.socket_path = os.path.join(self.tmp, "uwsgi.sock")
        self.stats_socket = os.path.join(self.tmp, "uwsgi-stats.sock")
        self.base_url = f"https://127.0.0.1:{self.https_port}"
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        self.ssl_context = None
        # Web nodes after the first: {"socket", "stats", "ini", "log", "proc"} each.
        self.extra_nodes = []
        for n in range(2, nodes + 1):
            directory = os.path.join(self.tmp, f"node{n}")
            self.extra_nodes.append({"dir": directory, "socket": os.path.join(directory, "uwsgi.sock"),
                                     "stats": os.path.join(directory, "uwsgi-stats.sock"),
                                     "ini": os.path.join(directory, "uwsgi.ini"), "proc": None,
                                     "log": None})

    # -- configuration ---------------------------------------------------------
    def render(self):
        self.nginx = find_nginx()
        self.uwsgi = find_uwsgi()
        if not self.nginx:
            raise StackError("nginx is not installed (make deploy-deps installs it)")
        if not self.uwsgi:
            raise StackError(".venv/bin/uwsgi is missing (make deploy-deps installs it)")
        user = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        cert, key = make_certificate(self.tmp)
        self.ssl_context = ssl.create_default_context(cafile=cert)
        os.makedirs(os.path.join(self.tmp, "acme", ".well-known", "acme-challenge"), exist_ok=True)
        self.uwsgi_ini = os.path.join(self.tmp, "uwsgi.ini")
        local_ini = os.path.join(self.tmp, "uwsgi-local.ini")
        render(os.path.join(DEPLOY, "uwsgi.ini"), self.uwsgi_ini, {
            "ROOT": ROOT, "UWSGI_SOCKET": self.socket_path, "UWSGI_STATS": self.stats_socket,
            "SOCKET_OWNER": f"{user}:{group}", "UWSGI_LOCAL": local_ini})
        if self.processes or self.threads:  # through the documented local settings file
            with open(local_ini, "w", encoding="utf-8") as f:
                f.write("[uwsgi]\n")
                if self.processes:
                    f.write(f"processes = {self.processes}\n")
                if self.threads:
                    f.write(f"threads = {self.threads}\n")
        for node in self.extra_nodes:
            os.makedirs(node["dir"], exist_ok=True)
            render(os.path.join(DEPLOY, "uwsgi.ini"), node["ini"], {
                "ROOT": ROOT, "UWSGI_SOCKET": node["socket"], "UWSGI_STATS": node["stats"],
                "SOCKET_OWNER": f"{user}:{group}", "UWSGI_LOCAL": local_ini})
        self.cert, self.key = cert, key
        self.user_group = (user, group)

    def render_nginx(self):
        user, group = self.user_group
        self.base_url = f"https://127.0.0.1:{self.https_port}"
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        render(os.path.join(DEPLOY, "nginx.conf"), os.path.join(self.tmp, "site.conf"), {
            "SERVER_NAME": "127.0.0.1 localhost", "ROOT": ROOT,
            "HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "HTTPS_LISTEN": f"127.0.0.1:{self.https_port}",
            "TLS_CERT": self.cert, "TLS_KEY": self.key, "UWSGI_SOCKET": self.socket_path,
            "ACME_ROOT": os.path.join(self.tmp, "acme"),
            "ACCESS_LOG": os.path.join(self.tmp, "nginx-access.log"), "MEDIA_DIR": self.env["MEDIA_DIR"]})
        if self.extra_nodes:
            # The upstream of deploy/nginx.conf with one `server` line per web node.
            site = os.path.join(self.tmp, "site.conf")
            with open(site, encoding="utf-8") as f:
                text = f.read()
            one = f"    server unix:{self.socket_path};\n"
            if text.count(one) != 1:
                raise StackError("deploy/nginx.conf: no single upstream server line to extend")
            text = text.replace(one, one + "".join(f"    server unix:{node['socket']};\n"
                                                   for node in self.extra_nodes))
            with open(site, "w", encoding="utf-8") as f:
                f.write(text)
        mime = find_mime_types(self.nginx)
        self.nginx_conf = os.path.join(self.tmp, "nginx.conf")
        with open(self.nginx_conf, "w", encoding="utf-8") as f:
            f.write(MAIN_CONF.format(
                tmp=self.tmp, workers=2,
                # As root nginx would switch its workers to `nobody`, who may not reach
                # the socket or the checkout: keep the stack's own user.
                user=f"user {user} {group};\n" if os.geteuid() == 0 else "",
                mime=f"include {mime};" if mime else ""))

    # -- processes -------------------------------------------------------------
    def start(self, timeout=30):
        self.render()
        env = {k: v for k, v in os.environ.items()
               if k in ("PATH", "LANG", "LC_ALL", "HOME", "TZ")}
        env.update(self.env)
        self.uwsgi_log = open(os.path.join(self.tmp, "uwsgi.log"), "wb")
        # Started like the systemd unit starts it: through clean_env.py (no chain secret
        # in uwsgi's /proc/PID/environ, whatever `env` holds).
        self.uwsgi_proc = subprocess.Popen(
            [sys.executable, os.path.join(DEPLOY, "clean_env.py"), self.uwsgi, "--ini", self.uwsgi_ini],
            cwd=ROOT, env=env,
            stdout=self.uwsgi_log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait(lambda: os.path.exists(self.socket_path), self.uwsgi_proc, "uwsgi socket",
                   timeout)
        for node in self.extra_nodes:
            node["log"] = open(os.path.join(node["dir"], "uwsgi.log"), "wb")
            node["proc"] = subprocess.Popen(
                [sys.executable, os.path.join(DEPLOY, "clean_env.py"), self.uwsgi, "--ini", node["ini"]],
                cwd=ROOT, env=env, stdout=node["log"], stderr=subprocess.STDOUT, start_new_session=True)
            self._wait(lambda: os.path.exists(node["socket"]), node["proc"], "uwsgi socket", timeout)
        error_log = os.path.join(self.tmp, "nginx-error.log")
        for attempt in range(3):
            self.render_nginx()
            check = subprocess.run([self.nginx, "-t", "-p", self.tmp, "-c", self.nginx_conf,
                                    "-e", error_log], capture_output=True, text=True)
            if check.returncode != 0:
                self.stop()
                raise StackError(f"nginx -t failed:\n{check.stderr}")
            self.nginx_log = open(os.path.join(self.tmp, "nginx.out"), "wb")
            self.nginx_proc = subprocess.Popen(
                [self.nginx, "-p", self.tmp, "-c", self.nginx_conf, "-e", error_log],
                stdout=self.nginx_log, stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + timeout
            while self.nginx_proc.poll() is None and not self._answers():
                if time.monotonic() > deadline:
                    logs = self.logs()
                    self.stop()
                    raise StackError(f"timed out waiting for the app through nginx\n{logs}")
                time.sleep(0.05)
            if self.nginx_proc.poll() is None:
                return self
            self.nginx_log.close()
            with open(error_log, encoding="utf-8", errors="replace") as f:
                taken = "Address already in use" in f.read()
            if not taken or attempt == 2:
                logs = self.logs()
                self.stop()
                raise StackError(f"nginx exited with {self.nginx_proc.returncode}\n{logs}")
            # Another program took a port between free_port() and nginx's bind: new ports.
            self.http_port, self.https_port = free_port(), free_port()
        return self

    def _answers(self):
        if any(p.poll() is not None for p in [self.uwsgi_proc] + [n["proc"] for n in self.extra_nodes]):
            raise StackError(f"uwsgi exited:\n{self.logs()}")
        try:
            status, _, _ = self.request("GET", "/", timeout=2)
            return status == 200
        except OSError:
            return False

    def _wait(self, ready, proc, what, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                logs = self.logs()
                self.stop()
                raise StackError(f"{what}: process exited with {proc.returncode}\n{logs}")
            if ready():
                return
            time.sleep(0.05)
        logs = self.logs()
        self.stop()
        raise StackError(f"timed out waiting for {what}\n{logs}")

    def logs(self):
        out = []
        names = ["uwsgi.log"] + [os.path.join(os.path.basename(n["dir"]), "uwsgi.log")
                                 for n in self.extra_nodes] + ["nginx-error.log", "nginx.out"]
        for name in names:
            path = os.path.join(self.tmp, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    out.append(f"--- {name} ---\n{f.read()[-4000:]}")
        return "\n".join(out)

    def stop(self):
        nodes = [self.uwsgi_proc] + [n["proc"] for n in self.extra_nodes]
        for proc, sig in [(self.nginx_proc, signal.SIGQUIT)] + [(p, signal.SIGTERM) for p in nodes]:
            if proc is None or proc.poll() is not None:
                continue
            try:
                proc.send_signal(sig)
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        for proc in [self.nginx_proc] + nodes:
            if proc is not None:
                try:  # workers left behind by a crashed master
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for f in [getattr(self, "uwsgi_log", None), getattr(self, "nginx_log", None)] + \
                [n["log"] for n in self.extra_nodes]:
            if f:
                f.close()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- a tiny HTTPS client ------------------------------------------------------
    def connection(self, https=True, source="127.0.0.1", timeout=30):
        if https:
            return http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=timeout,
                                               context=self.ssl_context,
                                               source_address=(source, 0))
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout,
                                          source_address=(source, 0))

    def request(self, method, path, body=None, headers=None, https=True, source="127.0.0.1",
                conn=None, timeout=30):
        """-> (status, headers list, body bytes)."""
        own = conn is None
        conn = conn or self.connection(https, source, timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            if own:
                conn.close()

    def stats(self, node=1):
        """uwsgi's stats server JSON (workers, their cores and request counts) of web
        node `node` (1, 2 ...)."""
        import json
        path = self.stats_socket if node == 1 else self.extra_nodes[node - 2]["stats"]
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return json.loads(b"".join(chunks))


def main():
    from lib import db as dbmod, migrate
    tmp = tempfile.mkdtemp(prefix="mkt-stack-")
    dsn = os.environ.get("DB_DSN") or f"sqlite:{tmp}/store.sqlite"
    if dsn.startswith("sqlite:"):
        migrate.init(dbmod.Db(dsn))
    env = {"DB_DSN": dsn, "ENV_FILE": os.path.join(tmp, "none.env")}
    for key in ("DB_USER", "DB_PASSWORD", "SESSION_SALT", "COOKIE_ENCRYPTION_SALT", "CSRF_SALT"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    stack = Stack(env=env, tmp=tmp)
    with stack:
        print(f"nginx -> uwsgi -> app: {stack.base_url} (self-signed) and {stack.http_url};"
              f" files in {tmp}; Ctrl-C stops", flush=True)
        try:
            while stack.uwsgi_proc.poll() is None and stack.nginx_proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
