"""HTTP(S) proxies for the registry client, from the environment, as Go's net/http does.

Which proxy: ``HTTPS_PROXY`` for https, ``HTTP_PROXY`` for http (each upper case first, then
lower case; an empty value counts as unset), then ``ALL_PROXY`` (curl's fallback; Go has
none). Which hosts go direct: ``localhost`` and loopback addresses always, then whatever
``NO_PROXY`` matches, with the rules of ``golang.org/x/net/http/httpproxy`` (``useProxy``).
How: plain HTTP in absolute form to the proxy; HTTPS through a ``CONNECT`` tunnel, TLS to
the registry inside it. Proxy credentials come from the proxy URL and go only to the proxy.
spec/oci.md, section "Proxies", lists the rules and where compat differs from Go and curl.

``route()`` is what the connection code asks; the rest is its parts, testable alone.
"""
from __future__ import annotations

import os
import re
import socket
import time

from compat import limits
from compat.errors import RegistryError, printable
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional, Tuple

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080}
_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class ProxyError(RegistryError):
    """A proxy is set but cannot be used: unparsable, unsupported, unreachable, or refusing.
    Final (never retried); the message names the proxy without its credentials."""


# -- the environment -------------------------------------------------------------------------------

def _first(env: Mapping[str, str], *names: str) -> Tuple[str, str]:
    """(value, name) of the first non-empty variable, as Go's getEnvAny."""
    for name in names:
        value = env.get(name, "")
        if value:
            return value, name
    return "", ""


class Settings(Record):
    """The proxy variables of one environment (each value with the name it came from)."""
    http: Tuple[str, str]
    https: Tuple[str, str]
    all: Tuple[str, str]
    no_proxy: str
    cgi: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        return cls(http=_first(env, "HTTP_PROXY", "http_proxy"),
                   https=_first(env, "HTTPS_PROXY", "https_proxy"),
                   all=_first(env, "ALL_PROXY", "all_proxy"),
                   no_proxy=_first(env, "NO_PROXY", "no_proxy")[0],
                   cgi=bool(env.get("REQUEST_METHOD")))


# -- proxy URLs ------------------------------------------------------------------------------------

class Proxy(Record):
    scheme: str
    host: str                       # without brackets
    port_text: str                  # as written ("" when absent)
    username: Optional[str]
    password: Optional[str]
    origin: str                     # the variable it came from

    @property
    def port(self) -> int:
        return int(self.port_text) if self.port_text else _DEFAULT_PORTS.get(self.scheme, 80)

    def __str__(self) -> str:
        """The URL without credentials: what messages show."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + (f":{self.port_text}" if self.port_text else "")

    @property
    def named(self) -> str:
        return printable(f"{self} (from {self.origin})" if self.origin else str(self))

    def authorization(self) -> Optional[str]:
        """The ``Proxy-Authorization`` value, or None without credentials in the URL."""
        if self.username is None:
            return None
        import base64   # start-up: base64 loads only for a proxy with credentials

        pair = f"{self.username}:{self.password or ''}".encode("utf-8")
        return "Basic " + base64.b64encode(pair).decode("ascii")


def parse_proxy(value: str, origin: str = "") -> Proxy:
    """A proxy URL (``[scheme://][user[:password]@]host[:port][/...]``); without a scheme
    ``http://`` is assumed (Go's parseProxy). Raises ProxyError, never showing the value's
    credentials."""
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
    where = f" (from {origin})" if origin else ""

    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, hostport = authority.rpartition("@")

    def bad(why: str) -> ProxyError:        # shows the host part only: never credentials
        return ProxyError(printable(f"proxy {scheme}://{hostport}{where}: {why}"))

    if not _SCHEME_RE.match(scheme):
        raise ProxyError(printable(f"proxy URL{where} has an invalid scheme"))
    if hostport.startswith("["):
        host, close, after = hostport[1:].partition("]")
        if not close or (after and not after.startswith(":")):
            raise bad("malformed IPv6 address")
        port = after[1:]
    elif hostport.count(":") > 1:
        raise bad("an IPv6 address needs brackets")
    else:
        host, _, port = hostport.partition(":")
    if not host:
        raise bad("no host")
    if port and not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
        raise bad(f"invalid port {port!r}")
    username = password = None
    if at:
        import urllib.parse     # start-up: urllib.parse loads only for a proxy with credentials

        user, colon, pw = userinfo.partition(":")
        username = urllib.parse.unquote(user)
        password = urllib.parse.unquote(pw) if colon else None
    return Proxy(scheme.lower(), host.lower(), port, username, password, origin)


# -- NO_PROXY --------------------------------------------------------------------------------------

def _ip(text: str):
    """An address (IPv6 zone dropped, IPv4-mapped IPv6 as IPv4), or None."""
    import ipaddress    # start-up: ipaddress (~3 ms) loads only when a proxy variable is set

    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0] if ":" in text else text)
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _looks_like_ip(text: str) -> bool:
    return ":" in text or (bool(text) and text[-1].isdigit())


def _ascii(name: str) -> str:
    """IDNA (punycode) form of a host name, each label alone; unchanged when not encodable."""
    if name.isascii():
        return name
    from encodings import idna  # start-up: IDNA (stringprep, unicodedata) only for a non-ASCII name

    try:
        return ".".join(idna.ToASCII(label).decode("ascii") if label else "" for label in name.split("."))
    except UnicodeError:
        return name


def _split_host_port(text: str) -> Optional[Tuple[str, str]]:
    """Go's net.SplitHostPort: None where it reports an error (no port, too many colons)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not text[end + 1:].startswith(":"):
            return None
        host, port = text[1:end], text[end + 2:]
    else:
        i = text.rfind(":")
        if i < 0:
            return None
        host, port = text[:i], text[i + 1:]
        if ":" in host:
            return None
    if any(c in host + port for c in "[]") or ":" in port:
        return None
    return host, port


class NoProxy:
    """A compiled ``NO_PROXY`` list: httpproxy's ``config.init`` and ``useProxy``."""

    def __init__(self, text: str):
        self.everything = False
        self.networks: List = []                        # CIDR entries
        self.addresses: List[Tuple[object, str]] = []   # (address, port or "")
        self.domains: List[Tuple[str, str, bool]] = []  # (".suffix", port or "", match the bare name)
        for raw in text.split(","):
            entry = raw.strip().lower()
            if entry == "*":
                self.everything = True
                return
            if entry:
                self._add(entry)

    def _add(self, entry: str) -> None:
        if "/" in entry:
            address, _, bits = entry.partition("/")
            if bits.isdigit() and bits.isascii() and "%" not in address and _ip(address) is not None:
                import ipaddress    # start-up: only for a CIDR entry of NO_PROXY

                try:
                    self.networks.append(ipaddress.ip_network(f"{address}/{int(bits)}", strict=False))
                    return
                except ValueError:
                    pass
        split = _split_host_port(entry)
        host, port = split if split else (entry, "")
        if not host:
            return                                  # ":1" and the like: malformed, ignored
        if "%" not in host and _looks_like_ip(host):
            address = _ip(host)
            if address is not None:
                self.addresses.append((address, port))
                return
        if host.startswith("*."):
            host = host[1:]
        bare = not host.startswith(".")
        self.domains.append((_ascii("." + host if bare else host), port, bare))

    def bypass(self, host: str, port: str) -> bool:
        """True when ``host:port`` goes direct (httpproxy's ``!useProxy``)."""
        host = _ascii(host.strip().lower())
        address = _ip(host) if _looks_like_ip(host) else None
        if host == "localhost" or (address is not None and address.is_loopback):
            return True
        if self.everything:
            return True
        if address is not None:
            if any(address in net for net in self.networks if net.version == address.version):
                return True
            if any(address == a and p in ("", port) for a, p in self.addresses):
                return True
            return False                            # a domain entry never matches an address
        return any((host.endswith(suffix) or (bare and host == suffix[1:])) and p in ("", port)
                   for suffix, p, bare in self.domains)


# -- choosing --------------------------------------------------------------------------------------

def proxy_for(scheme: str, host: str, port: int, settings: Settings) -> Optional[Proxy]:
    """The proxy for a request (httpproxy's ``proxyForURL``), or None to go direct."""
    if scheme == "https":
        value, origin = settings.https
    elif scheme == "http":
        value, origin = settings.http
        if value and settings.cgi:
            raise ProxyError(f"refusing to use {origin} in a CGI environment (REQUEST_METHOD is set); "
                             "see golang.org/s/cgihttpproxy")
    else:
        return None
    if not value:
        value, origin = settings.all
    if not value:
        return None
    if NoProxy(settings.no_proxy).bypass(host, str(port)):
        return None
    return parse_proxy(value, origin)


def route(host: str, port: int, https: bool, env: Optional[Mapping[str, str]] = None) -> Optional[Proxy]:
    """The proxy a connection to ``host:port`` goes through, from ``env`` (default: the
    process environment), or None. Costs nothing when no proxy variable is set."""
    env = os.environ if env is None else env
    if not any(env.get(name) for name in _VARIABLES):
        return None
    return proxy_for("https" if https else "http", host, port, Settings.from_env(env))


# -- connecting ------------------------------------------------------------------------------------

def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def open_socket(proxy: Proxy, host: str, port: int, https: bool, deadline, open_tcp) -> socket.socket:
    """A socket to the registry through ``proxy``: for https a tunnel (``CONNECT``), ready for
    TLS to the registry; for http a connection to the proxy, to which requests go in absolute
    form (``forward``). Connecting (``open_tcp(host, port, deadline)``, the client's one way to
    open a socket) and the CONNECT answer both come out of the request's ``deadline``."""
    if proxy.scheme != "http":
        raise ProxyError(f"proxy {proxy.named}: {printable(proxy.scheme)}:// proxies are not supported "
                         "(only http://)")
    try:
        sock = open_tcp(proxy.host, proxy.port, deadline)
    except (socket.timeout, TimeoutError):
        raise ProxyError(f"proxy {proxy.named}: no connection within {deadline.seconds:g} s") from None
    except OSError as exc:
        raise ProxyError(f"cannot reach proxy {proxy.named}: "
                         f"{exc.strerror or exc.__class__.__name__}") from None
    if https:
        try:
            _tunnel(sock, proxy, _authority(host, port), time.monotonic() + deadline.remaining(),
                    deadline.seconds)
        except BaseException:
            sock.close()
            raise
    return sock


def _tunnel(sock: socket.socket, proxy: Proxy, authority: str, deadline: float, timeout: float) -> None:
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", "User-Agent: compat/0.1"]
    credentials = proxy.authorization()
    if credentials:
        lines.append(f"Proxy-Authorization: {credentials}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    try:
        _settimeout(sock, deadline)
        sock.sendall(request)
        head = _read_head(sock, deadline)
    except (socket.timeout, TimeoutError):
        raise ProxyError(f"proxy {proxy.named}: no answer to CONNECT {printable(authority)} "
                         f"within {timeout:g} s") from None
    except OSError as exc:
        raise ProxyError(f"proxy {proxy.named}: connection lost during CONNECT "
                         f"({exc.strerror or exc.__class__.__name__})") from None
    status, reason = _status(head, proxy)
    if 200 <= status < 300:
        return
    why = f"{status} {printable(reason, 80)}".strip()
    if status == 407:
        why += (" (the proxy refused the credentials in the proxy URL)" if credentials
                else " (the proxy wants credentials: http://user:password@host:port)")
    raise ProxyError(f"proxy {proxy.named} refused CONNECT to {printable(authority)}: {why}", status)


def _settimeout(sock: socket.socket, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("deadline")
    sock.settimeout(left)


def _read_head(sock: socket.socket, deadline: float) -> bytes:
    """The CONNECT answer's status line and headers (at most a little over the limit). After
    a 2xx answer the proxy sends nothing until the client's TLS hello, so reading stops at
    the blank line: byte by byte once a line has ended."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) <= limits.PROXY_ANSWER_BYTES:
        _settimeout(sock, deadline)
        chunk = sock.recv(1 if data.endswith((b"\r\n", b"\n", b"\r")) else 512)
        if not chunk:
            break
        data += chunk
    return data


def _status(head: bytes, proxy: Proxy) -> Tuple[int, str]:
    if len(head) > limits.PROXY_ANSWER_BYTES:
        raise ProxyError(f"proxy {proxy.named}: answer to CONNECT over {limits.PROXY_ANSWER_BYTES} bytes")
    if not head:
        raise ProxyError(f"proxy {proxy.named} closed the connection without answering CONNECT")
    first = head.split(b"\n", 1)[0]
    parts = first.decode("latin-1").strip().split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (parts[1].isdigit() and len(parts[1]) == 3):
        raise ProxyError(f"proxy {proxy.named}: not an HTTP answer to CONNECT ({printable(first.decode('latin-1'), 60)})")
    status = int(parts[1])
    ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    if 200 <= status < 300 and (not ends or head[min(ends):].strip(b"\r\n")):
        raise ProxyError(f"proxy {proxy.named}: incomplete answer to CONNECT, or data after it")
    return status, parts[2] if len(parts) > 2 else ""


def forward(proxy: Proxy, netloc: str, target: str, headers: Dict[str, str]) -> Tuple[str, Dict[str, str]]:
    """A plain-HTTP request as a forwarding proxy takes it: the absolute URI, and the proxy's
    credentials in ``Proxy-Authorization``."""
    credentials = proxy.authorization()
    if credentials:
        headers = dict(headers, **{"Proxy-Authorization": credentials})
    return f"http://{netloc}{target}", headers


def check_answer(proxy: Proxy, status: int) -> None:
    """A forwarded request answered 407 was refused by the proxy, not by the registry."""
    if status == 407:
        raise ProxyError(f"proxy {proxy.named} refused the request: 407 Proxy Authentication Required"
                         + (" (the proxy refused the credentials in the proxy URL)" if proxy.username is not None
                            else " (the proxy wants credentials: http://user:password@host:port)"), 407)
