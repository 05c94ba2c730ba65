"""HTTP(S) proxies: the environment rules (vectors from golang.org/x/net/http/httpproxy's
proxy_test.go), the CONNECT exchange against hostile proxies, and compat select through a
real squid (plain HTTP in absolute form, HTTPS through CONNECT, proxy credentials,
NO_PROXY, refusals)."""
import json
import os
import socket
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from conftest import FIXTURES, HOSTS, run_compat
from helpers import cuda124_digest, run_hostile
from compat.oci import proxy as P
from compat.oci.http import Connection, Deadline, _open_socket as open_tcp

DEMO = os.path.join(FIXTURES, "demo")
H100 = ["--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml")]
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
                   "NO_PROXY", "no_proxy", "REQUEST_METHOD")


def proxy_env(**values):
    """An environment in which exactly ``values`` of the proxy variables are set (the
    surrounding ones, e.g. a CI machine's, are blanked: empty counts as unset)."""
    env = {name: "" for name in PROXY_VARIABLES}
    env.update(values)
    return env


# -- Go's httpproxy vectors: ProxyForURL -----------------------------------------------------------

def _settings(http="", https="", no_proxy="", cgi=False):
    return P.Settings(http=(http, "HTTP_PROXY" if http else ""), https=(https, "HTTPS_PROXY" if https else ""),
                      all=("", ""), no_proxy=no_proxy, cgi=cgi)


# (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, CGI, request (scheme, host, port), the proxy URL or None)
PROXY_FOR_URL = [
    ("127.0.0.1:8080", "", "", False, None, "http://127.0.0.1:8080"),
    ("cache.corp.example.com:1234", "", "", False, None, "http://cache.corp.example.com:1234"),
    ("cache.corp.example.com", "", "", False, None, "http://cache.corp.example.com"),
    ("localhost", "", "", False, None, "http://localhost"),
    ("https://cache.corp.example.com", "", "", False, None, "https://cache.corp.example.com"),
    ("http://127.0.0.1:8080", "", "", False, None, "http://127.0.0.1:8080"),
    ("https://127.0.0.1:8080", "", "", False, None, "https://127.0.0.1:8080"),
    ("socks5://127.0.0.1", "", "", False, None, "socks5://127.0.0.1"),
    ("foo://host", "", "", False, None, "foo://host"),
    ("http.proxy.tld", "secure.proxy.tld", "", False, ("http", "insecure.tld", 80), "http://http.proxy.tld"),
    ("http.proxy.tld", "secure.proxy.tld", "", False, ("https", "secure.tld", 443), "http://secure.proxy.tld"),
    ("http.proxy.tld", "https://secure.proxy.tld", "", False, ("https", "secure.tld", 443),
     "https://secure.proxy.tld"),
    ("http.proxy.tld", "", "", False, ("https", "secure.tld", 443), None),
    ("http.proxy.tld", "", "", False, ("ftp", "insecure.tld", 21), None),
    ("", "https://secure.proxy.tld", "", True, ("https", "secure.tld", 443), "https://secure.proxy.tld"),
    ("", "", "", False, None, None),
    ("proxy", "", "example.com", False, None, None),
    ("proxy", "", ".example.com", False, None, "http://proxy"),
    ("proxy", "", "ample.com", False, None, "http://proxy"),
    ("proxy", "", "example.com", False, ("http", "foo.example.com", 80), None),
    ("proxy", "", ".foo.com", False, None, "http://proxy"),
    ("proxy", "", ".示例.com", False, ("http", "www.示例.com", 80), None),
    ("proxy", "", "xn--fsq092h.com", False, ("http", "www.示例.com", 80), None),
    ("proxy", "", "示例.com", False, ("http", "www.xn--fsq092h.com", 80), None),
    # CVE-2025-22870: a zone that looks like a domain is no domain
    ("proxy", "", "example.com", False, ("http", "1000::%.example.com", 123), "http://proxy"),
]


@pytest.mark.parametrize("http,https,no_proxy,cgi,request_,want", PROXY_FOR_URL)
def test_go_proxy_for_url_vectors(http, https, no_proxy, cgi, request_, want):
    scheme, host, port = request_ or ("http", "example.com", 80)
    got = P.proxy_for(scheme, host, port, _settings(http, https, no_proxy, cgi))
    assert (None if got is None else str(got)) == want


def test_go_refuses_http_proxy_in_cgi():
    with pytest.raises(P.ProxyError, match="refusing to use HTTP_PROXY in a CGI environment"):
        P.proxy_for("http", "example.com", 80, _settings(http="http://10.1.2.3:8080", cgi=True))


# -- Go's httpproxy vectors: useProxy --------------------------------------------------------------

GO_NO_PROXY = ("foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, "
               "10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, 2002:db8:a::45/64")
USE_PROXY = [
    ("localhost", False), ("127.0.0.1", False), ("127.0.0.2", False), ("[::1]", False), ("[::2]", True),
    ("192.168.1.1", False), ("192.168.1.2", True), ("192.168.1.3", False), ("192.168.1.4", True),
    ("10.0.0.2", False), ("[2001:db8::52:0:1]", False), ("[2001:db8::52:0:2]", True),
    ("[2001:db8::52:0:3]", False), ("[2002:db8:a::123]", False), ("[fe80::424b:c8be:1643:a1b6]", True),
    ("barbaz.net", True), ("www.barbaz.net", False), ("foobar.com", False), ("www.foobar.com", False),
    ("foofoobar.com", True), ("baz.com", True), ("localhost.net", True), ("local.localhost", True),
    ("barbarbaz.net", True), ("wildcard.io", True), ("nested.wildcard.io", False), ("awildcard.io", True),
]


def _use_proxy(no_proxy, host, port="80"):
    return not P.NoProxy(no_proxy).bypass(host.strip("[]"), port)


@pytest.mark.parametrize("host,proxied", USE_PROXY)
def test_go_use_proxy_vectors(host, proxied):
    assert _use_proxy(GO_NO_PROXY, host) is proxied


@pytest.mark.parametrize("host,proxied", USE_PROXY)
def test_go_all_no_proxy(host, proxied):
    assert _use_proxy("*", host) is False


def test_go_invalid_no_proxy_entry_is_ignored():
    assert _use_proxy(":1", "example.com") is True


def test_no_proxy_is_case_insensitive_and_trims_spaces():
    assert _use_proxy("  Registry.Example.ORG ", "REGISTRY.example.org") is False
    assert _use_proxy("registry.example.org:5000", "registry.example.org", "5000") is False
    assert _use_proxy("registry.example.org:5000", "registry.example.org", "443") is True


def test_loopback_goes_direct_whatever_no_proxy_says():
    """Go's useProxy never proxies localhost and loopback addresses; there is no override."""
    for host in ("localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::1%lo"):
        assert P.NoProxy("").bypass(host, "5000"), host
    assert not P.NoProxy("").bypass("localhost.localdomain", "5000")


def test_ip_entries_never_match_names_and_names_never_match_addresses():
    assert _use_proxy("10.0.0.0/8", "10.example.org") is True
    assert _use_proxy("example.org", "10.0.0.1") is True
    assert _use_proxy("10.0.0.0/8", "::ffff:10.1.2.3") is False     # IPv4-mapped, as Go's net.IP
    assert _use_proxy("fe80::1", "fe80::1%eth0") is False            # zone ignored, as Go


# -- FromEnvironment: names, case, precedence ------------------------------------------------------

def test_go_from_environment_upper_and_lower_case():
    upper = P.Settings.from_env({"HTTP_PROXY": "httpproxy", "HTTPS_PROXY": "httpsproxy", "NO_PROXY": "noproxy"})
    lower = P.Settings.from_env({"http_proxy": "httpproxy", "https_proxy": "httpsproxy", "no_proxy": "noproxy"})
    for s in (upper, lower):
        assert (s.http[0], s.https[0], s.no_proxy, s.cgi) == ("httpproxy", "httpsproxy", "noproxy", False)
    assert P.Settings.from_env({"REQUEST_METHOD": "PUT"}).cgi is True


def test_upper_case_wins_and_empty_counts_as_unset():
    s = P.Settings.from_env({"HTTPS_PROXY": "upper:1", "https_proxy": "lower:2", "NO_PROXY": "",
                             "no_proxy": "a.example"})
    assert s.https == ("upper:1", "HTTPS_PROXY") and s.no_proxy == "a.example"
    s = P.Settings.from_env({"HTTPS_PROXY": "", "https_proxy": "lower:2"})
    assert s.https == ("lower:2", "https_proxy")


def test_all_proxy_is_the_fallback_for_both_schemes():
    env = {"ALL_PROXY": "http://all:3128", "HTTPS_PROXY": "http://secure:3128", "NO_PROXY": "direct.example"}
    assert str(P.route("reg.example", 443, True, env)) == "http://secure:3128"
    assert str(P.route("reg.example", 80, False, env)) == "http://all:3128"
    assert P.route("direct.example", 80, False, env) is None
    assert str(P.route("reg.example", 80, False, {"all_proxy": "all:1", "REQUEST_METHOD": "GET"})) == "http://all:1"


def test_no_variable_means_no_proxy():
    assert P.route("reg.example", 443, True, {"PATH": "/bin"}) is None
    assert P.route("reg.example", 443, True, proxy_env()) is None


# -- proxy URLs ------------------------------------------------------------------------------------

def test_proxy_url_credentials_are_decoded_and_never_shown():
    p = P.parse_proxy("http://al%40ce:p%3Ass@Proxy.Example:3128/ignored", "HTTPS_PROXY")
    assert (p.host, p.port, p.username, p.password) == ("proxy.example", 3128, "al@ce", "p:ss")
    assert str(p) == "http://proxy.example:3128" and "p:ss" not in p.named
    import base64
    assert base64.b64decode(p.authorization().split()[1]) == b"al@ce:p:ss"
    assert P.parse_proxy("[::1]:8080").host == "::1" and str(P.parse_proxy("[::1]:8080")) == "http://[::1]:8080"
    assert P.parse_proxy("proxy").port == 80 and P.parse_proxy("proxy").authorization() is None


@pytest.mark.parametrize("value", ["http://user:secret@proxy:99999", "http://user:secret@:3128",
                                   "http://user:secret@[::1:3128", "http://user:secret@proxy:port",
                                   "1http://proxy", "http://a:b:c"])
def test_bad_proxy_urls_are_errors_without_the_password(value):
    with pytest.raises(P.ProxyError) as err:
        P.parse_proxy(value, "HTTPS_PROXY")
    assert "secret" not in str(err.value) and "HTTPS_PROXY" in str(err.value)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=30), st.text(alphabet=st.characters(blacklist_characters="@", blacklist_categories=["Cs"]),
                                     min_size=1, max_size=30), st.text(max_size=30))
def test_any_proxy_value_parses_or_is_a_proxy_error_without_the_password(before, password, after):
    value = f"{before}user:{password}Zq@{after}"
    try:
        p = P.parse_proxy(value, "HTTP_PROXY")
    except P.ProxyError as exc:
        assert "\n" not in str(exc) and f"{password}Zq" not in str(exc)
    else:
        assert p.host and 0 < p.port < 65536 and f"{password}Zq" not in p.named


_entry = st.one_of(st.text(alphabet="abc.*:/[]%019f-", max_size=12), st.sampled_from(
    ["*", ".a.b", "a.b:1", "10.0.0.0/8", "[::1]:80", "::ffff:1.2.3.4", "1.2.3.4/33", "", " "]))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_entry, max_size=6), st.text(alphabet="abc.:019f%", max_size=15), st.sampled_from(["80", "1"]))
def test_no_proxy_never_fails_and_a_star_or_the_host_itself_bypasses(entries, host, port):
    text = ",".join(entries)
    result = P.NoProxy(text).bypass(host, port)
    assert isinstance(result, bool)
    assert P.NoProxy(text + ",*").bypass(host, port)
    if host and not any(c in host for c in ",:%") and not host.startswith("."):
        assert P.NoProxy(f"{text},{host}").bypass(host, port)


# -- CONNECT against hostile proxies (a socket that answers what the test says) ----------------------

class ScriptedProxy:
    """A listening socket whose first connection gets ``answer`` (bytes, sent in pieces of
    ``piece`` bytes every ``pause`` seconds); records what the client sent."""

    def __init__(self, answer, piece=None, pause=0.0):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.answer, self.piece, self.pause = answer, piece, pause
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                while b"\r\n\r\n" not in self.received:
                    data = conn.recv(4096)
                    if not data:
                        return
                    self.received += data
                step = self.piece or len(self.answer) or 1
                for i in range(0, len(self.answer), step):
                    conn.sendall(self.answer[i:i + step])
                    time.sleep(self.pause)
                time.sleep(0.2)
            except OSError:
                pass

    def proxy(self, creds=""):
        return P.parse_proxy(f"http://{creds}127.0.0.1:{self.port}", "HTTPS_PROXY")

    def close(self):
        self.sock.close()


def _tunnel(answer, timeout=5.0, creds="", **kw):
    server = ScriptedProxy(answer, **kw)
    try:
        sock = P.open_socket(server.proxy(creds), "registry.example", 443, True, Deadline(timeout), open_tcp)
        sock.close()
        return server.received
    finally:
        server.close()


def test_connect_request_carries_only_what_the_proxy_needs():
    sent = _tunnel(b"HTTP/1.1 200 Connection established\r\n\r\n", creds="u:p%20w@")
    lines = sent.decode().split("\r\n")
    assert lines[0] == "CONNECT registry.example:443 HTTP/1.1"
    assert "Host: registry.example:443" in lines and "Proxy-Authorization: Basic dTpwIHc=" in lines
    assert not any(line.lower().startswith("authorization") for line in lines)


@pytest.mark.parametrize("answer,message", [
    (b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 5\r\n\r\nnope!", "407 Proxy Authentication"),
    (b"HTTP/1.0 403 Forbidden\r\n\r\n", "refused CONNECT to registry.example:443: 403 Forbidden"),
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP answer to CONNECT"),
    (b"", "closed the connection without answering CONNECT"),
    (b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01", "data after it"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 100_000 + b"\r\n\r\n", "over 65536 bytes"),
    (b"HTTP/1.1 403 \x1b[31mred\r\n\r\n", "403 \\x1b[31mred"),
])
def test_hostile_connect_answers_are_one_line_errors_naming_the_proxy(answer, message):
    with pytest.raises(P.ProxyError) as err:
        _tunnel(answer, creds="user:hunter2@")
    text = str(err.value)
    assert message in text and "127.0.0.1" in text and "HTTPS_PROXY" in text
    assert "hunter2" not in text and "\n" not in text and "\x1b" not in text


def test_connect_answer_is_bounded_by_one_deadline_not_per_read():
    """A proxy that drips its answer a byte at a time never times out a single read; the
    deadline covers connect + the whole CONNECT answer."""
    start = time.monotonic()
    with pytest.raises(P.ProxyError, match="no answer to CONNECT registry.example:443 within 1 s"):
        _tunnel(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n", timeout=1.0, piece=1, pause=0.05)
    assert time.monotonic() - start < 4      # 1 s deadline; a per-read timeout would take ~60 s


def test_plain_http_goes_to_the_proxy_in_absolute_form():
    server = ScriptedProxy(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    try:
        conn = Connection("registry.example:5000", False, 5.0)
        env = proxy_env(HTTP_PROXY=f"http://u:pw@127.0.0.1:{server.port}")
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            status, _, body = conn.request("GET", "/v2/", {"Authorization": "Bearer registry-token"})
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
            conn.close()
    finally:
        server.close()
    lines = server.received.decode().split("\r\n")
    assert (status, body) == (200, b"ok")
    assert lines[0] == "GET http://registry.example:5000/v2/ HTTP/1.1" and "Host: registry.example:5000" in lines
    assert "Proxy-Authorization: Basic dTpwdw==" in lines


# -- through a real squid --------------------------------------------------------------------------

from proxy_harness import (DENIED_NAME, GUARDED_NAME, NCSA_AUTH, REGISTRY_NAME, SQUID,  # noqa: E402
                           RecordingOrigin, Squid, free_port, make_named_tls)
from registry_harness import DISTRIBUTION, RunningRegistry, make_htpasswd, push_layout  # noqa: E402

needs_squid = pytest.mark.skipif(SQUID is None, reason="squid not installed (./dev setup installs it)")
needs_registry = pytest.mark.skipif(DISTRIBUTION is None, reason="docker-registry (distribution) not installed")


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    """The demo index in a plain-HTTP registry and a TLS one whose certificate names only
    registry.compat.test (pushed over plain HTTP first, then served over TLS)."""
    if DISTRIBUTION is None:
        pytest.skip("docker-registry (distribution) not installed")
    d = tmp_path_factory.mktemp("proxied")
    plain = RunningRegistry(d / "plain")
    push_layout(DEMO, plain.host, "hpc/lammps", "2024")
    staging = RunningRegistry(d / "tls")
    push_layout(DEMO, staging.host, "hpc/lammps", "2024")
    staging.stop()
    ca, cert, key = make_named_tls(d / "certs", REGISTRY_NAME, GUARDED_NAME)
    tls = RunningRegistry(d / "tls", tls=(cert, key))
    tls.ca = ca
    yield plain, tls
    plain.stop()
    tls.stop()


@pytest.fixture(scope="module")
def squid():
    """One squid for the module: it serves registry.compat.test, wants credentials for
    auth.compat.test, refuses denied.compat.test (all three are 127.0.0.1 to it only)."""
    if SQUID is None:
        pytest.skip("squid not installed (./dev setup installs it)")
    users = {"hpc user": "pr0xy pw"} if os.path.exists(NCSA_AUTH) else None
    s = Squid({name: "127.0.0.1" for name in (REGISTRY_NAME, GUARDED_NAME, DENIED_NAME)}, users=users,
              deny=[DENIED_NAME], guard=[GUARDED_NAME] if users else [])
    yield s
    s.stop()


def _ref(reg, name=REGISTRY_NAME):
    return f"{name}:{reg.port}/hpc/lammps:2024"


def _pinned(reg, name=REGISTRY_NAME):
    return f"{name}:{reg.port}/hpc/lammps@{cuda124_digest()}"


@needs_squid
@needs_registry
def test_the_registry_name_resolves_only_through_the_proxy(registries):
    plain, _ = registries
    proc = run_hostile("select", "--plain-http", "--timeout", "2", _ref(plain), *H100, env=proxy_env())
    assert proc.returncode == 2 and f"cannot reach {REGISTRY_NAME}:{plain.port}" in proc.stderr


@needs_squid
@needs_registry
def test_plain_http_registry_through_the_proxy(registries, squid):
    plain, _ = registries
    proc = run_compat("select", "--plain-http", _ref(plain), *H100, env=proxy_env(http_proxy=squid.url), check=0)
    assert proc.stdout.strip() == _pinned(plain)
    log = squid.log(wait_for=f"http://{REGISTRY_NAME}:{plain.port}/v2/hpc/lammps/manifests/2024")
    assert f"HEAD http://{REGISTRY_NAME}:{plain.port}/v2/hpc/lammps/manifests/2024 200" in "\n".join(log)


@needs_squid
@needs_registry
def test_tls_registry_through_connect(registries, squid):
    _, tls = registries
    proc = run_compat("select", _ref(tls), *H100, env=proxy_env(HTTPS_PROXY=squid.url, SSL_CERT_FILE=tls.ca),
                      check=0)
    assert proc.stdout.strip() == _pinned(tls)
    line = [x for x in squid.log(wait_for=f"CONNECT {REGISTRY_NAME}:{tls.port}")
            if x.startswith(f"CONNECT {REGISTRY_NAME}:{tls.port}")]
    assert line and line[0].endswith("200 user=- authorization=-"), line


@needs_squid
@needs_registry
def test_tls_through_the_tunnel_is_verified_against_the_registry_name(squid, tmp_path):
    """The tunnel ends at the proxy (127.0.0.1); the certificate is checked against the
    registry's name: test_tls_registry_through_connect passes with a certificate naming only
    registry.compat.test, and a trusted certificate for another name fails here."""
    ca, cert, key = make_named_tls(tmp_path, "other.compat.test")
    origin = RecordingOrigin(cert, key)
    try:
        proc = run_hostile("select", f"{REGISTRY_NAME}:{origin.port}/hpc/lammps:2024", *H100,
                           env=proxy_env(HTTPS_PROXY=squid.url, SSL_CERT_FILE=ca))
    finally:
        origin.stop()
    assert proc.returncode == 2 and "TLS failed" in proc.stderr and "Hostname mismatch" in proc.stderr
    assert origin.sni == [REGISTRY_NAME] and not origin.requests


@needs_squid
@needs_registry
@pytest.mark.parametrize("no_proxy,direct", [
    (".compat.test", True), ("other.test, REGISTRY.compat.test:{port}", True),
    ("ompat.test", False), ("registry.compat.test:1", False), ("127.0.0.1, 10.0.0.0/8", False)])
def test_no_proxy_sends_matching_registries_direct(registries, squid, no_proxy, direct):
    """Direct, the made-up name does not resolve (exit 2, nothing in the proxy's log);
    through the proxy, the select succeeds."""
    _, tls = registries
    env = proxy_env(https_proxy=squid.url, no_proxy=no_proxy.format(port=tls.port), SSL_CERT_FILE=tls.ca)
    before = len(squid.log())
    proc = run_hostile("select", "--timeout", "2", _ref(tls), *H100, env=env)
    if direct:
        assert proc.returncode == 2 and f"cannot reach {REGISTRY_NAME}" in proc.stderr
        assert not [x for x in squid.log()[before:] if REGISTRY_NAME in x]
    else:
        assert proc.returncode == 0 and proc.stdout.strip() == _pinned(tls)


@needs_squid
@needs_registry
def test_loopback_registries_are_never_proxied(registries):
    plain, _ = registries
    dead = f"http://127.0.0.1:{free_port()}"
    for host in (plain.host, f"localhost:{plain.port}"):
        proc = run_compat("select", f"{host}/hpc/lammps:2024", *H100,
                          env=proxy_env(HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead), check=0)
        assert proc.stdout.strip().endswith(cuda124_digest())


needs_auth_helper = pytest.mark.skipif(not os.path.exists(NCSA_AUTH), reason=f"squid's {NCSA_AUTH} missing")


@needs_squid
@needs_registry
@needs_auth_helper
def test_proxy_credentials_from_the_proxy_url(registries, squid):
    _, tls = registries
    url = squid.url.replace("http://", "http://hpc%20user:pr0xy%20pw@")
    proc = run_compat("select", _ref(tls, GUARDED_NAME), *H100, env=proxy_env(HTTPS_PROXY=url, SSL_CERT_FILE=tls.ca),
                      check=0)
    assert proc.stdout.strip() == _pinned(tls, GUARDED_NAME)
    log = squid.log(wait_for=f"CONNECT {GUARDED_NAME}:{tls.port} 200")
    assert any(x.startswith(f"CONNECT {GUARDED_NAME}:{tls.port} 200 user=hpc user") for x in log), log


@needs_squid
@needs_registry
@needs_auth_helper
@pytest.mark.parametrize("userinfo,why", [("hpc%20user:wrong-pw@", "refused the credentials"),
                                          ("", "wants credentials")])
def test_proxy_refusing_credentials_is_407_naming_the_proxy(registries, squid, userinfo, why):
    """Through CONNECT (https) and as a forwarding proxy (plain http) alike."""
    _, tls = registries
    url = squid.url.replace("http://", f"http://{userinfo}")
    for flag, var in (([], "HTTPS_PROXY"), (["--plain-http"], "HTTP_PROXY")):
        proc = run_hostile("select", *flag, _ref(tls, GUARDED_NAME), *H100, env=proxy_env(**{var: url}))
        assert proc.returncode == 2, proc.stderr
        assert f"proxy {squid.url} (from {var})" in proc.stderr and "407" in proc.stderr and why in proc.stderr
        assert "wrong-pw" not in proc.stderr


@needs_squid
def test_proxy_that_denies_is_403_naming_the_proxy(squid):
    url = squid.url.replace("http://", "http://someone:s3cret@")
    proc = run_hostile("select", f"{DENIED_NAME}:5000/hpc/lammps:2024", *H100, env=proxy_env(HTTPS_PROXY=url))
    assert proc.returncode == 2
    assert f"proxy {squid.url} (from HTTPS_PROXY) refused CONNECT to {DENIED_NAME}:5000: 403" in proc.stderr
    assert "s3cret" not in proc.stderr


def test_proxy_that_is_not_there_is_one_line_naming_it():
    url = f"http://admin:s3cret@127.0.0.1:{free_port()}"
    proc = run_hostile("select", "registry.example.org/hpc/lammps:2024", *H100, env=proxy_env(https_proxy=url))
    assert proc.returncode == 2
    assert f"cannot reach proxy {url.replace('admin:s3cret@', '')} (from https_proxy)" in proc.stderr
    assert "s3cret" not in proc.stderr


def test_proxy_that_never_answers_is_bounded_by_the_timeout():
    """A proxy that accepts the connection (the kernel's backlog) and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = run_hostile("select", "--timeout", "1", "registry.example.org/hpc/lammps:2024", *H100,
                           env=proxy_env(HTTPS_PROXY=url))
    assert proc.returncode == 2 and "no answer to CONNECT registry.example.org:443 within 1 s" in proc.stderr


@pytest.mark.parametrize("env,message", [
    ({"HTTPS_PROXY": "socks5://127.0.0.1:1080"}, "socks5:// proxies are not supported"),
    ({"HTTPS_PROXY": "https://127.0.0.1:3128"}, "https:// proxies are not supported"),
    ({"HTTPS_PROXY": "http://u:secret@proxy:70000"}, "invalid port"),
    ({"HTTP_PROXY": "http://127.0.0.1:3128", "REQUEST_METHOD": "GET"}, "refusing to use HTTP_PROXY"),
])
def test_unusable_proxy_settings_are_one_line_errors(env, message):
    args = ["--plain-http"] if "HTTP_PROXY" in env else []
    proc = run_hostile("select", *args, "registry.example.org/hpc/lammps:2024", *H100, env=proxy_env(**env))
    assert proc.returncode == 2 and message in proc.stderr and "secret" not in proc.stderr


@needs_squid
@needs_registry
def test_credentials_go_only_where_they_belong(tmp_path, squid):
    """Through the tunnel the registry gets its own Authorization (never Proxy-Authorization)
    and the SNI of its name; the proxy's CONNECT carries no Authorization."""
    ca, cert, key = make_named_tls(tmp_path / "certs", REGISTRY_NAME)
    origin = RecordingOrigin(cert, key)
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {f"{REGISTRY_NAME}:{origin.port}": {"username": "alice",
                                                                           "password": "registry-pw"}}}))
    url = squid.url.replace("http://", "http://proxyuser:proxy-pw@")
    try:
        proc = run_hostile("select", f"{REGISTRY_NAME}:{origin.port}/hpc/lammps:2024", *H100,
                           env=proxy_env(HTTPS_PROXY=url, SSL_CERT_FILE=ca, REGISTRY_AUTH_FILE=str(auth),
                                         HOME="/nonexistent"))
    finally:
        origin.stop()
    assert proc.returncode == 2 and "not found" in proc.stderr
    assert origin.sni and set(origin.sni) == {REGISTRY_NAME}
    assert any("authorization" in h for _, _, h in origin.requests)
    assert not any("proxy-authorization" in h for _, _, h in origin.requests)
    connects = [x for x in squid.log(wait_for=f"CONNECT {REGISTRY_NAME}:{origin.port}")
                if x.startswith(f"CONNECT {REGISTRY_NAME}:{origin.port}")]
    assert connects and all(x.endswith("authorization=-") for x in connects)
