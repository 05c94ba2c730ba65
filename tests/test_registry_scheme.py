"""Which scheme compat talks to a registry in (spec/oci.md, "Transport" and "Loopback
registries"): plain HTTP first for a loopback registry, the answer remembered per host:port
and corrected when the registry changes scheme; HTTPS only for any other registry. The
registries are Debian's docker-registry (plain and TLS) behind a TCP forwarder that records,
per connection, whether the client opened it with TLS or plain HTTP."""
import os
import socket
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings, strategies as st

from compat.errors import RegistryError
from compat.oci import schemes
from compat.oci.reference import Reference, is_loopback, split_registry
from compat.oci.registry import Registry
from conftest import FIXTURES, HOSTS, REPO, run_compat
from helpers import cuda124_digest
from registry_harness import (DISTRIBUTION, RunningRegistry, ScriptedServer, answer, make_tls, push_layout,
                              serve_loopback)

needs_registry = pytest.mark.skipif(DISTRIBUTION is None, reason="docker-registry (distribution) not installed")
DEMO = os.path.join(FIXTURES, "demo")
H100 = ["--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml")]


class Forwarder:
    """A TCP forwarder on 127.0.0.1 to ``upstream`` (a port, changeable between commands);
    ``opened`` lists each connection as "tls" (the first byte is a TLS handshake record) or
    "http"."""

    def __init__(self, upstream: int):
        self.upstream = upstream
        self.opened = []
        self.sock = serve_loopback(self._serve)
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"

    def _serve(self, client):
        first = client.recv(65536)
        if not first:
            client.close()
            return
        self.opened.append("tls" if first[0] == 0x16 else "http")
        server = socket.create_connection(("127.0.0.1", self.upstream))
        server.sendall(first)
        threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()
        self._pipe(client, server)

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def take(self):
        """The connections opened since the last call."""
        out, self.opened = self.opened, []
        return out

    def stop(self):
        self.sock.close()


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    d = tmp_path_factory.mktemp("schemes")
    plain = RunningRegistry(d / "plain")
    ca, cert, key = make_tls(d / "ca")
    tls = RunningRegistry(d / "tls", tls=(cert, key))
    try:
        push_layout(DEMO, plain.host, "hpc/lammps", "2024")
        push_layout(DEMO, tls.host, "hpc/lammps", "2024", plain_http=False,
                    env={"SSL_CERT_FILE": ca, "COMPAT_CACHE_DIR": str(d / "cache")})
        yield plain, tls, ca
    finally:
        plain.stop()
        tls.stop()


@pytest.fixture
def forwarder():
    fwd = Forwarder(0)
    yield fwd
    fwd.stop()


def _select(fwd, ca, tmp_path, *extra):
    env = {"SSL_CERT_FILE": ca, "COMPAT_CACHE_DIR": str(tmp_path / "cache"), "HOME": "/nonexistent"}
    return run_compat("select", f"{fwd.host}/hpc/lammps:2024", "--no-referrers", *H100, *extra, env=env)


def _memory(tmp_path, fwd):
    path = tmp_path / "cache" / "schemes" / f"127.0.0.1_{fwd.port}"
    return path.read_text() if path.exists() else None


@needs_registry
def test_loopback_scheme_is_remembered_used_and_corrected(registries, forwarder, tmp_path):
    plain, tls, ca = registries
    pinned = f"{forwarder.host}/hpc/lammps@{cuda124_digest()}"
    steps = [   # (upstream, the connections a select opens, what is remembered after it)
        (plain, ["http"], "http"),              # nothing remembered: plain HTTP first
        (plain, ["http"], "http"),              # remembered: the same, one connection
        (tls, ["http", "tls"], "https"),        # the registry now speaks TLS: a 400, then TLS
        (tls, ["tls"], "https"),                # remembered: straight to TLS
        (plain, ["tls", "http"], "http"),       # plain again: the TLS attempt fails, HTTP answers
        (plain, ["http"], "http"),
    ]
    for i, (upstream, opened, remembered) in enumerate(steps):
        forwarder.upstream = upstream.port
        proc = _select(forwarder, ca, tmp_path)
        assert (proc.returncode, proc.stdout.strip()) == (0, pinned), (i, proc.stderr)
        assert (forwarder.take(), _memory(tmp_path, forwarder)) == (opened, remembered), i


@needs_registry
def test_an_untrusted_certificate_is_never_a_reason_for_plain_http(registries, forwarder, tmp_path):
    plain, tls, ca = registries
    forwarder.upstream = tls.port
    proc = _select(forwarder, "/dev/null", tmp_path)
    assert proc.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in proc.stderr
    assert forwarder.take() == ["http", "tls"] and _memory(tmp_path, forwarder) is None


@needs_registry
def test_no_cache_means_no_memory(registries, forwarder, tmp_path):
    plain, tls, ca = registries
    forwarder.upstream = tls.port
    for _ in range(2):
        proc = run_compat(
            "select", f"{forwarder.host}/hpc/lammps:2024", "--no-referrers", *H100,
            env={"SSL_CERT_FILE": ca, "COMPAT_CACHE_DIR": str(tmp_path / "cache"), "COMPAT_NO_CACHE": "1"})
        assert proc.returncode == 0 and forwarder.take() == ["http", "tls"]
    assert _memory(tmp_path, forwarder) is None


@needs_registry
@pytest.mark.parametrize("plain_http, opened", [(False, ["tls"]), (True, ["http"])])
def test_a_registry_that_is_not_loopback_gets_https_only(registries, forwarder, tmp_path, monkeypatch,
                                                         plain_http, opened):
    """A name that is not loopback (here one that resolves to 127.0.0.1) gets plain HTTP only
    when the user says so, even from a plain-HTTP registry, and nothing is remembered."""
    plain, tls, ca = registries
    forwarder.upstream = plain.port
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "cache"))
    real = socket.getaddrinfo

    def resolve(host, *a, **kw):
        return real("127.0.0.1" if host in ("registry.test", b"registry.test") else host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    ref = Reference(registry=f"registry.test:{forwarder.port}", repository="hpc/lammps", tag="2024")
    assert not ref.loopback
    reg = Registry(ref, plain_http=plain_http, timeout=5, env={"HOME": "/nonexistent"})
    try:
        if plain_http:
            assert reg.head_digest("2024")
        else:
            with pytest.raises(RegistryError, match="TLS failed"):
                reg.head_digest("2024")
    finally:
        reg.close()
    assert forwarder.take() == opened
    assert not (tmp_path / "cache" / "schemes").exists()


@needs_registry
def test_a_registry_without_a_port_is_tried_on_the_other_schemes_port(registries, forwarder, tmp_path,
                                                                        monkeypatch):
    """``localhost/repo``: plain HTTP is port 80 (refused here), TLS port 443 (the TLS
    registry here): the refusal sends compat to TLS, which is remembered."""
    plain, tls, ca = registries
    forwarder.upstream = tls.port
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))               # bound, never listening: connections are refused
    ports = {80: closed.getsockname()[1], 443: forwarder.port}
    real = socket.getaddrinfo

    def resolve(host, port, *a, **kw):
        if host in ("localhost", b"localhost"):
            return real("127.0.0.1", ports[port], *a, **kw)
        return real(host, port, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    try:
        for opened in (["tls"], ["tls"]):
            reg = Registry(Reference(registry="localhost", repository="hpc/lammps", tag="2024"), timeout=5,
                           env={"HOME": "/nonexistent"})
            assert reg.head_digest("2024")
            reg.close()
            assert forwarder.take() == opened and schemes.recall("localhost") == "https"
    finally:
        closed.close()


def test_a_broken_plain_answer_that_is_not_tls_either_is_retried_over_http(tmp_path, monkeypatch):
    """Plain HTTP gets a malformed answer: TLS is tried once; the peer does not speak it, so
    plain HTTP stands and the answer counts as a malformed one (retried, then reported)."""
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "cache"))
    with ScriptedServer(lambda method, path, headers: b"garbage\r\n\r\n") as srv:
        reg = Registry(Reference(registry=srv.host, repository="hpc/lammps", tag="1"), timeout=10, retries=1,
                       env={"HOME": "/nonexistent"})
        with pytest.raises(RegistryError, match="malformed HTTP response") as err:
            reg.head_digest("1")
        reg.close()
    assert "2 tries" in str(err.value) and reg.scheme == "http"
    assert not (tmp_path / "cache" / "schemes").exists()


def test_a_plain_400_is_the_registrys_own_answer_when_tls_is_not_spoken(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "cache"))
    body = b'{"errors":[{"code":"NAME_INVALID","message":"bad name"}]}'
    with ScriptedServer(lambda method, path, headers: answer(400, body)) as srv:
        reg = Registry(Reference(registry=srv.host, repository="hpc/lammps", tag="1"), timeout=10,
                       env={"HOME": "/nonexistent"})
        with pytest.raises(RegistryError, match="NAME_INVALID"):
            reg.get_manifest("1")
        reg.close()
        assert len(srv.requests) == 1          # the TLS attempt is no HTTP request
    assert schemes.recall(srv.host) == "http"


@pytest.mark.parametrize("content", ["gopher", "https\x00", "x" * 100, None])
def test_a_hostile_memory_is_no_memory(tmp_path, monkeypatch, content):
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path))
    os.makedirs(tmp_path / "schemes")
    path = tmp_path / "schemes" / "127.0.0.1_5000"
    if content is None:
        os.mkfifo(path)                        # a FIFO must not hang the read
    else:
        path.write_text(content)
    assert schemes.recall("127.0.0.1:5000") is None
    assert Registry(Reference(registry="127.0.0.1:5000", repository="a/b", tag="1")).scheme == "http"


def test_memory_is_per_host_and_port(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path))
    schemes.remember("127.0.0.1:5000", "https")
    schemes.remember("[::1]:5000", "http")
    assert [schemes.recall(r) for r in ("127.0.0.1:5000", "127.0.0.1:5001", "[::1]:5000", "localhost:5000")] \
        == ["https", None, "http", None]
    assert Registry(Reference(registry="127.0.0.1:5000", repository="a/b", tag="1")).scheme == "https"
    assert Registry(Reference(registry="registry.test", repository="a/b", tag="1")).scheme == "https"
    assert Registry(Reference(registry="127.0.0.1:5000", repository="a/b", tag="1"), plain_http=True).scheme \
        == "http"


def _oracle(registry: str) -> bool:
    """Loopback as the ipaddress module decides it (what is_loopback did before)."""
    import ipaddress
    try:
        host, _ = split_registry(registry)
    except Exception:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_octet = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "0127", "255", "256", ""]))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.one_of(
    st.tuples(st.sampled_from(["127", "10", "0", "128", "1270"]), _octet, _octet, _octet)
    .map(lambda t: ".".join(t)),
    st.text(alphabet="0123456789.:[]abcdefxl", max_size=24),
    st.sampled_from(["[::1]", "[0:0:0:0:0:0:0:1]", "[::2]", "[::ffff:127.0.0.1]", "LOCALHOST", "127.1",
                     "127.example.org", "127.0.0.1.nip.io"])),
    st.sampled_from(["", ":5000", ":0", ":x"]))
def test_loopback_without_ipaddress_agrees_with_ipaddress(host, port):
    registry = host + port
    assert is_loopback(registry) == _oracle(registry)


@needs_registry
def test_the_warm_loopback_path_loads_no_tls_url_or_libcrypto_module(registries, tmp_path):
    """A warm select's registry work (HEAD, the cached index, the referrers lookups) on a
    plain-HTTP loopback registry, in a fresh interpreter: none of the modules that the
    loopback path leaves to the cases that need them is loaded."""
    plain, tls, ca = registries
    code = f"""
import sys
before = set(sys.modules)
from compat.oci.reference import parse
from compat.oci.source import Source
for _ in range(2):          # the first fills the cache and the scheme memory
    src = Source(parse("{plain.host}/hpc/lammps:2024"))
    digest, _, doc = src.resolve(descriptors=False)
    src.referrers(digest, "application/vnd.nfd.image-compatibility.v1alpha1")
    src.referrers(doc["manifests"][0]["digest"])
    src.close()
print(sorted(m for m in ("ssl", "_ssl", "hashlib", "_hashlib", "base64", "urllib.parse", "ipaddress",
                         "subprocess", "encodings.idna", "email", "http.client") if m in set(sys.modules) - before))
"""
    env = dict(os.environ, PYTHONPATH=REPO, COMPAT_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
