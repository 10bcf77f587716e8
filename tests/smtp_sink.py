"""A tiny line-based SMTP server for the tests (no aiosmtpd): it accepts every mail and
keeps it (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no AUTH unless asked)."""
import email
import email.policy
import socket
import socketserver
import threading


class _Handler(socketserver.StreamRequestHandler):
    def _send(self, line):
        self.wfile.write((line + "\r\n").encode("ascii"))
        self.wfile.flush()

    def handle(self):
        sink = self.server.sink
        self._send("220 sink ESMTP")
        mail_from, rcpts = None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                if sink.auth:
                    self._send("250-sink")
                    self._send("250 AUTH PLAIN LOGIN")
                else:
                    self._send("250 sink")
            elif verb == "AUTH":
                sink.logins.append(line)
                self._send("235 ok")
            elif verb == "MAIL":
                mail_from, rcpts = line.split(":", 1)[1].strip(), []
                self._send("250 ok")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                self._send("250 ok")
            elif verb == "DATA":
                self._send("354 go on")
                data = []
                while True:
                    part = self.rfile.readline()
                    if not part or part in (b".\r\n", b".\n"):
                        break
                    data.append(part[1:] if part.startswith(b"..") else part)
                msg = email.message_from_bytes(b"".join(data), policy=email.policy.default)
                sink.messages.append({"from": mail_from, "to": rcpts, "msg": msg,
                                      "body": msg.get_content() if not msg.is_multipart() else ""})
                self._send("250 queued")
            elif verb == "RSET" or verb == "NOOP":
                self._send("250 ok")
            elif verb == "QUIT":
                self._send("221 bye")
                return
            else:
                self._send("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink:
    def __init__(self, auth=False):
        self.messages, self.logins, self.auth = [], [], auth
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.sink = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"smtp://user:secret@127.0.0.1:{self.port}" if self.auth else f"smtp://127.0.0.1:{self.port}"

    def to(self, address):
        return [m for m in self.messages if address in m["to"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
