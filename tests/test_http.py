"""The minimal HTTP/1.1 client against a scripted peer: chunked bodies, keep-alive reuse,
a dead kept-alive connection, 100 Continue, malformed answers."""
import socket
import threading

import pytest

from compat.oci.http import Connection, ProtocolError


def serve(responses):
    """A one-connection-at-a-time peer that answers each request with the next canned bytes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    requests = []

    def loop():
        queue = list(responses)
        while queue:
            conn, _ = srv.accept()
            with conn:
                while queue:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data:
                        break
                    requests.append(data)
                    answer = queue.pop(0)
                    if answer is None:          # drop the connection without answering
                        break
                    conn.sendall(answer)
        srv.close()

    threading.Thread(target=loop, daemon=True).start()
    return f"127.0.0.1:{srv.getsockname()[1]}", requests


def test_chunked_body_and_keepalive_reuse():
    netloc, reqs = serve([
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nDocker-Content-Digest: sha256:x\r\n\r\nnop",
    ])
    c = Connection(netloc, False, 5)
    assert c.request("GET", "/a", {}) == (200, {"transfer-encoding": "chunked"}, b"hello world")
    status, headers, body = c.request("GET", "/b", {})
    assert (status, body, headers["docker-content-digest"]) == (404, b"nop", "sha256:x")
    assert len(reqs) == 2 and reqs[1].startswith(b"GET /b HTTP/1.1\r\nHost: " + netloc.encode())
    c.close()


def test_head_has_no_body_and_100_continue_is_skipped():
    netloc, _ = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
                       b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"])
    c = Connection(netloc, False, 5)
    assert c.request("HEAD", "/", {})[0:2] == (200, {"content-length": "1234"})
    assert c.request("PUT", "/", {}, b"data")[0] == 201


def test_dead_kept_alive_connection_is_reopened_once():
    netloc, reqs = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", None,
                          b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"])
    c = Connection(netloc, False, 5)
    assert c.request("GET", "/1", {})[2] == b"a"
    assert c.request("GET", "/2", {})[2] == b"b"     # the peer dropped the first connection


# -- hostile framing (each answer from a scripted peer on 127.0.0.1) -----------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from compat import limits  # noqa: E402
from compat.oci.http import BodyTooLarge, Deadline, UnsafeRequest, _Reader  # noqa: E402

CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("answer,needle", [
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "bad status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "middle of a body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
    (CHUNKED + b"-1\r\n" + b"x" * 100, "bad chunk size"),            # read to EOF before
    (CHUNKED + b"+5\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
    (CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
    (CHUNKED + b"5_0\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
    (CHUNKED + b"5\r\nhelloXX0\r\n\r\n", "CRLF after a chunk"),
    (CHUNKED + b"F" * 5000 + b"\r\n", "too long"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n" + b"x" * 100, "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 headers"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n", "too long"),
    (CHUNKED + b"0\r\n" + b"T: " + b"v" * 1000 + b"\r\n" * 1 + b"T: x\r\n" * 99, "trailers"),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 9 + b"HTTP/1.1 200 OK\r\n\r\n", "interim"),
    (b"HTTP/1.1 999 Nope\r\n\r\n", "bad status line"),
    (b"HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n", "bad header line"),
])
def test_malformed_and_hostile_framing_is_a_protocol_error(answer, needle):
    netloc, _ = serve([answer])
    with pytest.raises(ProtocolError, match=needle):
        Connection(netloc, False, 5).request("GET", "/", {})


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n",                             # refused before reading
    CHUNKED + b"40\r\n" + b"x" * 64 + b"\r\n40\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 101,                  # body until close
])
def test_bodies_are_bounded_by_their_limit(answer):
    netloc, _ = serve([answer])
    with pytest.raises(BodyTooLarge):
        Connection(netloc, False, 5).request("GET", "/", {}, limit=100)


@pytest.mark.parametrize("headers,target", [
    ({"Authorization": "Bearer abc\r\nX-Injected: 1"}, "/"),
    ({"Authorization": "Bearer abc\nX-Injected: 1"}, "/"),
    ({"Authorization": "Bearer a\x00b"}, "/"),
    ({"Authorization": "Bearer t\u00f6k\u20ac"}, "/"),          # not latin-1
    ({}, "/v2/x HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /"),
    ({}, "/a b"),
])
def test_unsafe_request_is_refused_before_sending(headers, target):
    netloc, reqs = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    with pytest.raises(UnsafeRequest):
        Connection(netloc, False, 5).request("GET", target, headers)
    assert reqs == []


@pytest.mark.parametrize("netloc", ["127.0.0.1:abc", "127.0.0.1:0", "127.0.0.1:65536", "[::1]:-1"])
def test_bad_port_is_refused(netloc):
    with pytest.raises(UnsafeRequest, match="port"):
        Connection(netloc, False, 5)


class _OneConnection(Connection):
    """A connection over a given socket; there is no second one to open."""

    def _open(self, deadline):
        raise ProtocolError("no second connection")


def _through_socketpair(data: bytes, limit: int, method="GET"):
    """The response parser on ``data`` (then EOF), without a network."""
    import socket as _s

    a, b = _s.socketpair()
    try:
        b.sendall(data)
        b.shutdown(_s.SHUT_WR)
        c = _OneConnection("peer:1", False, 5)
        c._sock, c._reader = a, _Reader(a, Deadline(5))
        return c.request(method, "/", {}, limit=limit)
    finally:
        a.close()
        b.close()


_PIECES = st.sampled_from([b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 404 X\r\n", b"HTTP/1.1 100 Continue\r\n",
                           b"Content-Length: 5\r\n", b"Content-Length: -1\r\n", b"Content-Length: 1x\r\n",
                           b"Transfer-Encoding: chunked\r\n", b"Connection: close\r\n", b"\r\n", b"\n",
                           b"5\r\nhello\r\n", b"-1\r\n", b"ffffffff\r\n", b"0\r\n", b"T: x\r\n", b"a;b=c\r\n",
                           b"hello", b"\x00\xff", b" x: y\r\n"])


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=300), st.lists(_PIECES, max_size=14).map(b"".join)),
       st.integers(min_value=0, max_value=64))
def test_response_parser_gives_a_response_or_protocol_error(data, limit):
    try:
        status, headers, body = _through_socketpair(data, limit)
    except ProtocolError:
        return
    assert 200 <= status <= 599 and isinstance(headers, dict)
    assert len(body) <= limit                      # never past the bound


def test_trickled_headers_are_bounded_by_the_deadline():
    """One byte every 0.05 s would take 10 s for these headers; the deadline is 1 s."""
    import time

    from registry_harness import ScriptedServer, trickle

    with ScriptedServer(lambda *a: trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: y\r\n" * 20, 0.05)) as srv:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            Connection(srv.host, False, 1.0).request("GET", "/", {})
        assert time.monotonic() - start < 3


def test_endless_trailers_end_by_size_or_deadline():
    import time

    from registry_harness import ScriptedServer, trickle

    with ScriptedServer(lambda *a: trickle(CHUNKED + b"0\r\n" + b"T: x\r\n" * 100000, 0.001)) as srv:
        start = time.monotonic()
        with pytest.raises((TimeoutError, ProtocolError)):
            Connection(srv.host, False, 1.0).request("GET", "/", {})
        assert time.monotonic() - start < 3
    assert limits.HTTP_HEADER_COUNT == 100


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.binary(min_size=1, max_size=40), max_size=8), st.integers(min_value=0, max_value=200),
       st.booleans())
def test_chunked_bodies_decode_exactly_or_stop_at_the_limit(chunks, limit, upper):
    framed = b"".join((b"%X" if upper else b"%x") % len(c) + b";e=1\r\n" + c + b"\r\n" for c in chunks)
    data = CHUNKED + framed + b"0\r\nT: v\r\n\r\n"
    whole = b"".join(chunks)
    if len(whole) > limit:
        with pytest.raises(BodyTooLarge):
            _through_socketpair(data, limit)
    else:
        assert _through_socketpair(data, limit)[2] == whole
