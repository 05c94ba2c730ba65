"""A minimal HTTP/1.1 client connection: what the registry client needs, nothing more.

Why not ``http.client``: importing it pulls in the ``email`` package and ``ssl`` (about
25 ms per process), which a scheduler calling ``compat select`` per job pays every time.
This speaks HTTP/1.1 with keep-alive, ``Content-Length`` and chunked bodies, and wraps
TLS only when the scheme is https.

The peer is not trusted (spec/oci.md, "Hostile registries"): the framing is validated
(status line, header names, counts and sizes, ``Content-Length``, chunk sizes and trailers),
every body is read up to the limit its caller names, and every socket operation is bounded
by one :class:`Deadline` for the whole request (connect, headers and body), so a peer that
trickles a byte at a time gains nothing.
"""
from __future__ import annotations

import errno
import os
import re
import select
import socket
import time

from compat import limits
from compat.oci import proxy as _proxy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional, Tuple

MAX_HEADER_BYTES = limits.HTTP_HEADER_BYTES
MAX_BODY_BYTES = limits.MANIFEST_BYTES          # the default limit of a bounded read
_WAIT_SLICE_S = 0.5                             # socket waits are cut in slices to report progress
_STATUS_RE = re.compile(rb"^HTTP/1\.[0-9] ([1-5][0-9][0-9])(?: [^\r\n]*)?\r?\n$")
_TOKEN_RE = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_CHUNK_RE = re.compile(rb"^([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n$")
_LENGTH_RE = re.compile(r"^[0-9]{1,18}$")
_UNSAFE = re.compile(r"[\x00\r\n]")


class ProtocolError(Exception):
    """The peer's answer is not HTTP/1.x as we understand it."""


class BodyTooLarge(ProtocolError):
    """A body over the limit its caller named: not worth a retry."""


class UnsafeRequest(ValueError):
    """A request line or header value compat would send holds CR, LF or NUL, or a character
    that is not latin-1 (header injection): refused before anything is sent."""


class Deadline:
    """The time budget of a piece of network work. The clock starts at the first use, so a
    deadline created with a client costs nothing until the client talks. ``on_wait`` is
    called with the seconds waited so far each time a socket wait slice passes idle."""

    def __init__(self, seconds: float, on_wait: Optional[Callable[[float], None]] = None):
        self.seconds = float(seconds)
        self.on_wait = on_wait
        self._end: Optional[float] = None
        self._waiting_since: Optional[float] = None

    def start(self) -> None:
        if self._end is None:
            self._end = time.monotonic() + self.seconds

    def remaining(self) -> float:
        self.start()
        return self._end - time.monotonic()

    def slice(self) -> float:
        """The timeout of the next socket wait; socket.timeout once the budget is spent."""
        left = self.remaining()
        if left <= 0:
            raise socket.timeout("deadline")
        return min(left, _WAIT_SLICE_S)

    def idle(self) -> None:
        """A wait slice passed with nothing received."""
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now - _WAIT_SLICE_S
        if self.on_wait is not None:
            self.on_wait(now - self._waiting_since)

    def progressed(self) -> None:
        self._waiting_since = None


def split_netloc(netloc: str, https: bool) -> Tuple[str, int]:
    """``host[:port]`` or ``[v6]:port`` -> (host, port); ProtocolError on a bad port."""
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif netloc.count(":") == 1:
        host, port = netloc.split(":")
    else:
        host, port = netloc, ""
    if not port:
        return host, 443 if https else 80
    if not _LENGTH_RE.match(port) or not 1 <= int(port) <= 65535:
        raise UnsafeRequest(f"bad port {port[:20]!r}")
    return host, int(port)


def _open_socket(host: str, port: int, deadline: Deadline) -> socket.socket:
    """A connected TCP socket to host:port within the deadline (the one place a socket is
    opened: a proxy hook goes here)."""
    err: Optional[OSError] = None
    # an ASCII name goes as bytes: a str loads the IDNA codec (~5 ms) to encode it
    name = host.encode("ascii") if host.isascii() else host
    for family, kind, proto, _, addr in socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(addr)
            while code in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
                _, ready, _ = select.select([], [sock], [], deadline.slice())
                if ready:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    break
                deadline.idle()
            if code:
                raise OSError(code, os.strerror(code))
            deadline.progressed()
            sock.setblocking(True)
            return sock
        except OSError as exc:
            sock.close()
            if isinstance(exc, socket.timeout):
                raise
            err = exc
    raise err or OSError("no address")


def _handshake(sock, deadline: Deadline) -> None:
    """The TLS handshake in deadline slices, so a stalled one is reported like any other wait
    (the notice on a terminal) and ends with the deadline."""
    import ssl          # start-up: ssl (and its CA loading) only for an https registry

    sock.setblocking(False)
    try:
        while True:
            try:
                sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                ready = select.select([sock], [], [], deadline.slice())[0]
            except ssl.SSLWantWriteError:
                ready = select.select([], [sock], [], deadline.slice())[1]
            if ready:
                deadline.progressed()
            else:
                deadline.idle()
    finally:
        sock.setblocking(True)


class _Reader:
    """Buffered reads from a socket, each wait bounded by the deadline."""

    def __init__(self, sock, deadline: Deadline):
        self.sock, self.deadline = sock, deadline
        self.buf = bytearray()

    def _fill(self) -> bool:
        while True:
            self.sock.settimeout(self.deadline.slice())
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                self.deadline.idle()
                continue
            self.deadline.progressed()
            self.buf += data
            return bool(data)

    def line(self, limit: int, what: str = "header line") -> bytes:
        """One line with its ending; b"" at EOF; ProtocolError past ``limit`` bytes."""
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                if i + 1 > limit:
                    break
                out = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return out
            if len(self.buf) > limit:
                break
            start = len(self.buf)
            if not self._fill():
                out = bytes(self.buf)
                self.buf.clear()
                return out
        raise ProtocolError(f"{what} too long")

    def some(self, n: int) -> bytes:
        """Up to ``n`` bytes (at least one unless EOF)."""
        if not self.buf and not self._fill():
            return b""
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def exact(self, n: int, what: str) -> bytes:
        parts, left = [], n
        while left:
            data = self.some(min(left, 1 << 20))
            if not data:
                raise ProtocolError(f"closed by peer in the middle of {what}")
            parts.append(data)
            left -= len(data)
        return b"".join(parts)


class Stream:
    """A file-like reader (``read``, ``close``) usable as a context manager; what tarfile and
    gzip need of a stream (``readable``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def readable(self) -> bool:
        return True


class Body(Stream):
    """A response body being read: ``read(n)`` (``-1``: all, up to the limit), ``close()``, a
    context manager. Framing errors and the limit raise ProtocolError, the deadline
    socket.timeout. ``on_close`` tells the connection whether it may be reused."""

    def __init__(self, reader: _Reader, framing: str, length: int, limit: Optional[int],
                 on_close: Callable[[bool], None]):
        self._r = reader
        self._framing = framing          # "length", "chunked", "close", "none"
        self._left = length if framing == "length" else 0
        self._limit = limit
        self._total = 0
        self._done = framing == "none" or (framing == "length" and length == 0)
        self._on_close = on_close
        self._closed = False

    def set_limit(self, limit: int) -> None:
        """Bound the body (once the status says what it is); BodyTooLarge at once when its
        Content-Length already says more."""
        self._limit = limit
        if self._framing == "length" and self._left + self._total > limit:
            raise BodyTooLarge(f"body of {self._left + self._total} bytes is over the {limit}-byte limit")

    def _count(self, n: int) -> None:
        self._total += n
        if self._limit is not None and self._total > self._limit:
            raise BodyTooLarge(f"body over the {self._limit}-byte limit")

    def _next_chunk(self) -> None:
        line = self._r.line(limits.HTTP_CHUNK_LINE_BYTES, "chunk-size line")
        if not line:
            raise ProtocolError("closed by peer in a chunked body")
        m = _CHUNK_RE.match(line)
        if not m:
            raise ProtocolError("bad chunk size")
        self._left = int(m.group(1), 16)
        if self._left == 0:
            _read_fields(self._r, "trailers")
            self._done = True

    def _end_of_chunk(self) -> None:
        if self._r.exact(2, "a chunk") != b"\r\n":
            raise ProtocolError("no CRLF after a chunk")

    def read(self, n: int = -1) -> bytes:
        if self._closed:
            raise ValueError("read of a closed body")
        if n is None or n < 0:
            parts = []
            while True:
                data = self.read(1 << 20)
                if not data:
                    return b"".join(parts)
                parts.append(data)
        if self._done or n == 0:
            return b""
        if self._framing == "chunked" and self._left == 0:
            self._next_chunk()
            if self._done:
                return b""
        if self._framing == "close":
            data = self._r.some(n)
            if not data:
                self._done = True
                return b""
        else:
            data = self._r.some(min(n, self._left))
            if not data:
                raise ProtocolError("closed by peer in the middle of a body")
            self._left -= len(data)
            if self._left == 0:
                if self._framing == "length":
                    self._done = True
                else:
                    self._end_of_chunk()
        self._count(len(data))
        return data

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close(self._done and self._framing != "close")


def _check_fields(fields: Dict[str, str], target: str) -> None:
    for value in [target, *fields, *fields.values()]:
        if _UNSAFE.search(value):
            raise UnsafeRequest("a header or request line holds CR, LF or NUL")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise UnsafeRequest("a header or request line holds a character that is not latin-1") from None
    if " " in target:
        raise UnsafeRequest("a request target holds a space")


def _read_fields(reader: _Reader, what: str) -> Dict[str, str]:
    """Header (or trailer) fields up to the empty line, bounded in count and total size."""
    fields: Dict[str, str] = {}
    size = count = 0
    while True:
        line = reader.line(MAX_HEADER_BYTES)
        size += len(line)
        if size > MAX_HEADER_BYTES:
            raise ProtocolError(f"{what} too large")
        if line in (b"\r\n", b"\n"):
            return fields
        if not line:
            raise ProtocolError(f"closed by peer in the {what}")
        count += 1
        if count > limits.HTTP_HEADER_COUNT:
            raise ProtocolError(f"more than {limits.HTTP_HEADER_COUNT} {what}")
        key, sep, value = line.partition(b":")
        if not sep or not _TOKEN_RE.match(key):
            raise ProtocolError(f"bad header line {line[:60]!r}")
        k = key.decode("ascii").lower()
        v = value.strip().decode("latin-1")
        fields[k] = f"{fields[k]}, {v}" if k in fields else v


def _framing(method: str, status: int, headers: Dict[str, str]) -> Tuple[str, int]:
    if method == "HEAD" or status in (204, 304):
        return "none", 0
    te = headers.get("transfer-encoding")
    if te is not None:
        codings = [c.strip().lower() for c in te.split(",")]
        if codings[-1] != "chunked" or any(c not in ("chunked", "identity") for c in codings):
            raise ProtocolError(f"unsupported Transfer-Encoding {te[:40]!r}")
        return "chunked", 0
    if "content-length" in headers:
        values = {v.strip() for v in headers["content-length"].split(",")}
        if len(values) != 1 or not _LENGTH_RE.match(next(iter(values))):
            raise ProtocolError("bad Content-Length")
        return "length", int(values.pop())
    return "close", 0


class Connection:
    def __init__(self, netloc: str, https: bool, timeout: float = 10.0, ssl_context=None):
        self.host, self.port = split_netloc(netloc, https)
        self.netloc = netloc
        self.https = https
        self.timeout = timeout          # the budget of a request when no deadline is given
        self.ssl_context = ssl_context
        self._sock = None
        self._reader: Optional[_Reader] = None
        self._busy = False              # a streamed body is still open
        self.handshake_s: Optional[float] = None    # a bound of the TLS handshake, within the deadline
        self.proxy = None               # the proxy of the open socket (compat.oci.proxy), or None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = self._reader = None
        self._busy = False

    def _open(self, deadline: Deadline):
        self.proxy = _proxy.route(self.host, self.port, self.https)
        if self.proxy is not None:          # a tunnel for https, the proxy itself for http
            sock = _proxy.open_socket(self.proxy, self.host, self.port, self.https, deadline, _open_socket)
        else:
            sock = _open_socket(self.host, self.port, deadline)
        if self.https:
            # start-up: ssl (~10 ms) loads only for HTTPS
            import ssl

            ctx = self.ssl_context or ssl.create_default_context()
            try:
                sock = ctx.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
                bound = self.handshake_s
                _handshake(sock, deadline if bound is None else Deadline(min(bound, deadline.remaining())))
            except Exception:
                sock.close()
                raise
        self._sock = sock
        self._reader = _Reader(sock, deadline)

    def request(self, method: str, target: str, headers: Dict[str, str],
                body: Optional[bytes] = None, limit: int = MAX_BODY_BYTES,
                deadline: Optional[Deadline] = None) -> Tuple[int, Dict[str, str], bytes]:
        """(status, lower-cased headers, body of at most ``limit`` bytes)."""
        status, fields, stream = self.open(method, target, headers, body, limit, deadline)
        try:
            data = stream.read()
        except Exception:
            self.close()
            raise
        stream.close()
        return status, fields, data

    def open(self, method: str, target: str, headers: Dict[str, str], body: Optional[bytes] = None,
             limit: Optional[int] = None, deadline: Optional[Deadline] = None) -> Tuple[int, Dict[str, str], Body]:
        """(status, lower-cased headers, :class:`Body`). A reused connection that died is
        reopened once. The connection is busy until the body is closed."""
        _check_fields(headers, target)
        deadline = deadline or Deadline(self.timeout)
        if self._busy:
            self.close()
        for attempt in (0, 1):
            fresh = self._sock is None
            if fresh:
                self._open(deadline)
            self._reader.deadline = deadline
            try:
                self._send(method, target, headers, body, deadline)
                status, fields = self._head()
                framing, length = _framing(method, status, fields)
                if framing == "length" and limit is not None and length > limit:
                    raise BodyTooLarge(f"body of {length} bytes is over the {limit}-byte limit")
                if self.proxy is not None and not self.https:   # a 407 is the proxy's
                    _proxy.check_answer(self.proxy, status)
            except (ConnectionError, ProtocolError) as exc:
                self.close()
                if fresh or attempt or (isinstance(exc, ProtocolError) and not exc.args[0].startswith("closed")):
                    raise
                continue
            except BaseException:
                self.close()
                raise
            keep = fields.get("connection", "").lower() != "close"
            self._busy = True
            return status, fields, Body(self._reader, framing, length, limit,
                                        lambda done, keep=keep: self._release(done and keep))
        raise ProtocolError("unreachable")

    def _release(self, reusable: bool) -> None:
        if reusable:
            self._busy = False
        else:
            self.close()

    def _send(self, method, target, headers, body, deadline: Deadline):
        if self.proxy is not None and not self.https:       # absolute form to the proxy
            target, headers = _proxy.forward(self.proxy, self.netloc, target, headers)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        elif method in ("PUT", "POST", "PATCH"):
            lines.append("Content-Length: 0")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._sock.settimeout(max(deadline.remaining(), 0.001))
        self._sock.sendall(data + (body or b""))

    def _head(self) -> Tuple[int, Dict[str, str]]:
        for _ in range(limits.HTTP_INTERIM_RESPONSES + 1):
            line = self._reader.line(MAX_HEADER_BYTES)
            if not line:
                raise ProtocolError("closed by peer before a status line")
            m = _STATUS_RE.match(line)
            if not m:
                raise ProtocolError(f"bad status line {line[:60]!r}")
            status = int(m.group(1))
            fields = _read_fields(self._reader, "headers")
            if status >= 200:
                return status, fields
        raise ProtocolError(f"more than {limits.HTTP_INTERIM_RESPONSES} interim (1xx) answers")
