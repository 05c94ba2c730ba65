"""A real OCI registry for the tests: Debian's docker-registry (CNCF distribution) on
127.0.0.1, with plain HTTP, TLS (self-signed CA), htpasswd basic auth, or token auth
(a small ES256 token issuer here); a fault-injecting proxy for 429/5xx; and a push helper
that copies an OCI layout into a repository through compat's own client."""
from __future__ import annotations

import base64
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import threading
import time
import urllib.request
import uuid

DISTRIBUTION = shutil.which("docker-registry")


class RunningRegistry:
    def __init__(self, workdir, tls=None, htpasswd=None, token=None):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        cfg = ["version: 0.1", "log:", "  level: info", "  accesslog:", "    disabled: true",
               "storage:", "  filesystem:", f"    rootdirectory: {self.dir}/data", "  delete:",
               "    enabled: true", "http:", "  addr: 127.0.0.1:0", "  secret: compat-test-secret"]
        if tls:
            cfg += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
        if htpasswd:
            cfg += ["auth:", "  htpasswd:", "    realm: compat-test", f"    path: {htpasswd}"]
        if token:
            cfg += ["auth:", "  token:", f"    realm: {token['realm']}", f"    service: {token['service']}",
                    f"    issuer: {token['issuer']}", f"    rootcertbundle: {token['cert']}"]
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as fh:
            fh.write("\n".join(cfg) + "\n")
        self.log = os.path.join(self.dir, "registry.log")
        self.proc = subprocess.Popen([DISTRIBUTION, "serve", self.config], stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.time() + 15
        while time.time() < deadline and self.port is None:
            m = re.search(r'listening on 127\.0\.0\.1:(\d+)', open(self.log).read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                raise RuntimeError("registry exited: " + open(self.log).read()[-2000:])
            else:
                time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise RuntimeError("registry did not start: " + open(self.log).read()[-2000:])
        self.host = f"127.0.0.1:{self.port}"

    def blob_path(self, digest):
        hexpart = digest.split(":")[1]
        return os.path.join(self.dir, "data", "docker", "registry", "v2", "blobs", "sha256",
                            hexpart[:2], hexpart, "data")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def make_tls(workdir):
    """A self-signed CA and a server certificate for IP 127.0.0.1 (openssl CLI)."""
    d = str(workdir)
    os.makedirs(d, exist_ok=True)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, cwd=d)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=compat test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
        "-out", "server.csr")
    with open(os.path.join(d, "ext.cnf"), "w") as fh:
        fh.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
    return os.path.join(d, "ca.crt"), os.path.join(d, "server.crt"), os.path.join(d, "server.key")


def make_htpasswd(workdir, user, password):
    path = os.path.join(str(workdir), "htpasswd")
    out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True)
    with open(path, "w") as fh:
        fh.write(out.stdout)
    return path


# -- token issuer -------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Issues ES256 JWTs the way distribution's token auth expects (x5c header, access claim).
    Anonymous callers get pull; callers with the right basic credentials get what they ask."""

    def __init__(self, workdir, user, password, service="compat-registry", issuer="compat-test-issuer"):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
        import datetime

        self.user, self.password, self.service, self.issuer = user, password, service, issuer
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "compat token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(self.key, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_path = os.path.join(str(workdir), "token-signer.pem")
        with open(self.cert_path, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        self.requests = []
        issuer_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import parse_qs, urlsplit
                q = parse_qs(urlsplit(self.path).query)
                authz = self.headers.get("Authorization", "")
                who = None
                if authz.startswith("Basic "):
                    u, _, p = base64.b64decode(authz[6:]).decode().partition(":")
                    if (u, p) != (issuer_self.user, issuer_self.password):
                        self.send_response(401)
                        self.end_headers()
                        return
                    who = u
                access = []
                for scope in q.get("scope", []):
                    typ, name, actions = scope.split(":")
                    allowed = [a for a in actions.split(",") if who or a == "pull"]
                    access.append({"type": typ, "name": name, "actions": allowed})
                issuer_self.requests.append((who, q.get("scope", [])))
                body = json.dumps({"token": issuer_self.sign(who or "", access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, subject, access):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def config(self):
        return {"realm": self.realm, "service": self.service, "issuer": self.issuer, "cert": self.cert_path}

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# -- fault-injecting proxy ------------------------------------------------------------------------

class FaultProxy:
    """Forwards to a registry; the next N manifest requests get an injected status. With
    ``referrers`` set ({digest: [descriptor, ...]}) it also serves the OCI referrers API
    (``GET /v2/<name>/referrers/<digest>``) as the distribution spec describes, which
    distribution 2.8 itself lacks."""

    def __init__(self, upstream_port):
        self.faults = []            # list of (status, headers dict)
        self.seen = []
        self.authorization = []     # (path, Authorization header or None) of each request
        self.blob_redirect = None   # "http://host:port": authorized blob GETs answer 307 to that base
        self.referrers = None       # {digest: [descriptors]} to serve the referrers API
        self.filters_applied = False
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                proxy.seen.append((self.command, self.path))
                proxy.authorization.append((self.path, self.headers.get("Authorization")))
                if proxy.blob_redirect and "/blobs/sha256:" in self.path and self.command == "GET" \
                        and self.headers.get("Authorization"):   # as a registry does: auth first
                    self.send_response(307)
                    self.send_header("Location", proxy.blob_redirect + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                m = re.match(r"/v2/(.+)/referrers/(sha256:[0-9a-f]{64})(\?artifactType=(.*))?$", self.path)
                if m and proxy.referrers is not None:
                    found = list(proxy.referrers.get(m.group(2), []))
                    headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
                    if m.group(4) and proxy.filters_applied:
                        from urllib.parse import unquote
                        found = [d for d in found if d.get("artifactType") == unquote(m.group(4))]
                        headers["OCI-Filters-Applied"] = "artifactType"
                    body = json.dumps({"schemaVersion": 2, "mediaType": headers["Content-Type"],
                                       "manifests": found}).encode()
                    self.send_response(200)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if "/manifests/" in self.path and proxy.faults:
                    status, headers = proxy.faults.pop(0)
                    if status == "hang":
                        time.sleep(headers)
                        return
                    body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS" if status == 429 else "UNAVAILABLE",
                                                   "message": "injected"}]}).encode()
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body) if self.command != "HEAD" else 0))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                req = urllib.request.Request(f"http://127.0.0.1:{upstream_port}{self.path}", data=data,
                                             method=self.command,
                                             headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, hdrs, body = r.status, r.getheaders(), r.read()
                except urllib.error.HTTPError as e:
                    status, hdrs, body = e.code, e.headers.items(), e.read()
                self.send_response(status)
                for k, v in hdrs:
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                self.wfile.flush()

            do_GET = do_HEAD = do_PUT = do_POST = _handle

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# -- pushing an OCI layout ------------------------------------------------------------------------

def push_layout(layout_dir, host, repository, tag, plain_http=True, env=None):
    """Copy every blob and manifest of an OCI layout into host/repository and tag its index."""
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        return _push(layout_dir, host, repository, tag, plain_http)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _push(layout_dir, host, repository, tag, plain_http):
    from compat.oci.reference import Reference
    from compat.oci.registry import Registry

    reg = Registry(Reference(registry=host, repository=repository, tag=tag), plain_http=plain_http)
    with open(os.path.join(layout_dir, "index.json")) as fh:
        top = json.load(fh)["manifests"][0]

    def read(d):
        with open(os.path.join(layout_dir, "blobs", "sha256", d.split(":")[1]), "rb") as fh:
            return fh.read()

    def put_blob(d):
        data = read(d)
        r = reg.request("POST", f"/v2/{repository}/blobs/uploads/")
        assert r.status == 202, (r.status, r.body)
        loc = r.headers["location"]
        sep = "&" if "?" in loc else "?"
        r = reg.request("PUT", f"{loc}{sep}digest={d}", {"Content-Type": "application/octet-stream"}, data)
        assert r.status == 201, (r.status, r.body)

    def put_manifest(ref, d, mt):
        r = reg.request("PUT", f"/v2/{repository}/manifests/{ref}", {"Content-Type": mt}, read(d))
        assert r.status == 201, (r.status, r.body)

    index = json.loads(read(top["digest"]))
    for desc in index["manifests"]:
        man = json.loads(read(desc["digest"]))
        for b in [man["config"]] + man.get("layers", []):
            put_blob(b["digest"])
        put_manifest(desc["digest"], desc["digest"], desc["mediaType"])
    put_manifest(tag, top["digest"], top["mediaType"])
    reg.close()
    return top["digest"]


# -- attaching artifacts (test setup, independent of compat's own push code) ------------------------

def _http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.getheaders()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def nfd_artifact(subject, spec_text, created=None):
    """(blobs {digest: bytes}, manifest bytes, descriptor) of an NFD artifact for ``subject``."""
    import hashlib
    layer = spec_text.encode()
    blobs = {"sha256:" + hashlib.sha256(b"{}").hexdigest(): b"{}",
             "sha256:" + hashlib.sha256(layer).hexdigest(): layer}
    ann = {"org.opencontainers.image.created": created} if created else {}
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "artifactType": "application/vnd.nfd.image-compatibility.v1alpha1",
           "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                      "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(), "size": 2},
           "layers": [{"mediaType": "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml",
                       "digest": "sha256:" + hashlib.sha256(layer).hexdigest(), "size": len(layer)}],
           "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]}}
    if ann:
        man["annotations"] = ann
    mb = json.dumps(man).encode()
    desc = {"mediaType": man["mediaType"], "digest": "sha256:" + hashlib.sha256(mb).hexdigest(), "size": len(mb),
            "artifactType": man["artifactType"]}
    if ann:
        desc["annotations"] = ann
    return blobs, mb, desc


def attach_in_layout(layout_dir, subject, spec_text, created=None):
    """What `oras attach --oci-layout` leaves: blobs, and the manifest listed in index.json."""
    blobs, mb, desc = nfd_artifact(subject, spec_text, created)
    for d, data in list(blobs.items()) + [(desc["digest"], mb)]:
        with open(os.path.join(layout_dir, "blobs", "sha256", d[7:]), "wb") as fh:
            fh.write(data)
    path = os.path.join(layout_dir, "index.json")
    top = json.load(open(path))
    top["manifests"].append(desc)
    json.dump(top, open(path, "w"))
    return desc


def attach_in_registry(host, repository, subject, spec_text, created=None, tag_index=True):
    """Push an artifact to a plain-HTTP registry and (distribution 2.8 has no referrers API)
    maintain the sha256-<hex> referrers tag as the distribution spec asks of clients."""
    blobs, mb, desc = nfd_artifact(subject, spec_text, created)
    base = f"http://{host}/v2/{repository}"
    for d, data in blobs.items():
        status, hdrs, _ = _http("POST", f"{base}/blobs/uploads/")
        loc = hdrs.get("Location") or hdrs.get("location")
        loc = loc if loc.startswith("http") else f"http://{host}{loc}"
        status, _, body = _http("PUT", f"{loc}&digest={d}" if "?" in loc else f"{loc}?digest={d}", data,
                                {"Content-Type": "application/octet-stream"})
        assert status == 201, body
    status, _, body = _http("PUT", f"{base}/manifests/{desc['digest']}", mb,
                            {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 201, body
    if tag_index:
        tag = "sha256-" + subject["digest"][7:]
        status, _, body = _http("GET", f"{base}/manifests/{tag}",
                                headers={"Accept": "application/vnd.oci.image.index.v1+json"})
        manifests = json.loads(body)["manifests"] if status == 200 else []
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": manifests + [desc]}).encode()
        status, _, body = _http("PUT", f"{base}/manifests/{tag}", index,
                                {"Content-Type": "application/vnd.oci.image.index.v1+json"})
        assert status == 201, body
    return desc


# -- a loopback listener: each connection handled on a thread of its own -----------------------------

def serve_loopback(handle, backlog=16):
    """A socket listening on 127.0.0.1 (a free port) whose every connection goes to
    ``handle(conn)`` on a daemon thread of its own, until the socket is closed."""
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)

    def accept():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:             # closed: the server was stopped
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return sock


# -- a scripted raw-socket HTTP peer (framing attacks, trickles, redirects) -------------------------

class ScriptedServer:
    """A peer on 127.0.0.1 that answers each request with ``script(method, path, headers)``:
    bytes are sent as they are; a callable gets the connected socket (to trickle, stall or
    close). Every request is recorded as (method, path, headers dict with lower-cased
    names). Bounded: at most ``max_requests`` requests, each connection at most ``seconds``
    long; ``stop()`` closes the listener and every connection."""

    def __init__(self, script, max_requests=50, seconds=30.0):
        import socket
        self.script, self.max_requests, self.seconds = script, max_requests, seconds
        self.requests = []
        self._conns = []
        self._stopped = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        import socket
        end = time.monotonic() + self.seconds
        buf = b""
        try:
            while not self._stopped.is_set() and len(self.requests) < self.max_requests:
                while b"\r\n\r\n" not in buf:
                    conn.settimeout(max(0.01, end - time.monotonic()))
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length") or 0)
                while len(buf) < n:
                    buf += conn.recv(65536)
                buf = buf[n:]
                self.requests.append((method, path, headers))
                answer = self.script(method, path, headers)
                if callable(answer):
                    answer(conn, self._stopped)
                    return
                if answer is None:
                    return
                conn.sendall(answer)
        except (OSError, socket.timeout, ValueError):
            pass
        finally:
            conn.close()

    def stop(self):
        self._stopped.set()
        self.sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def answer(status=200, body=b"", headers=None):
    """The bytes of a simple HTTP/1.1 answer with a Content-Length."""
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def trickle(data, interval):
    """A script action that sends ``data`` one byte per ``interval`` seconds until stopped."""
    def act(conn, stopped):
        for i in range(len(data)):
            if stopped.wait(interval):
                return
            conn.sendall(data[i:i + 1])
        stopped.wait(30)
    return act


def stall(conn, stopped):
    """A script action that accepts the request and never answers (until stopped)."""
    stopped.wait(30)
