"""The registry client against hostile or broken servers: credentials and redirects, the
--timeout budget, streamed blobs, digests in URLs, tokens, references (spec/oci.md)."""
import json
import os
import time

import pytest

from compat.errors import BadInput, RegistryError
from compat.oci.digest import digest_of
from compat.oci.reference import Reference, parse
from compat.oci.registry import Registry
from conftest import FIXTURES, HOSTS
from helpers import run_hostile
from registry_harness import (DISTRIBUTION, FaultProxy, RunningRegistry, ScriptedServer, answer,
                              make_htpasswd, push_layout, stall, trickle)

DEMO = os.path.join(FIXTURES, "demo")
H100 = ["--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml")]
needs_registry = pytest.mark.skipif(DISTRIBUTION is None, reason="docker-registry (distribution) not installed")
EMPTY = b"{}"
EMPTY_DIGEST = digest_of(EMPTY)


def reg_for(host, **kw):
    kw.setdefault("env", {"HOME": "/nonexistent", "DOCKER_CONFIG": "/nonexistent"})
    return Registry(Reference(registry=host, repository="hpc/lammps", tag="1"), plain_http=True, **kw)


def a_config_digest():
    """A blob the demo layout pushes: the first child's config."""
    idx = json.load(open(os.path.join(DEMO, "index.json")))["manifests"][0]["digest"]
    index = json.load(open(os.path.join(DEMO, "blobs", "sha256", idx[7:])))
    man = json.load(open(os.path.join(DEMO, "blobs", "sha256", index["manifests"][0]["digest"][7:])))
    return man["config"]["digest"]


# -- 1. credentials never follow a redirect to another origin -------------------------------------

@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    if DISTRIBUTION is None:
        pytest.skip("docker-registry (distribution) not installed")
    d = tmp_path_factory.mktemp("basic")
    reg = RunningRegistry(d / "reg", htpasswd=make_htpasswd(d, "alice", "s3cret-pw"))
    proxy = FaultProxy(reg.port)
    auth = d / "auth.json"
    cred = {"username": "alice", "password": "s3cret-pw"}
    auth.write_text(json.dumps({"auths": {reg.host: cred, proxy.host: cred}}))
    push_layout(DEMO, reg.host, "hpc/lammps", "2024", env={"REGISTRY_AUTH_FILE": str(auth)})
    reg.proxy, reg.auth = proxy, str(auth)
    yield reg
    proxy.stop()
    reg.stop()


def _blob_bytes(digest):
    return open(os.path.join(DEMO, "blobs", "sha256", digest[7:]), "rb").read()


def test_redirect_to_another_host_drops_the_password(basic):
    """The blob redirect goes to another port: the blob arrives, the password does not."""
    digest = a_config_digest()
    with ScriptedServer(lambda m, p, h: answer(200, _blob_bytes(digest))) as storage:
        basic.proxy.blob_redirect = storage.url
        try:
            reg = reg_for(basic.proxy.host, env={"REGISTRY_AUTH_FILE": basic.auth, "HOME": "/nonexistent"})
            assert reg.get_blob(digest) == _blob_bytes(digest)
        finally:
            basic.proxy.blob_redirect = None
    assert len(storage.requests) == 1 and "authorization" not in storage.requests[0][2]
    # the registry itself did get the credentials
    assert any(p.endswith(digest) and (a or "").startswith("Basic ") for p, a in basic.proxy.authorization)


def test_foreign_challenge_never_gets_the_password(basic):
    """The other host answers 401 with a Bearer challenge naming its own realm: nothing is
    sent to that realm, and the registry's own credentials keep working afterwards."""
    digest = a_config_digest()
    with ScriptedServer(lambda m, p, h: answer(200, b'{"token": "evil"}')) as realm, \
            ScriptedServer(lambda m, p, h: answer(401, b"", {
                "WWW-Authenticate": f'Bearer realm="{realm.url}/token",service="x",scope="y"'})) as storage:
        basic.proxy.blob_redirect = storage.url
        reg = reg_for(basic.proxy.host, env={"REGISTRY_AUTH_FILE": basic.auth, "HOME": "/nonexistent"})
        try:
            with pytest.raises(RegistryError, match="redirected to answered 401"):
                reg.get_blob(digest)
        finally:
            basic.proxy.blob_redirect = None
        assert realm.requests == []
        assert all("authorization" not in h for _, _, h in storage.requests)
        assert reg._auth_header.startswith("Basic ")                    # not replaced by anyone's token
        assert reg.get_manifest("2024")[0].startswith("sha256:")


def test_same_origin_redirect_keeps_credentials(tmp_path):
    """A relative redirect stays on the registry: credentials go with it."""
    with ScriptedServer(_redirecting_registry(lambda p: "/storage" + p, EMPTY)) as registry:
        auth = tmp_path / "auth.json"
        auth.write_text(json.dumps({"auths": {registry.host: {"username": "u", "password": "pw"}}}))
        reg = reg_for(registry.host, env={"REGISTRY_AUTH_FILE": str(auth), "HOME": "/nonexistent"})
        assert reg.get_blob(EMPTY_DIGEST) == EMPTY
    assert registry.requests[-1][1].startswith("/storage/")
    assert registry.requests[-1][2]["authorization"].startswith("Basic ")


# Go's net/http TestShouldCopyHeaderOnRedirect vectors for "authorization" (client_test.go),
# and where compat deliberately differs (spec/oci.md): the origin rule curl applies since
# CVE-2022-27776 (a change of scheme or port drops credentials), and no subdomain exception.
@pytest.mark.parametrize("initial,dest,go,compat", [
    ("http://foo.com/", "http://bar.com/", False, False),
    ("http://foo.com/", "http://foo.com/", True, True),
    ("http://foo.com/", "http://notfoo.com/", False, False),
    ("http://foo.com/", "http://[::1%25.foo.com]/", False, False),
    ("http://foo.com:80/", "http://foo.com/", True, True),
    ("http://foo.com/", "http://sub.foo.com/", True, False),
    ("http://foo.com/", "https://foo.com/", True, False),
    ("http://foo.com:1234/", "http://foo.com:4321/", True, False),
])
def test_credentials_rule_against_go_vectors(initial, dest, go, compat):
    from compat.oci.registry import keeps_credentials
    assert keeps_credentials(initial, dest) is compat


def _redirecting_registry(location_for, blob):
    """A scripted registry demanding basic auth; blob GETs are redirected to location_for(path)."""
    def script(method, path, headers):
        if not headers.get("authorization", "").startswith("Basic "):
            return answer(401, b"", {"WWW-Authenticate": 'Basic realm="r"'})
        if "/blobs/" in path and not path.startswith("/storage"):
            return answer(307, b"", {"Location": location_for(path)})
        return answer(200, blob)
    return script


@pytest.mark.parametrize("other", ["scheme", "port", "host"])
def test_origin_change_of_any_kind_drops_credentials(tmp_path, other):
    auth = tmp_path / "auth.json"
    with ScriptedServer(lambda m, p, h: answer(200, EMPTY)) as storage:
        target = {"port": f"{storage.url}/storage",
                  "host": None,               # filled below: localhost on the registry's own port
                  "scheme": None}[other]
        holder = {}
        with ScriptedServer(_redirecting_registry(lambda p: holder["loc"], EMPTY)) as registry:
            cred = {"username": "u", "password": "pw-xyz"}
            auth.write_text(json.dumps({"auths": {registry.host: cred, f"localhost:{registry.port}": cred}}))
            holder["loc"] = target or (f"http://localhost:{registry.port}/storage" if other == "host"
                                       else f"https://{registry.host}/storage")
            reg = reg_for(registry.host, env={"REGISTRY_AUTH_FILE": str(auth), "HOME": "/nonexistent"}, timeout=2)
            try:
                reg.get_blob(EMPTY_DIGEST)
            except RegistryError:
                pass        # https to a plain-HTTP peer fails; what matters is what was sent
            sent = [h for _, p, h in registry.requests + storage.requests if p.startswith("/storage")]
    assert all("authorization" not in h for h in sent)
    if other != "scheme":
        assert sent, "the redirect was followed"


def test_redirect_loop_is_bounded(tmp_path):
    with ScriptedServer(lambda m, p, h: answer(302, b"", {"Location": p + "x"})) as srv:
        with pytest.raises(RegistryError, match="more than 5 redirects"):
            reg_for(srv.host).get_blob(EMPTY_DIGEST)
        assert len(srv.requests) == 6


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://x/y", "http://u:p@127.0.0.1:1/"])
def test_redirect_to_a_non_http_url_is_refused(location):
    with ScriptedServer(lambda m, p, h: answer(307, b"", {"Location": location})) as srv:
        with pytest.raises(RegistryError, match="not http"):
            reg_for(srv.host).get_blob(EMPTY_DIGEST)


# -- 2/3. bounded bodies, the --timeout budget, tries counted truly ---------------------------------

def test_manifest_over_its_limit_is_refused_without_reading_it():
    from compat import limits
    big = answer(200, b"", {"Content-Type": "application/vnd.oci.image.index.v1+json"}).replace(
        b"Content-Length: 0", f"Content-Length: {limits.MANIFEST_BYTES + 1}".encode())
    with ScriptedServer(lambda m, p, h: big) as srv:
        with pytest.raises(RegistryError, match="limit"):
            reg_for(srv.host).get_manifest("1")
        assert len(srv.requests) == 1                 # not retried


def test_endless_chunked_body_cli_is_bounded():
    """-1 as a chunk size used to read to EOF (3 GB in 5 s)."""
    body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n" + b"x" * 65536
    with ScriptedServer(lambda m, p, h: body if m == "GET" else answer(404)) as srv:
        proc = run_hostile("select", f"{srv.host}/hpc/lammps:1", "--plain-http", "--timeout", "3", *H100)
    assert proc.returncode == 2 and "chunk" in proc.stderr


def test_silent_registry_stops_at_the_budget():
    """Accepts connections, never answers: used to take 43 s with --timeout 10."""
    with ScriptedServer(lambda *a: stall) as srv:
        start = time.monotonic()
        proc = run_hostile("select", f"{srv.host}/hpc/lammps:1", "--plain-http", "--timeout", "2", *H100)
        took = time.monotonic() - start
    assert proc.returncode == 2 and "timed out after 2 s" in proc.stderr and "1 try" in proc.stderr
    assert took < 2 + 4           # the budget plus the interpreter's start


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200,                                               # headers
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100,                           # body
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"T: x\r\n" * 90,          # trailers
])
def test_trickle_is_bounded_by_the_budget(data):
    with ScriptedServer(lambda *a: trickle(data, 0.2)) as srv:
        reg = reg_for(srv.host, timeout=1.5)
        start = time.monotonic()
        with pytest.raises(RegistryError, match=r"timed out after 1.5 s"):
            reg.get_manifest("1")
        assert time.monotonic() - start < 3


def test_retries_stop_at_the_budget():
    """503 with Retry-After 1 forever and a 2.5 s budget: tries at 0, 1, 2 s, then a clear stop
    (a fourth would start after the budget)."""
    with ScriptedServer(lambda *a: answer(503, b"", {"Retry-After": "1"})) as srv:
        start = time.monotonic()
        with pytest.raises(RegistryError, match="exceeds the 2.5 s budget") as err:
            reg_for(srv.host, timeout=2.5).get_manifest("1")
        assert time.monotonic() - start < 2.5
        assert "answered 503 (3 tries)" in str(err.value) and len(srv.requests) == 3


def test_connection_refused_retries_within_the_budget():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    start = time.monotonic()
    with pytest.raises(RegistryError, match=r"cannot reach .*\((\d) tries\)"):
        reg_for(f"127.0.0.1:{port}", timeout=1.0).get_manifest("1")
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize("status", [307, 400])
def test_one_request_says_one_try(status):
    """An answer that is not retried is reported as 1 try (it used to say 4)."""
    with ScriptedServer(lambda *a: answer(status)) as srv:
        with pytest.raises(RegistryError, match=f"answered {status} after 1 try$"):
            reg_for(srv.host).get_manifest("1")
        assert len(srv.requests) == 1


def test_one_budget_shared_by_two_clients():
    from compat.oci.http import Deadline
    deadline = Deadline(1.0)
    with ScriptedServer(lambda *a: stall) as srv:
        start = time.monotonic()
        for _ in range(2):
            with pytest.raises(RegistryError, match="timed out"):
                reg_for(srv.host, deadline=deadline).get_manifest("1")
        assert time.monotonic() - start < 1.8


def test_wait_notice_on_a_terminal_only():
    import pty

    from compat.oci.progress import WaitNotice
    master, slave = pty.openpty()
    tty = os.fdopen(slave, "w")
    with ScriptedServer(lambda *a: stall) as srv:
        reg = reg_for(srv.host, timeout=3.0)
        reg._notice = WaitNotice(srv.host, stream=tty)
        with pytest.raises(RegistryError):
            reg.get_manifest("1")
    import select
    shown = ""
    while select.select([master], [], [], 0.2)[0]:
        shown += os.read(master, 4096).decode()
    assert "waiting 2 s for 127.0.0.1" in shown and "GET /v2/hpc/lammps/manifests/1" in shown
    assert shown.endswith("\r\x1b[K")                     # erased at the end
    tty.close()
    os.close(master)


def test_wait_notice_during_a_stalled_tls_handshake():
    """A server that accepts and never answers the TLS hello: the handshake waits in deadline
    slices like any other wait, so the terminal hears of it and the deadline ends it."""
    import pty
    import select

    from compat.oci.progress import WaitNotice
    master, slave = pty.openpty()
    tty = os.fdopen(slave, "w")
    with ScriptedServer(lambda *a: stall) as srv:
        reg = Registry(Reference(registry=srv.host, repository="hpc/lammps", tag="1"), timeout=3.0,
                       env={"HOME": "/nonexistent", "DOCKER_CONFIG": "/nonexistent"})
        reg.scheme = "https"                      # and no plain-HTTP fallback
        reg._may_switch = False
        reg._notice = WaitNotice(srv.host, stream=tty)
        start = time.monotonic()
        with pytest.raises(RegistryError):
            reg.get_manifest("1")
        assert time.monotonic() - start < 4.5
    shown = ""
    while select.select([master], [], [], 0.2)[0]:
        shown += os.read(master, 4096).decode()
    assert "waiting 2 s for 127.0.0.1" in shown, shown
    tty.close()
    os.close(master)


def test_no_notice_when_not_a_terminal():
    import io

    from compat.oci.progress import WaitNotice
    out = io.StringIO()
    n = WaitNotice("h", stream=out)
    n.begin("GET /")
    n.on_wait(5)
    n.retrying("answered 503", 3, 2)
    n.end()
    assert out.getvalue() == ""


# -- 4. streamed blobs ---------------------------------------------------------------------------

@needs_registry
def test_open_blob_streams_through_a_redirect(basic):
    import hashlib
    digest = a_config_digest()
    blob = _blob_bytes(digest)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"%x\r\n%s\r\n" % (len(blob[i:i + 7]), blob[i:i + 7]) for i in range(0, len(blob), 7)) + b"0\r\n\r\n"
    with ScriptedServer(lambda m, p, h: chunked) as storage:
        basic.proxy.blob_redirect = storage.url
        try:
            reg = reg_for(basic.proxy.host, env={"REGISTRY_AUTH_FILE": basic.auth, "HOME": "/nonexistent"})
            h = hashlib.sha256()
            with reg.open_blob(digest) as f:
                while True:
                    part = f.read(5)
                    if not part:
                        break
                    assert len(part) <= 5
                    h.update(part)
        finally:
            basic.proxy.blob_redirect = None
    assert "sha256:" + h.hexdigest() == digest
    assert "authorization" not in storage.requests[0][2]


def test_open_blob_errors_are_registry_errors():
    body = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
    with ScriptedServer(lambda *a: lambda conn, stopped: conn.sendall(body)) as srv:     # then closes
        f = reg_for(srv.host).open_blob(EMPTY_DIGEST)
        assert f.read(10) == b"x" * 10
        with pytest.raises(RegistryError, match="middle of a body"):
            f.read(10)
    with ScriptedServer(lambda *a: answer(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}')) as srv:
        with pytest.raises(RegistryError, match="not found .BLOB_UNKNOWN"):
            reg_for(srv.host).open_blob(EMPTY_DIGEST)
    with ScriptedServer(lambda *a: trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nxxxxxxxxx", 0.3)) as srv:
        with pytest.raises(RegistryError, match="timed out"):
            with reg_for(srv.host, timeout=1.5).open_blob(EMPTY_DIGEST) as f:
                f.read()


# -- 5. digests are checked before they go into a URL ------------------------------------------------

@pytest.mark.parametrize("call", ["get_blob", "open_blob", "referrers", "get_manifest"])
def test_malformed_digest_never_reaches_the_network(call):
    with ScriptedServer(lambda *a: answer(200, EMPTY)) as srv:
        with pytest.raises(BadInput, match="malformed"):
            getattr(reg_for(srv.host), call)("sha256:../../../v2/other/blobs/x")
        assert srv.requests == []


def test_malformed_docker_content_digest_is_refused():
    with ScriptedServer(lambda *a: answer(200, EMPTY, {"Docker-Content-Digest": "sha256:../../etc"})) as srv:
        with pytest.raises(RegistryError, match="malformed Docker-Content-Digest"):
            reg_for(srv.host).get_manifest("1")


def test_referrers_with_malformed_digests_are_left_out():
    good = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": EMPTY_DIGEST, "size": 2}
    bad = dict(good, digest="sha256:../../x")
    index = json.dumps({"schemaVersion": 2, "manifests": [bad, good, "x"]}).encode()
    with ScriptedServer(lambda *a: answer(200, index, {"Content-Type": "application/vnd.oci.image.index.v1+json"})) \
            as srv:
        assert reg_for(srv.host).referrers(EMPTY_DIGEST) == [good]


# -- 6. tokens and references ------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "t\u00f6k\u20ac", "a b", ""])
def test_malformed_token_is_refused(token):
    with ScriptedServer(lambda *a: answer(200, json.dumps({"token": token}).encode())) as realm, \
            ScriptedServer(lambda *a: answer(401, b"", {"WWW-Authenticate": f'Bearer realm="{realm.url}/t"'})) \
            as srv:
        with pytest.raises(RegistryError, match="token"):
            reg_for(srv.host).get_manifest("1")
        assert len(srv.requests) == 1 and all("x-injected" not in h for _, _, h in srv.requests)


@pytest.mark.parametrize("ref", ["127.0.0.1:abc/x/y:1", "127.0.0.1:0/x/y", "127.0.0.1:70000/x/y",
                                 "127.0.0.1:5000/x/y:t\u00e4g", "127.0.0.1:5000/x/y:\u0661", "a.b\r\nX: y/x/y",
                                 "[::g]:5000/x/y", "exa mple.com/x/y"])
def test_malformed_references_are_one_line(ref):
    proc = run_hostile("select", ref, *H100)
    assert proc.returncode == 2


@pytest.mark.parametrize("registry,loopback", [
    ("127.0.0.1:5000", True), ("127.1.2.3", True), ("localhost:5000", True), ("[::1]:5000", True),
    ("[::1]", True), ("127.example.org", False), ("[::2]:5000", False),
    ("10.0.0.1:5000", False), ("localhost.example.org", False)])
def test_loopback_is_decided_by_address(registry, loopback):
    assert parse(f"{registry}/x/y").loopback is loopback


from hypothesis import given, settings, strategies as st  # noqa: E402

_REF_ALPHABET = st.sampled_from(list("aZ09._-:/@[]") + ["sha256:" + "a" * 64, "localhost", "\u00e4", "\r", " "])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.one_of(st.text(max_size=40), st.lists(_REF_ALPHABET, max_size=12).map("".join)))
def test_reference_parser_gives_a_reference_or_bad_input(text):
    import re
    try:
        ref = parse(text)
    except BadInput:
        return
    if ref.is_layout:
        return
    assert ref.tag is None or re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", ref.tag)
    assert all(ord(c) < 128 and c not in "\r\n\x00 " for c in ref.registry + ref.repository)
    assert parse(str(ref)) == ref


def test_open_blob_reads_at_most_the_declared_size():
    with ScriptedServer(lambda *a: answer(200, b"x" * 100)) as srv:
        with pytest.raises(RegistryError, match="over the 10-byte limit"):
            reg_for(srv.host).open_blob(EMPTY_DIGEST, size=10)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"8\r\nxxxxxxxx\r\n" * 4 + b"0\r\n\r\n"
    with ScriptedServer(lambda *a: chunked) as srv:
        with reg_for(srv.host).open_blob(EMPTY_DIGEST, size=10) as f:
            assert f.read(8) == b"x" * 8
            with pytest.raises(RegistryError, match="limit"):
                f.read()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_timeout_must_be_a_positive_number(value):
    proc = run_hostile("select", "127.0.0.1:9/x/y:1", "--plain-http", "--timeout", value, *H100)
    assert proc.returncode == 2 and "--timeout" in proc.stderr and "above 0" in proc.stderr


_ANSWERS = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda status, hdrs, body: answer(status, body, dict(hdrs)),
              st.sampled_from([200, 201, 301, 302, 307, 401, 404, 429, 500]),
              st.lists(st.tuples(st.sampled_from(["Location", "WWW-Authenticate", "Docker-Content-Digest",
                                                  "Content-Type", "Retry-After", "OCI-Filters-Applied"]),
                                 st.sampled_from(["", "x", "/v2/", "http://127.0.0.1:9/", "Bearer realm=\"x\"",
                                                  "Basic", "sha256:../x", EMPTY_DIGEST, "nan", "1e999", "-1",
                                                  "application/json", "Bearer realm=\"http://127.0.0.1:9/t\"",
                                                  "\u00ff\u00fe"])), max_size=3),
              st.sampled_from([b"", b"{}", b"[]", b'{"errors": 5}', b'{"errors": [{"code": {}}]}',
                               b'{"manifests": [1, {"digest": 2}]}', b'{"token": "\\r\\n"}', b"\xff" * 10])))


@settings(max_examples=120, deadline=None, derandomize=True)
@given(_ANSWERS, st.sampled_from(["head_digest", "get_manifest", "referrers", "get_blob"]))
def test_any_answer_is_a_result_or_a_registry_error(data, call):
    """Whatever a peer answers, the client returns or raises BadInput (exit 2), nothing else."""
    with ScriptedServer(lambda *a: lambda conn, stopped: conn.sendall(data), max_requests=20, seconds=5) as srv:
        reg = reg_for(srv.host, timeout=2, retries=0)
        arg = "1" if call in ("head_digest", "get_manifest") else EMPTY_DIGEST
        try:
            getattr(reg, call)(arg)
        except BadInput:
            pass
        finally:
            reg.close()
