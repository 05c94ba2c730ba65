"""A real forward proxy for the tests: Debian's squid on 127.0.0.1, started in the foreground
(``squid -N``) with a generated configuration in a temporary folder: no disk cache, logs and
pid file there, a ``hosts_file`` that gives made-up registry names (only the proxy resolves
them) an address, optional basic auth (``basic_ncsa_auth`` + htpasswd) and an optional ACL
that denies some names (403) or wants credentials for them (407). Its access log records method, URI, status, user and
whether the request carried ``Authorization``. Also: a certificate for a registry name, and
a TLS origin that records what reaches it through a tunnel."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

from registry_harness import serve_loopback

SQUID = shutil.which("squid") or (os.path.exists("/usr/sbin/squid") and "/usr/sbin/squid") or None
NCSA_AUTH = "/usr/lib/squid/basic_ncsa_auth"
REGISTRY_NAME = "registry.compat.test"     # served as is
GUARDED_NAME = "auth.compat.test"           # the proxy wants credentials
DENIED_NAME = "denied.compat.test"          # the proxy refuses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Squid:
    """squid -N on 127.0.0.1:<free port>; ``url`` is its proxy URL; ``log()`` its access log.
    ``hosts`` {name: address} is what it resolves; requests for a name in ``deny`` get 403;
    for a name in ``guard``, 407 unless they carry the credentials of one of ``users``."""

    def __init__(self, hosts, users=None, deny=(), guard=()):
        # squid started by root drops to cache_effective_user: its folder must be that user's
        # (pytest's tmp_path is private to root), so it gets its own folder under /tmp.
        self.dir = tempfile.mkdtemp(prefix="compat-squid-")
        owner = None
        if os.geteuid() == 0:
            owner = pwd.getpwnam("proxy")
            os.chmod(self.dir, 0o755)
        with open(os.path.join(self.dir, "hosts"), "w") as fh:
            fh.write("".join(f"{addr} {name}\n" for name, addr in hosts.items()))
        conf = [f"visible_hostname compat-test",
                f"pid_filename {self.dir}/squid.pid",
                f"cache_log {self.dir}/cache.log",
                "logformat compat %rm %ru %>Hs user=%un authorization=%{Authorization}>h",
                f"access_log stdio:{self.dir}/access.log logformat=compat",
                "buffered_logs off", "cache deny all", f"coredump_dir {self.dir}",
                f"hosts_file {self.dir}/hosts", "netdb_filename none", "pinger_enable off",
                "shutdown_lifetime 0 seconds"]
        if owner:
            conf.append(f"cache_effective_user {owner.pw_name}")
        if users:
            lines = []
            for user, password in users.items():
                out = subprocess.run(["htpasswd", "-nbm", user, password], check=True, capture_output=True, text=True)
                lines.append(out.stdout.strip())
            with open(os.path.join(self.dir, "htpasswd"), "w") as fh:
                fh.write("\n".join(lines) + "\n")
            conf += [f"auth_param basic program {NCSA_AUTH} {self.dir}/htpasswd",
                     "auth_param basic realm compat-test", "acl users proxy_auth REQUIRED"]
        if deny:
            conf += [f"acl denied dstdomain {' '.join(deny)}", "http_access deny denied"]
        if guard:       # the last ACL of the line is proxy_auth: squid answers 407, not 403
            conf += [f"acl guarded dstdomain {' '.join(guard)}", "http_access deny guarded !users"]
        conf.append("http_access allow all")
        if owner:
            for name in os.listdir(self.dir):
                os.chown(os.path.join(self.dir, name), owner.pw_uid, owner.pw_gid)
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.proc = None
        for _ in range(5):                   # a free port can be taken between the check and the bind
            self.port = free_port()
            with open(os.path.join(self.dir, "squid.conf"), "w") as fh:
                fh.write("\n".join([f"http_port 127.0.0.1:{self.port}"] + conf) + "\n")
            if self._start():
                break
        else:
            raise RuntimeError("squid did not start: " + self._tail())
        self.url = f"http://127.0.0.1:{self.port}"

    def _tail(self):
        try:
            with open(os.path.join(self.dir, "cache.log")) as fh:
                return fh.read()[-2000:]
        except OSError:
            return ""

    def _start(self) -> bool:
        self.proc = subprocess.Popen([SQUID, "-N", "-f", os.path.join(self.dir, "squid.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            if "Accepting HTTP Socket connections" in self._tail():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        self.stop()
        return False

    def log(self, wait_for=None, timeout=5.0):
        """The access log's lines; with ``wait_for``, wait until a line contains it (squid
        writes a CONNECT line when the tunnel closes)."""
        deadline = time.time() + timeout
        while True:
            try:
                with open(os.path.join(self.dir, "access.log")) as fh:
                    lines = fh.read().splitlines()
            except OSError:
                lines = []
            if wait_for is None or any(wait_for in line for line in lines) or time.time() > deadline:
                return lines
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_named_tls(workdir, *names):
    """A CA and a server certificate whose only subject names are DNS:``names`` (openssl CLI)."""
    d = str(workdir)
    os.makedirs(d, exist_ok=True)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=compat proxy test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}", "-keyout", "server.key",
        "-out", "server.csr")
    with open(os.path.join(d, "ext.cnf"), "w") as fh:
        fh.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
    return os.path.join(d, "ca.crt"), os.path.join(d, "server.crt"), os.path.join(d, "server.key")


class RecordingOrigin:
    """A TLS server on 127.0.0.1 that records the SNI name and the request headers reaching
    it and answers like a registry with basic auth: 401 with a Basic challenge without
    ``Authorization``, else 404 (MANIFEST_UNKNOWN)."""

    def __init__(self, cert, key):
        self.requests = []              # (method, target, {lower-cased header: value})
        self.sni = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ctx.sni_callback = lambda sslsock, name, _ctx: self.sni.append(name)
        self.ctx = ctx
        self.sock = serve_loopback(self._handle)
        self.port = self.sock.getsockname()[1]

    def _handle(self, conn):
        try:
            conn.settimeout(10)
            tls = self.ctx.wrap_socket(conn, server_side=True)
            f = tls.makefile("rb")
            while True:
                line = f.readline(65536)
                if not line:
                    return
                method, target = line.decode("latin-1").split()[:2]
                headers = {}
                while True:
                    h = f.readline(65536)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                self.requests.append((method, target, headers))
                if "authorization" not in headers:
                    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                    head = (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"compat-test\"\r\n")
                else:
                    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
                    head = b"HTTP/1.1 404 Not Found\r\n"
                tls.sendall(head + b"Content-Type: application/json\r\nContent-Length: "
                            + str(len(body)).encode() + b"\r\n\r\n" + (b"" if method == "HEAD" else body))
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def stop(self):
        self.sock.close()
