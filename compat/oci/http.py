"""A minimal HTTP/1.1 client connection: what the registry client needs, nothing more.

Why not ``http.client``: importing it pulls in the ``email`` package and ``ssl`` (about
25 ms per process), which a scheduler calling ``compat select`` per job pays every time.
This speaks HTTP/1.1 with keep-alive, ``Content-Length`` and chunked bodies, and wraps
TLS only when the scheme is https.
"""
from __future__ import annotations

import socket
from typing import Dict, Optional, Tuple

from compat.oci import proxy as _proxy

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


class ProtocolError(Exception):
    """The peer's answer is not HTTP/1.x as we understand it."""


class Connection:
    def __init__(self, netloc: str, https: bool, timeout: float, ssl_context=None):
        if netloc.startswith("["):                 # [::1]:5000
            host, _, rest = netloc[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        elif netloc.count(":") == 1:
            host, port = netloc.split(":")
        else:
            host, port = netloc, ""
        self.host = host
        self.port = int(port) if port else (443 if https else 80)
        self.netloc = netloc
        self.https = https
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._sock = None
        self._file = None
        self.proxy = None           # the proxy of the open socket (compat.oci.proxy), or None

    def close(self) -> None:
        for obj in (self._file, self._sock):
            if obj is not None:
                try:
                    obj.close()
                except OSError:
                    pass
        self._sock = self._file = None

    def _open(self):
        self.proxy = _proxy.route(self.host, self.port, self.https)
        if self.proxy is not None:          # a tunnel for https, the proxy itself for http
            sock = _proxy.open_socket(self.proxy, self.host, self.port, self.https, self.timeout)
        else:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self.https:
            import ssl

            ctx = self.ssl_context or ssl.create_default_context()
            try:
                sock = ctx.wrap_socket(sock, server_hostname=self.host)
            except Exception:
                sock.close()
                raise
        self._sock = sock
        self._file = sock.makefile("rb")

    def request(self, method: str, target: str, headers: Dict[str, str],
                body: Optional[bytes] = None) -> Tuple[int, Dict[str, str], bytes]:
        """(status, lower-cased headers, body). A reused connection that died is reopened once."""
        for attempt in (0, 1):
            fresh = self._sock is None
            if fresh:
                self._open()
            try:
                self._send(method, target, headers, body)
                answer = self._read(method)
                if self.proxy is not None and not self.https:   # a 407 is the proxy's
                    _proxy.check_answer(self.proxy, answer[0])
                return answer
            except (ConnectionError, ProtocolError) as exc:
                self.close()
                if fresh or attempt or (isinstance(exc, ProtocolError) and not exc.args[0].startswith("closed")):
                    raise
            except Exception:
                self.close()
                raise
        raise ProtocolError("unreachable")

    def _send(self, method, target, headers, body):
        if self.proxy is not None and not self.https:       # absolute form to the proxy
            target, headers = _proxy.forward(self.proxy, self.netloc, target, headers)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.netloc}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        elif method in ("PUT", "POST", "PATCH"):
            lines.append("Content-Length: 0")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._sock.sendall(data + (body or b""))

    def _line(self) -> bytes:
        line = self._file.readline(MAX_HEADER_BYTES + 1)
        if len(line) > MAX_HEADER_BYTES:
            raise ProtocolError("header line too long")
        return line

    def _read(self, method: str):
        while True:
            status_line = self._line()
            if not status_line:
                raise ProtocolError("closed by peer before a status line")
            parts = status_line.decode("latin-1").split(None, 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError(f"bad status line {status_line[:60]!r}")
            status = int(parts[1])
            headers: Dict[str, str] = {}
            size = 0
            while True:
                line = self._line()
                size += len(line)
                if size > MAX_HEADER_BYTES:
                    raise ProtocolError("headers too large")
                if line in (b"\r\n", b"\n", b""):
                    break
                key, sep, value = line.decode("latin-1").partition(":")
                if not sep:
                    raise ProtocolError(f"bad header line {line[:60]!r}")
                k = key.strip().lower()
                v = value.strip()
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
            if 100 <= status < 200:
                continue            # 100 Continue and friends: the real answer follows
            break
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked()
        elif "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                raise ProtocolError("bad Content-Length") from None
            if n > MAX_BODY_BYTES:
                raise ProtocolError(f"body of {n} bytes is over the {MAX_BODY_BYTES} limit")
            body = self._file.read(n)
            if len(body) != n:
                raise ProtocolError("closed by peer in the middle of a body")
        else:
            body = self._file.read(MAX_BODY_BYTES)
            self.close()
            return status, headers, body
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _chunked(self) -> bytes:
        out = []
        total = 0
        while True:
            line = self._line()
            if not line:
                raise ProtocolError("closed by peer in a chunked body")
            try:
                n = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise ProtocolError("bad chunk size") from None
            if n == 0:
                while self._line() not in (b"\r\n", b"\n", b""):
                    pass            # trailers
                return b"".join(out)
            total += n
            if total > MAX_BODY_BYTES:
                raise ProtocolError("chunked body over the limit")
            chunk = self._file.read(n)
            if len(chunk) != n:
                raise ProtocolError("closed by peer in a chunk")
            out.append(chunk)
            self._file.read(2)
