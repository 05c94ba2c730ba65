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
import urllib.parse
from typing import Dict, Optional, Tuple

from compat.errors import RegistryError
from compat.oci import auth, manifest, media
from compat.oci import digest as D
from compat.oci.http import Connection, ProtocolError
from compat.oci.reference import Reference

RETRY_STATUSES = (429, 500, 502, 503, 504)
#: OpenSSL reasons meaning "the peer answered, but not in TLS"
_NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST",
            "UNEXPECTED_EOF_WHILE_READING")
MAX_RETRY_AFTER_S = 30.0


def _ssl_context(registry: str):
    """System trust plus containers/docker ``certs.d/<host:port>/*.crt`` (and SSL_CERT_FILE)."""
    import ssl

    ctx = ssl.create_default_context()
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


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body


class Registry:
    def __init__(self, ref: Reference, plain_http: bool = False, timeout: float = 10.0,
                 retries: int = 3, env=None):
        self.ref = ref
        self.host = ref.api_host
        self.timeout = timeout
        self.retries = retries
        self.env = os.environ if env is None else env
        self.scheme = "http" if plain_http else "https"
        self._may_downgrade = ref.loopback and not plain_http
        self._conn: Optional[Connection] = None
        self._auth_header: Optional[str] = None
        self._tokens: Dict[Tuple[str, str, str], str] = {}
        self._creds_loaded = False
        self._creds: Optional[auth.Credentials] = None
        self.requests = 0          # HTTP responses received: for tests and the benchmark

    # -- transport --------------------------------------------------------------------------
    def _connect(self) -> Connection:
        if self._conn is None:
            https = self.scheme == "https"
            self._conn = Connection(self.host, https, self.timeout,
                                    _ssl_context(self.ref.registry) if https else None)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _once(self, method: str, url: str, headers: Dict[str, str], body: Optional[bytes] = None) -> Response:
        parsed = urllib.parse.urlsplit(url)
        target = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
        if parsed.netloc and parsed.netloc != self.host:     # a redirect to blob storage
            https = parsed.scheme == "https"
            conn = Connection(parsed.netloc, https, self.timeout, _ssl_context(parsed.netloc) if https else None)
            try:
                return Response(*conn.request(method, target, headers, body))
            finally:
                conn.close()
        return Response(*self._connect().request(method, target, headers, body))

    def request(self, method: str, path: str, headers: Optional[Dict[str, str]] = None,
                body: Optional[bytes] = None) -> Response:
        """One logical request: retries, auth challenges, HTTPS->HTTP on loopback."""
        headers = dict(headers or {})
        attempt = 0
        authed = False
        while True:
            h = dict(headers)
            if self._auth_header:
                h["Authorization"] = self._auth_header
            h.setdefault("User-Agent", "compat/0.1")
            try:
                resp = self._once(method, path, h, body)
                self.requests += 1      # requests answered by the registry
            except (OSError, ProtocolError) as exc:
                self.close()
                failure = self._transport_failure(exc)
                if failure is None:          # plain HTTP on loopback: ask again over HTTP
                    continue
                if failure.status == -1 and attempt < self.retries:   # transient: back off
                    attempt += 1
                    time.sleep(min(0.2 * 2 ** attempt, 2.0))
                    continue
                raise RegistryError(str(failure).replace("{tries}", str(attempt + 1))) from None
            if resp.status == 401 and not authed:
                authed = True
                if self._authenticate(resp.headers.get("www-authenticate", "")):
                    continue
            if resp.status in RETRY_STATUSES and attempt < self.retries:
                attempt += 1
                wait = self._retry_after(resp.headers.get("retry-after"), attempt)
                if wait is None:
                    raise RegistryError(f"{self.ref.registry}: {resp.status} and Retry-After "
                                        f"{resp.headers.get('retry-after')} exceeds {MAX_RETRY_AFTER_S:g} s",
                                        resp.status)
                time.sleep(wait)
                continue
            return resp

    def _transport_failure(self, exc: Exception) -> Optional[RegistryError]:
        """What a transport error means: None (fell back to HTTP: retry at once), a transient
        failure (status -1, worth a retry) or a final one (status 0)."""
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return RegistryError(f"{self.ref.registry}: timed out after {self.timeout:g} s ({{tries}} tries)", -1)
        if isinstance(exc, ProtocolError):
            return RegistryError(f"{self.ref.registry}: malformed HTTP response ({exc})", -1)
        ssl = sys.modules.get("ssl")
        if ssl is not None and isinstance(exc, ssl.SSLError):
            # only a server that does not speak TLS at all (plain HTTP on loopback) lets us
            # fall back; a certificate that fails verification never does
            if self._may_downgrade and self.scheme == "https" and \
                    not isinstance(exc, ssl.SSLCertVerificationError) and exc.reason in _NOT_TLS:
                self.scheme, self._may_downgrade = "http", False
                return None
            detail = getattr(exc, "verify_message", "") or ""
            return RegistryError(f"{self.ref.registry}: TLS failed ({exc.reason or exc}"
                                 + (f": {detail}" if detail else "") + ")", 0)
        return RegistryError(f"cannot reach {self.ref.registry}: {exc.strerror or exc.__class__.__name__}", -1)

    @staticmethod
    def _retry_after(value: Optional[str], attempt: int) -> Optional[float]:
        if value:
            try:
                seconds = float(value)
            except ValueError:
                from email.utils import parsedate_to_datetime
                try:
                    seconds = parsedate_to_datetime(value).timestamp() - time.time()
                except (TypeError, ValueError):
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
        key = (params["realm"], params.get("service", ""), scope)
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
        query = urllib.parse.urlencode([("service", service)] + [("scope", s) for s in scope.split(" ")])
        parsed = urllib.parse.urlsplit(realm)
        if parsed.scheme not in ("http", "https"):
            raise RegistryError(f"{self.ref.registry}: token realm {realm!r} is not an http(s) URL")
        https = parsed.scheme == "https"
        conn = Connection(parsed.netloc, https, self.timeout, _ssl_context(parsed.netloc) if https else None)
        headers = {"User-Agent": "compat/0.1"}
        try:
            if creds and creds.identity_token:
                body = urllib.parse.urlencode({"grant_type": "refresh_token", "service": service,
                                               "scope": scope, "client_id": "compat",
                                               "refresh_token": creds.identity_token}).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                status, _, data = conn.request("POST", parsed.path or "/", headers, body)
            else:
                if creds and creds.username:
                    headers["Authorization"] = auth.basic_header(creds)
                status, _, data = conn.request("GET", f"{parsed.path or '/'}?{query}", headers)
        except (OSError, ProtocolError) as exc:
            raise RegistryError(f"token service {parsed.netloc}: {getattr(exc, 'strerror', None) or exc}") from None
        finally:
            conn.close()
        if status in (401, 403):
            who = f"credentials from {creds.origin}" if creds else "anonymous access"
            raise RegistryError(f"{self.ref.registry}: token service refused {who} ({status})", status)
        if status != 200:
            raise RegistryError(f"{self.ref.registry}: token service answered {status}", status)
        try:
            doc = json.loads(data)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(f"{self.ref.registry}: token service sent no token")
        return token

    # -- manifests --------------------------------------------------------------------------
    def _fail(self, resp: Response, what: str) -> RegistryError:
        detail = ""
        try:
            errs = json.loads(resp.body).get("errors") or []
            if errs:
                detail = f" ({errs[0].get('code', '')}: {errs[0].get('message', '')})"
        except (ValueError, AttributeError):
            pass
        if resp.status == 404:
            return RegistryError(f"{what}: not found{detail}", 404)
        if resp.status in (401, 403):
            creds = self._credentials()
            who = f"credentials from {creds.origin}" if creds else "no credentials found"
            return RegistryError(f"{what}: {'unauthorized' if resp.status == 401 else 'forbidden'} "
                                 f"({who}){detail}", resp.status)
        if resp.status == 429:
            return RegistryError(f"{what}: rate limited (429) after {self.retries + 1} tries", 429)
        return RegistryError(f"{what}: registry answered {resp.status} after {self.retries + 1} tries{detail}",
                             resp.status)

    def head_digest(self, reference: str) -> Optional[str]:
        """The digest a tag points to (one HEAD), or None if the registry does not say."""
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
        sep = "@" if reference.startswith("sha") else ":"
        what = f"{self.ref.registry}/{self.ref.repository}{sep}{reference}"
        resp = self.request("GET", f"/v2/{self.ref.repository}/manifests/{reference}", {"Accept": media.ACCEPT})
        if resp.status != 200:
            raise self._fail(resp, what)
        if D.is_digest(reference):
            digest = reference
        else:
            digest = resp.headers.get("docker-content-digest") or D.digest_of(resp.body)
        try:
            D.verify(resp.body, digest, what)
        except Exception as exc:
            raise RegistryError(str(exc)) from None
        return digest, resp.headers.get("content-type", ""), resp.body

    def referrers(self, digest: str, artifact_type: Optional[str] = None) -> list:
        """Descriptors of the manifests whose subject is ``digest``: the referrers API, else
        the ``sha256-<hex>`` referrers tag (distribution 2.8 has no referrers API). The
        ``artifactType`` filter is applied here when the registry did not apply it."""
        algorithm, _, hexpart = digest.partition(":")
        what = f"{self.ref.registry}/{self.ref.repository} referrers of {digest[:19]}"
        query = f"?artifactType={urllib.parse.quote(artifact_type, safe='')}" if artifact_type else ""
        resp = self.request("GET", f"/v2/{self.ref.repository}/referrers/{digest}{query}",
                            {"Accept": media.OCI_INDEX})
        filtered = False
        if resp.status == 200 and "json" in resp.headers.get("content-type", ""):
            body = resp.body
            filtered = "artifacttype" in resp.headers.get("oci-filters-applied", "").lower()
        elif resp.status in (200, 400, 404, 405):   # no referrers API: the tag schema
            tag = f"{algorithm[:32]}-{hexpart[:64]}"
            resp = self.request("GET", f"/v2/{self.ref.repository}/manifests/{tag}", {"Accept": media.ACCEPT})
            if resp.status == 404:
                return []
            if resp.status != 200:
                raise self._fail(resp, what)
            body = resp.body
        else:
            raise self._fail(resp, what)
        try:
            doc = json.loads(body)
            found = [d for d in doc.get("manifests") or [] if isinstance(d, dict)]
        except (ValueError, AttributeError):
            raise RegistryError(f"{what}: the answer is not an image index") from None
        if artifact_type and not filtered:
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found

    def get_blob(self, digest: str) -> bytes:
        what = f"{self.ref.registry}/{self.ref.repository}@{digest}"
        resp = self.request("GET", f"/v2/{self.ref.repository}/blobs/{digest}")
        if resp.status in (301, 302, 307, 308) and resp.headers.get("location"):
            resp = self.request("GET", urllib.parse.urljoin(
                f"{self.scheme}://{self.host}/v2/{self.ref.repository}/blobs/{digest}", resp.headers["location"]))
        if resp.status != 200:
            raise self._fail(resp, what)
        try:
            D.verify(resp.body, digest, what)
        except Exception as exc:
            raise RegistryError(str(exc)) from None
        return resp.body
