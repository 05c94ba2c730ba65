"""A small OCI distribution client on the standard library.

Why not oras-py here: it sets no timeouts, retries any error for about 131 s, keeps one
token per client, cannot return a manifest's digest, and costs about 180 ms to import
(research notes, registry-runtimes.md section 1).  This client does only what ``select``
needs: HEAD/GET manifests with the full Accept list, every body verified against its
digest, per-request timeouts, bounded retries on 429/5xx and connection errors with
``Retry-After`` honoured, basic and bearer auth with tokens cached per scope.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time

from compat import limits
from compat.errors import BadInput, RegistryError, printable
from compat.io import load_json
from compat.oci import auth, digest as D, media, schemes
from compat.oci.http import BodyTooLarge, Connection, Deadline, ProtocolError, Stream, UnsafeRequest, split_netloc
from compat.oci.progress import WaitNotice
from compat.oci.reference import Reference, check_tag, split_registry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

RETRY_STATUSES = (429, 500, 502, 503, 504)
#: OpenSSL reasons meaning "the peer answered, but not in TLS"
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST",
            "UNEXPECTED_EOF_WHILE_READING")
MAX_RETRY_AFTER_S = 30.0


def _ssl_context(registry: str):
    """System trust plus containers/docker ``certs.d/<host:port>/*.crt`` (and SSL_CERT_FILE)."""
    import ssl  # start-up: ssl costs ~10 ms, and a plain-HTTP registry never needs it

    ctx = ssl.create_default_context()
    if not registry or registry.startswith(".") or "/" in registry:
        return ctx
    for base in ("/etc/containers/certs.d", os.path.expanduser("~/.config/containers/certs.d"),
                 "/etc/docker/certs.d"):
        d = os.path.join(base, registry)
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if n.endswith(".crt"):
                try:
                    ctx.load_verify_locations(os.path.join(d, n))
                except (OSError, ssl.SSLError):
                    pass
    return ctx


def _not_tls(exc) -> bool:
    """A TLS attempt the peer answered, but not in TLS (plain HTTP there)."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLError) and \
        not isinstance(exc, ssl.SSLCertVerificationError) and exc.reason in _NOT_TLS


def _tls_spoken(exc) -> bool:
    """A TLS attempt that got as far as the peer's certificate."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLCertVerificationError)


class Response:
    __slots__ = ("status", "headers", "body", "stream", "tries", "foreign")

    def __init__(self, status: int, headers: Dict[str, str], body: bytes, stream=None, foreign=False):
        self.status, self.headers, self.body, self.stream = status, headers, body, stream
        self.tries, self.foreign = 1, foreign


def _origin(scheme: str, netloc: str) -> Tuple[str, str, int]:
    host, port = split_netloc(netloc, scheme == "https")
    return scheme, host.lower(), port


def keeps_credentials(initial: str, dest: str) -> bool:
    """Whether a redirect from URL ``initial`` to URL ``dest`` may carry ``Authorization``:
    only to the same origin (scheme, host, port; a default port is the same as none)."""
    import urllib.parse     # start-up: urllib.parse loads only when a registry redirects

    a, b = urllib.parse.urlsplit(initial), urllib.parse.urlsplit(dest)
    try:
        return _origin(a.scheme, a.netloc) == _origin(b.scheme, b.netloc)
    except (UnsafeRequest, ValueError):
        return False


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(text: str) -> str:
    """Percent-encoding of every byte but RFC 3986's unreserved ones (``urllib.parse.quote``
    with ``safe=''``), without importing urllib on the warm path."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def tries_text(n: int) -> str:
    return "1 try" if n == 1 else f"{n} tries"


class Registry:
    def __init__(self, ref: Reference, plain_http: bool = False, timeout: float = 10.0,
                 retries: int = 3, env=None, deadline: Optional[Deadline] = None):
        """``timeout``: the budget in seconds of all this client's network work (every
        request, retry and wait together), unless ``deadline`` (shared with other clients of
        the same command) is given."""
        self.ref = ref
        self.host = ref.api_host
        self.retries = retries
        self.env = os.environ if env is None else env
        # the scheme: the user's (--plain-http), HTTPS for any other registry, and for a
        # loopback one what it answered on last time, else plain HTTP first (spec/oci.md)
        self._picks_scheme = ref.loopback and not plain_http
        self._recalled = schemes.recall(ref.registry) if self._picks_scheme else None
        self.scheme = "http" if plain_http else self._recalled or ("http" if self._picks_scheme else "https")
        self._may_switch = self._picks_scheme     # the other scheme, once, before the first answer
        # without a port the two schemes are two ports (80, 443): a refused one says nothing
        self._two_ports = self._picks_scheme and split_registry(ref.registry)[1] is None
        self._plain_answer = None                 # trying TLS after plain HTTP: what HTTP got
        self._notice = WaitNotice(ref.registry)
        self.deadline = deadline if deadline is not None else Deadline(timeout)
        self.timeout = self.deadline.seconds
        if not 0 < self.timeout < float("inf"):        # NaN fails this too
            raise BadInput(f"--timeout must be a positive number of seconds, not {printable(str(timeout), 20)}")
        self._conn: Optional[Connection] = None
        self._auth_header: Optional[str] = None
        self._tokens: Dict[Tuple[str, str, str, str], str] = {}
        self._creds_loaded = False
        self._creds: Optional[auth.Credentials] = None
        self.requests = 0          # HTTP responses received: for tests and the benchmark
        self._no_referrers_api = False      # the referrers API answered 404: this registry has none

    # -- transport --------------------------------------------------------------------------
    def _connection(self, scheme: str, netloc: str) -> Connection:
        https = scheme == "https"
        conn = Connection(netloc, https, self.timeout, _ssl_context(netloc) if https else None)
        if self._plain_answer is not None:      # TLS tried after a plain answer: briefly
            conn.handshake_s = limits.TLS_PROBE_S
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _send(self, scheme: str, netloc: str, method: str, target: str, headers: Dict[str, str],
              body: Optional[bytes], limit: int, stream: bool) -> Response:
        """One HTTP exchange. The registry's own connection is kept alive; another host's
        (a redirect) and any streamed body get a connection of their own."""
        own = (scheme, netloc) == (self.scheme, self.host)
        if own and not stream:
            if self._conn is None:
                self._conn = self._connection(scheme, netloc)
            conn = self._conn
        else:
            conn = self._connection(scheme, netloc)
        try:
            status, fields, body_stream = conn.open(method, target, headers, body, None, self.deadline)
            if stream and 200 <= status < 300:
                return Response(status, fields, b"", _Closing(body_stream, conn), foreign=not own)
            cap = limit if 200 <= status < 300 else min(limit, limits.ERROR_BODY_BYTES)
            body_stream.set_limit(cap)
            try:
                data = body_stream.read()
            finally:
                body_stream.close()
        except BaseException:
            conn.close()
            raise
        if conn is not self._conn:
            conn.close()
        return Response(status, fields, data, foreign=not own)

    def _exchange(self, method: str, path: str, headers: Dict[str, str], body: Optional[bytes],
                  limit: int, stream: bool) -> Response:
        """A request (``path``: absolute, with its query) and the redirects it is answered
        with (GET and HEAD only). Credentials go only to the registry's own origin: a
        redirect to another scheme, host or port is followed without ``Authorization``, and
        never gets it back (spec/oci.md, Auth)."""
        base = f"{self.scheme}://{self.host}/"
        url, scheme, netloc, target = base + path.lstrip("/"), self.scheme, self.host, path
        trusted = True
        for hop in range(limits.HTTP_REDIRECTS + 1):
            h = dict(headers) if trusted else {k: v for k, v in headers.items() if k.lower() != "authorization"}
            resp = self._send(scheme, netloc, method, target, h, body, limit, stream)
            resp.foreign = not trusted
            if resp.status not in (301, 302, 303, 307, 308) or method not in ("GET", "HEAD") \
                    or not resp.headers.get("location"):
                return resp
            # start-up: urllib.parse loads only when a registry redirects (to blob storage)
            import urllib.parse

            url = urllib.parse.urljoin(url, resp.headers["location"])
            parsed = urllib.parse.urlsplit(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc or "@" in parsed.netloc:
                raise RegistryError(f"{self.ref.registry}: redirected to a URL that is not http(s): "
                                    f"{printable(url, 80)}")
            trusted = trusted and keeps_credentials(base, url)
            scheme, netloc = parsed.scheme, parsed.netloc
            target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        raise RegistryError(f"{self.ref.registry}: more than {limits.HTTP_REDIRECTS} redirects")

    # -- the scheme of a loopback registry ----------------------------------------------------
    def _answer(self, method, path, headers, body, limit, stream) -> Response:
        """One exchange over the scheme in force. For a loopback registry whose scheme compat
        picks, before its first answer: an answer that says the peer speaks the other scheme
        gets the same request over that scheme, once (spec/oci.md, Transport)."""
        while True:
            try:
                resp = self._exchange(method, path, headers, body, limit, stream)
            except (OSError, ProtocolError) as exc:
                self.close()
                if self._switch(exc):
                    continue
                plain = self._back_to_plain(exc)
                if plain is None:
                    raise
                if isinstance(plain, Response):
                    resp = plain
                else:
                    raise plain from None
            else:
                self.requests += 1      # answers from the registry: for tests and the benchmark
                if resp.status == 400 and not resp.foreign and self._switch(resp):
                    continue
            self._settle()
            return resp

    def _switch(self, answer) -> bool:
        """Whether ``answer`` (an exception or a Response) sends this request to the other
        scheme: plain HTTP that got a 400 (what Go's TLS servers say to plain HTTP), a
        broken or non-HTTP answer, or a reset (other TLS servers) tries TLS; TLS to a peer
        that does not speak TLS at all tries plain HTTP. A refused connection switches only
        when the registry names no port (the other scheme's port may be open); a timeout
        and a certificate that fails verification never switch."""
        if not self._may_switch:
            return False
        refused = isinstance(answer, ConnectionRefusedError)
        if refused and not self._two_ports:
            return False
        if self.scheme == "http":
            if not isinstance(answer, (Response, ProtocolError, ConnectionError)):
                return False
            self.scheme, self._plain_answer = "https", answer
        elif refused or _not_tls(answer):
            self.scheme = "http"
        else:
            return False
        self._may_switch = False
        self.close()            # the kept-alive connection is the other scheme's
        return True

    def _back_to_plain(self, exc: Exception):
        """TLS tried after plain HTTP failed with ``exc``: unless the peer showed it speaks TLS
        (a certificate, good or not), plain HTTP it is, and what it answered stands (a
        Response or the exception). None: ``exc`` stands."""
        plain, self._plain_answer = self._plain_answer, None
        if plain is None or _tls_spoken(exc):
            return None
        self.scheme = "http"
        return plain

    def _settle(self) -> None:
        """The registry answered: no more switching; a loopback registry's scheme is
        remembered when it is not what was remembered."""
        self._may_switch, self._plain_answer = False, None
        if self._picks_scheme and self.scheme != self._recalled:
            schemes.remember(self.ref.registry, self.scheme)
            self._recalled = self.scheme

    def request(self, method: str, path: str, headers: Optional[Dict[str, str]] = None,
                body: Optional[bytes] = None, limit: int = limits.ERROR_BODY_BYTES,
                stream: bool = False) -> Response:
        """One logical request: redirects, retries, auth challenges, a loopback registry's scheme,
        all within the client's deadline. ``limit`` bounds a 2xx body (error bodies:
        limits.ERROR_BODY_BYTES); ``stream``: a 2xx body is left open in ``resp.stream``."""
        self.deadline.on_wait = self._notice.on_wait
        self._notice.begin(f"{method} {path}")
        try:
            return self._request(method, path, dict(headers or {}), body, limit, stream)
        finally:
            self._notice.end()

    def _request(self, method, path, headers, body, limit, stream) -> Response:
        tries = 1
        authed = False
        while True:
            h = dict(headers)
            if self._auth_header:
                h["Authorization"] = self._auth_header
            h.setdefault("User-Agent", "compat/0.1")
            try:
                resp = self._answer(method, path, h, body, limit, stream)
            except UnsafeRequest as exc:
                raise RegistryError(f"{self.ref.registry}: refused to send a request ({exc})") from None
            except BodyTooLarge as exc:
                self.close()
                raise RegistryError(f"{self.ref.registry}: {method} {printable(path, 80)}: {exc}") from None
            except (OSError, ProtocolError) as exc:
                self.close()
                failure = self._transport_failure(exc, method, path)
                delay = min(0.2 * 2 ** tries, 2.0)
                if failure.status == -1 and tries <= self.retries and delay < self.deadline.remaining():
                    self._notice.retrying(str(failure).split(": ", 1)[-1].split(" (")[0], delay, tries + 1)
                    time.sleep(delay)
                    tries += 1
                    continue
                raise RegistryError(str(failure).replace("{tries}", tries_text(tries)), failure.status) from None
            resp.tries = tries
            if resp.status == 401 and not authed and not resp.foreign:
                authed = True
                if self._authenticate(resp.headers.get("www-authenticate", "")):
                    continue
            if resp.status in RETRY_STATUSES and tries <= self.retries:
                wait = self._retry_after(resp.headers.get("retry-after"), tries)
                if wait is None:
                    raise RegistryError(f"{self.ref.registry}: {resp.status} and Retry-After "
                                        f"{printable(resp.headers.get('retry-after'), 40)} exceeds "
                                        f"{MAX_RETRY_AFTER_S:g} s", resp.status)
                if wait >= self.deadline.remaining():
                    raise RegistryError(f"{self.ref.registry}: answered {resp.status} ({tries_text(tries)}); "
                                        f"waiting {wait:g} s more exceeds the {self.timeout:g} s budget "
                                        "(--timeout)", resp.status)
                self._notice.retrying(f"answered {resp.status}", wait, tries + 1)
                time.sleep(wait)
                tries += 1
                continue
            return resp

    def _transport_failure(self, exc: Exception, method: str, path: str) -> RegistryError:
        """What a transport error means: a transient failure (status -1, worth a retry) or a
        final one (status 0)."""
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return RegistryError(f"{self.ref.registry}: timed out after {self.timeout:g} s (--timeout) waiting "
                                 f"for an answer to {method} {printable(path, 80)} ({{tries}})", 0)
        if isinstance(exc, ProtocolError):
            return RegistryError(f"{self.ref.registry}: malformed HTTP response ({printable(str(exc), 120)}; "
                                 "{tries})", -1)
        ssl = sys.modules.get("ssl")
        if ssl is not None and isinstance(exc, ssl.SSLError):
            detail = getattr(exc, "verify_message", "") or ""
            return RegistryError(f"{self.ref.registry}: TLS failed ({exc.reason or exc}"
                                 + (f": {detail}" if detail else "") + ")", 0)
        return RegistryError(f"cannot reach {self.ref.registry}: {exc.strerror or exc.__class__.__name__} "
                             "({tries})", -1)

    @staticmethod
    def _retry_after(value: Optional[str], attempt: int) -> Optional[float]:
        if value:
            try:
                seconds = float(value)
                if seconds != seconds:
                    seconds = 1.0           # NaN
            except ValueError:
                # start-up: email.utils loads only for a Retry-After date
                from email.utils import parsedate_to_datetime
                try:
                    seconds = parsedate_to_datetime(value).timestamp() - time.time()
                except (TypeError, ValueError, OverflowError, IndexError):
                    seconds = 1.0
            seconds = max(0.0, seconds)
            return seconds if seconds <= MAX_RETRY_AFTER_S else None
        return min(0.25 * 2 ** (attempt - 1), 4.0)

    # -- auth -------------------------------------------------------------------------------
    def _credentials(self) -> Optional[auth.Credentials]:
        if not self._creds_loaded:
            self._creds = auth.find(self.ref.registry, self.ref.repository, self.env)
            self._creds_loaded = True
        return self._creds

    def _authenticate(self, challenge: str) -> bool:
        """Answer a challenge of the registry's own origin (never of a redirect's host)."""
        scheme, params = auth.parse_challenge(challenge)
        creds = self._credentials()
        if scheme == "basic":
            if not creds or not creds.username or self._auth_header:
                return False        # nothing to offer, or these credentials were just refused
            self._auth_header = auth.basic_header(creds)
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        scope = params.get("scope") or f"repository:{self.ref.repository}:pull"
        key = (self.host, params["realm"], params.get("service", ""), scope)
        if self._auth_header == f"Bearer {self._tokens.get(key)}":
            del self._tokens[key]   # refused (expired?): ask for a new one, once per request
        token = self._tokens.get(key)
        if token is None:
            token = self._fetch_token(params["realm"], params.get("service", ""), scope, creds)
            self._tokens[key] = token
        self._auth_header = f"Bearer {token}"
        return True

    def _fetch_token(self, realm: str, service: str, scope: str,
                     creds: Optional[auth.Credentials]) -> str:
        import urllib.parse     # start-up: urllib.parse loads only for a token service

        query = urllib.parse.urlencode([("service", service)] + [("scope", s) for s in scope.split(" ")])
        parsed = urllib.parse.urlsplit(realm)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise RegistryError(f"{self.ref.registry}: token realm {printable(realm, 80)} is not an http(s) URL")
        where = printable(parsed.netloc, 80)
        headers = {"User-Agent": "compat/0.1"}
        conn = None
        try:
            conn = self._connection(parsed.scheme, parsed.netloc)
            if creds and creds.identity_token:
                body = urllib.parse.urlencode({"grant_type": "refresh_token", "service": service,
                                               "scope": scope, "client_id": "compat",
                                               "refresh_token": creds.identity_token}).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                status, _, data = conn.request("POST", parsed.path or "/", headers, body,
                                               limits.TOKEN_BYTES, self.deadline)
            else:
                if creds and creds.username:
                    headers["Authorization"] = auth.basic_header(creds)
                status, _, data = conn.request("GET", f"{parsed.path or '/'}?{query}", headers,
                                               None, limits.TOKEN_BYTES, self.deadline)
        except UnsafeRequest as exc:
            raise RegistryError(f"token service {where}: refused to send a request ({exc})") from None
        except (socket.timeout, TimeoutError):
            raise RegistryError(f"token service {where}: timed out after {self.timeout:g} s (--timeout)") from None
        except (OSError, ProtocolError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
            raise RegistryError(f"token service {where}: {printable(detail, 120)}") from None
        finally:
            if conn is not None:
                conn.close()
        if status in (401, 403):
            who = f"credentials from {creds.origin}" if creds else "anonymous access"
            raise RegistryError(f"{self.ref.registry}: token service refused {who} ({status})", status)
        if status != 200:
            raise RegistryError(f"{self.ref.registry}: token service answered {status}", status)
        try:
            doc = json.loads(data)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError, RecursionError):
            token = None
        if not token:
            raise RegistryError(f"{self.ref.registry}: token service sent no token")
        if not isinstance(token, str) or not auth.is_token(token):
            raise RegistryError(f"{self.ref.registry}: token service sent a malformed token "
                                "(only visible ASCII characters may go into a header)")
        return token

    # -- manifests --------------------------------------------------------------------------
    def _fail(self, resp: Response, what: str) -> RegistryError:
        detail = ""
        try:
            err = json.loads(resp.body)["errors"][0]
            detail = f" ({printable(err.get('code', ''), 40)}: {printable(err.get('message', ''), 160)})"
        except (ValueError, AttributeError, KeyError, TypeError, IndexError, RecursionError):
            pass
        if resp.status == 404:
            return RegistryError(f"{what}: not found{detail}", 404)
        if resp.status in (401, 403):
            if resp.foreign:
                return RegistryError(f"{what}: the host it redirected to answered {resp.status} "
                                     "(credentials are never sent to another host)", resp.status)
            creds = self._credentials()
            who = f"credentials from {creds.origin}" if creds else "no credentials found"
            return RegistryError(f"{what}: {'unauthorized' if resp.status == 401 else 'forbidden'} "
                                 f"({who}){detail}", resp.status)
        if resp.status == 429:
            return RegistryError(f"{what}: rate limited (429) after {tries_text(resp.tries)}", 429)
        return RegistryError(f"{what}: registry answered {resp.status} after {tries_text(resp.tries)}{detail}",
                             resp.status)

    def _reference(self, reference: str) -> str:
        """A tag or a digest, checked before it goes into a URL."""
        if ":" in reference:
            return D.check(reference, f"{self.ref.registry}/{self.ref.repository}")
        return check_tag(reference, f"{self.ref.registry}/{self.ref.repository}")

    def head_digest(self, reference: str) -> Optional[str]:
        """The digest a tag points to (one HEAD), or None if the registry does not say."""
        reference = self._reference(reference)
        what = f"{self.ref.registry}/{self.ref.repository}:{reference}"
        resp = self.request("HEAD", f"/v2/{self.ref.repository}/manifests/{reference}", {"Accept": media.ACCEPT})
        if resp.status in (401, 403, 404):
            return None     # a HEAD answer has no error body: let the GET say why
        if resp.status != 200:
            raise self._fail(resp, what)
        digest = resp.headers.get("docker-content-digest")
        return digest if digest and D.is_digest(digest) else None

    def get_manifest(self, reference: str) -> Tuple[str, str, bytes]:
        """(digest, content type, verified bytes) of a manifest or index."""
        reference = self._reference(reference)
        sep = "@" if D.is_digest(reference) else ":"
        what = f"{self.ref.registry}/{self.ref.repository}{sep}{reference}"
        resp = self.request("GET", f"/v2/{self.ref.repository}/manifests/{reference}", {"Accept": media.ACCEPT},
                            limit=limits.MANIFEST_BYTES)
        if resp.status != 200:
            raise self._fail(resp, what)
        if D.is_digest(reference):
            digest = reference
        else:
            said = resp.headers.get("docker-content-digest")
            if said and not D.is_digest(said):
                raise RegistryError(f"{what}: the registry sent a malformed Docker-Content-Digest "
                                    f"{printable(said, 80)}")
            digest = said or D.digest_of(resp.body)
        self._verify(resp.body, digest, what)
        return digest, resp.headers.get("content-type", ""), resp.body

    @staticmethod
    def _verify(data: bytes, digest: str, what: str) -> None:
        try:
            D.verify(data, digest, what)
        except BadInput as exc:
            raise RegistryError(str(exc)) from None

    def referrers(self, digest: str, artifact_type: Optional[str] = None) -> list:
        """Descriptors of the manifests whose subject is ``digest``: the referrers API, else
        the ``sha256-<hex>`` referrers tag (distribution 2.8 has no referrers API). The
        ``artifactType`` filter is applied here when the registry did not apply it.
        Descriptors without a well-formed digest are left out. Once the API has answered
        404 (a registry with the API never does: distribution-spec), this client asks the
        tag schema only."""
        algorithm, _, hexpart = D.check(digest, f"{self.ref.registry}/{self.ref.repository}").partition(":")
        what = f"{self.ref.registry}/{self.ref.repository} referrers of {digest[:19]}"
        filtered = False
        resp = None
        if not self._no_referrers_api:
            query = f"?artifactType={quote(artifact_type)}" if artifact_type else ""
            resp = self.request("GET", f"/v2/{self.ref.repository}/referrers/{digest}{query}",
                                {"Accept": media.OCI_INDEX}, limit=limits.MANIFEST_BYTES)
            self._no_referrers_api = resp.status == 404
        if resp is not None and resp.status == 200 and "json" in resp.headers.get("content-type", ""):
            body = resp.body
            filtered = "artifacttype" in resp.headers.get("oci-filters-applied", "").lower()
        elif resp is None or resp.status in (200, 400, 404, 405):   # no referrers API: the tag schema
            tag = f"{algorithm}-{hexpart}"
            resp = self.request("GET", f"/v2/{self.ref.repository}/manifests/{tag}", {"Accept": media.ACCEPT},
                                limit=limits.MANIFEST_BYTES)
            if resp.status == 404:
                return []
            if resp.status != 200:
                raise self._fail(resp, what)
            body = resp.body
        else:
            raise self._fail(resp, what)
        try:
            doc = load_json(body, what)
            found = [d for d in doc.get("manifests") or [] if isinstance(d, dict) and D.is_digest(d.get("digest"))]
        except BadInput as exc:
            raise RegistryError(str(exc)) from None
        except (AttributeError, TypeError):
            raise RegistryError(f"{what}: the answer is not an image index") from None
        if artifact_type and not filtered:
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found

    def get_blob(self, digest: str, limit: int = limits.BLOB_BYTES) -> bytes:
        """A blob read whole up to ``limit`` (default limits.BLOB_BYTES) and verified; callers
        that know the kind ask for less (a config: CONFIG_BYTES). Large layers: :meth:`open_blob`."""
        what = f"{self.ref.registry}/{self.ref.repository}@{D.check(digest, 'blob')}"
        resp = self.request("GET", f"/v2/{self.ref.repository}/blobs/{digest}", limit=limit)
        if resp.status != 200:
            raise self._fail(resp, what)
        self._verify(resp.body, digest, what)
        return resp.body

    def open_blob(self, digest: str, size: Optional[int] = None) -> "BlobReader":
        """A blob's body as a binary file (``read(n)``, ``close()``, a context manager),
        streamed, within the client's deadline; redirects followed under the credential rule.
        ``size``: the descriptor's size, and the most that will be read. The caller verifies
        the digest while it reads. Errors are RegistryError."""
        what = f"{self.ref.registry}/{self.ref.repository}@{D.check(digest, 'blob')}"
        resp = self.request("GET", f"/v2/{self.ref.repository}/blobs/{digest}", stream=True)
        if resp.status != 200:
            raise self._fail(resp, what)
        reader = BlobReader(resp.stream, what, self)
        if size is not None:
            try:
                resp.stream.body.set_limit(size)
            except BodyTooLarge as exc:
                reader.close()
                raise RegistryError(f"{what}: {exc} (its descriptor's size)") from None
        return reader


class _Closing:
    """A streamed body that closes its own connection when closed."""

    def __init__(self, body, conn: Connection):
        self.body, self.conn = body, conn

    def read(self, n: int = -1) -> bytes:
        return self.body.read(n)

    def close(self) -> None:
        try:
            self.body.close()
        finally:
            self.conn.close()


class BlobReader(Stream):
    """What :meth:`Registry.open_blob` returns: reads bounded by the registry's deadline;
    transport and framing errors become RegistryError."""

    def __init__(self, stream: _Closing, what: str, registry: Registry):
        self._stream, self._what, self._registry = stream, what, registry

    def read(self, n: int = -1) -> bytes:
        try:
            return self._stream.read(n)
        except (socket.timeout, TimeoutError):
            self.close()
            raise RegistryError(f"{self._what}: timed out after {self._registry.timeout:g} s (--timeout) "
                                "while reading the blob") from None
        except (OSError, ProtocolError) as exc:
            self.close()
            detail = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
            raise RegistryError(f"{self._what}: {printable(detail, 120)}") from None

    def close(self) -> None:
        self._stream.close()
