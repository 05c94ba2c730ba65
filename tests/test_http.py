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


@pytest.mark.parametrize("answer,needle", [
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "bad status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "middle of a body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
])
def test_malformed_answers_raise_protocol_error(answer, needle):
    netloc, _ = serve([answer])
    with pytest.raises(ProtocolError, match=needle):
        Connection(netloc, False, 5).request("GET", "/", {})
