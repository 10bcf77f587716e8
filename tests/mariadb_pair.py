"""A throw-away MariaDB primary and replica for the replica tests.

Two `mariadbd` processes on free loopback ports, each with its own data directory under
a temporary directory (mariadb-install-db), the replica following the primary from its
first binlog event (so everything the test creates on the primary replicates). Small
buffers and no fsync: they start in a second or two and stay light.
"""
import os
import shutil
import subprocess
import tempfile
import time

import pymysql

from tests.conftest import free_port

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"


def available():
    return os.access(MARIADBD, os.X_OK) and os.access(INSTALL_DB, os.X_OK)


class Server:
    def __init__(self, tmp, name, server_id):
        self.dir = os.path.join(tmp, name)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.server_id = server_id
        self.proc = None

    def install(self):
        os.makedirs(self.data)
        out = subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={self.data}", "--user=root",
                              "--auth-root-authentication-method=normal", "--skip-test-db"],
                             capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(f"mariadb-install-db failed: {out.stdout}{out.stderr}")

    def start(self):
        self.log = open(os.path.join(self.dir, "mariadbd.log"), "wb")
        self.proc = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--datadir={self.data}", "--user=root",
             f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={os.path.join(self.dir, 'sock')}", f"--pid-file={os.path.join(self.dir, 'pid')}",
             f"--server-id={self.server_id}", "--log-bin=binlog", "--binlog-format=ROW",
             "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
             "--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0", "--skip-name-resolve",
             "--performance-schema=OFF", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_bin"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited:\n{self.logs()}")
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not answer:\n{self.logs()}")

    def connect(self, database=None):
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="",
                               database=database, autocommit=True, connect_timeout=2,
                               cursorclass=pymysql.cursors.DictCursor)

    def sql(self, statement, params=()):
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall()
        finally:
            conn.close()

    def dsn(self, database):
        return f"mysql:host=127.0.0.1;port={self.port};dbname={database};charset=utf8mb4"

    def logs(self):
        try:
            with open(os.path.join(self.dir, "mariadbd.log"), encoding="utf-8", errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "log", None):
            self.log.close()


class Pair:
    """primary and replica (Server); start() sets up replication."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="mkt-replica-")
        self.primary = Server(self.tmp, "primary", 1)
        self.replica = Server(self.tmp, "replica", 2)

    def start(self):
        # One installation, copied before either server runs: the replica starts with the
        # same system tables and follows from the primary's current binlog position
        # (everything the test does afterwards is replicated).
        self.primary.install()
        shutil.copytree(self.primary.dir, self.replica.dir)
        for server in (self.primary, self.replica):
            server.start()
        status = self.primary.sql("SHOW MASTER STATUS")[0]
        self.replica.sql(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER='root', "
            "MASTER_PASSWORD='', MASTER_LOG_FILE=%s, MASTER_LOG_POS=%s, MASTER_CONNECT_RETRY=1",
            (self.primary.port, status["File"], int(status["Position"])))
        self.replica.sql("START SLAVE")
        self.wait_caught_up()
        return self

    def replica_status(self):
        rows = self.replica.sql("SHOW SLAVE STATUS")
        return rows[0] if rows else None

    def wait_caught_up(self, timeout=30):
        """Until the replica has applied everything the primary wrote so far."""
        target = self.primary.sql("SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.replica_status()
            if status and status["Slave_SQL_Running"] == "Yes" and status["Slave_IO_Running"] == "Yes":
                if not target or self.replica.sql("SELECT @@gtid_slave_pos AS pos")[0]["pos"] == target:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"replica did not catch up: {self.replica_status()}\n{self.replica.logs()}")

    def stop(self):
        for server in (self.replica, self.primary):
            server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
