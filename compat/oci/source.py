"""Where an index comes from: a registry (cached by digest) or an OCI layout."""
from __future__ import annotations

import json as _json

from compat import limits
from compat.errors import BadInput
from compat.oci import digest as D, manifest, media, sif
from compat.oci.cache import ManifestCache
from compat.oci.reference import Reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple


class Source:
    """resolve() -> (digest, media type, document); fetch(digest, media type) -> document."""

    def __init__(self, ref: Reference, plain_http: bool = False, timeout: float = 10.0,
                 cache: Optional[ManifestCache] = None, env=None, deadline=None):
        """``timeout``: the budget of all network work (see Registry); ``deadline``: a
        compat.oci.http.Deadline shared by every client of one command."""
        self.ref = ref
        self.cache = cache if cache is not None else ManifestCache()
        if ref.is_layout:
            # start-up: a layout never loads the HTTP client, a registry never the layout reader
            from compat.oci.layout import Layout
            self.layout = Layout(ref.layout)
            self.registry = None
        else:
            # start-up: a layout never loads the HTTP client, a registry never the layout reader
            from compat.oci.registry import Registry
            self.layout = None
            self.registry = Registry(ref, plain_http=plain_http, timeout=timeout, env=env, deadline=deadline)

    def resolve(self, descriptors: bool = True) -> Tuple[str, str, Dict]:
        """(digest, media type, document) of the reference. ``descriptors``: refuse an index
        with a malformed descriptor (bad input); selection passes False, and excludes such a
        descriptor with its reason instead (``manifest.check_index``)."""
        digest, mt, doc = self._resolve()
        if descriptors and mt in media.INDEXES:
            manifest.check_index(doc, str(self.ref))
        return digest, mt, doc

    def _resolve(self) -> Tuple[str, str, Dict]:
        if self.layout is not None:
            return self.layout.resolve(self.ref)
        digest = self.ref.digest or self.registry.head_digest(self.ref.reference)
        if digest:
            cached = self._cached(digest, None, f"{self.ref} (cached {digest})")
            if cached is not None:
                return (digest, *cached)
        digest, ctype, data = self.registry.get_manifest(digest or self.ref.reference)
        mt, doc = manifest.parse(data, str(self.ref), ctype)
        self.cache.put(digest, data)
        return digest, mt, doc

    def fetch(self, digest: str, media_type: Optional[str] = None) -> Dict:
        if self.layout is not None:
            return self.layout.fetch(digest, media_type)
        what = f"{self.ref.registry}/{self.ref.repository}@{digest}"
        cached = self._cached(digest, media_type, what)
        if cached is not None:
            return cached[1]
        _, _, data = self.registry.get_manifest(digest)
        _, doc = manifest.parse(data, what, media_type)
        self.cache.put(digest, data)
        return doc

    def _cached(self, digest: str, media_type: Optional[str], what: str):
        """(media type, document) from the cache; an entry that does not parse is a miss."""
        data = self.cache.get(digest)
        if data is None:
            return None
        try:
            return manifest.parse(data, what, media_type)
        except BadInput:
            return None

    def blob(self, digest: str, limit: int = limits.CONFIG_BYTES) -> bytes:
        """A verified blob (a config, an artifact layer) of at most ``limit`` bytes, read whole."""
        if self.layout is not None:
            return self.layout.blob(digest, limit)
        return self.registry.get_blob(digest, limit)

    def open_blob(self, digest: str, size: Optional[int] = None):
        """A blob (a layer) as a binary file read in pieces, from the layout or streamed from
        the registry (at most ``size`` bytes when given); the caller verifies the digest
        while it reads."""
        if self.layout is not None:
            return self.layout.open_blob(digest)
        return self.registry.open_blob(digest, size)

    def manifest_bytes(self, digest: str) -> bytes:
        """The exact bytes of a manifest, verified (what a copy must push unchanged)."""
        if self.layout is not None:
            return self.layout.blob(digest)
        data = self.cache.get(digest)
        if data is None:
            _, _, data = self.registry.get_manifest(digest)
            self.cache.put(digest, data)
        return data

    def referrers(self, digest: str, artifact_type: Optional[str] = None) -> list:
        """Referrer descriptors that name something to fetch (an object with a well-formed
        digest); their other fields are for the reader to judge (an NFD artifact with a
        malformed descriptor excludes its candidate, with the reason)."""
        found = self.layout.referrers(digest, artifact_type) if self.layout is not None \
            else self.registry.referrers(digest, artifact_type)
        return [d for d in found if isinstance(d, dict) and D.is_digest(d.get("digest"))]

    def sif_header(self, doc: Dict, what: str = "SIF") -> sif.Sif:
        """The header and descriptor table of the SIF a SIF artifact manifest holds: the
        first bytes of its one layer, streamed and closed after at most
        ``limits.SIF_META_BYTES`` (32,176 for the layout sylabs/sif writes). Not digest-verified:
        that needs the whole file (spec/oci.md, "SIF children")."""
        layer = sif.layer_of(doc)
        fh = self.open_blob(layer["digest"], layer["size"])
        try:
            head = _read_up_to(fh, sif.HEADER_BYTES)
            head += _read_up_to(fh, sif.meta_length(head, what) - len(head))
        finally:
            fh.close()
        return sif.parse(head, layer["size"], what)

    def sif_descriptor(self, desc):
        """An index entry as selection needs it when it is a SIF artifact without a platform:
        its manifest fetched (one request, cached by digest; only for entries that state no
        platform, which compat would otherwise skip), ``artifactType`` and the platform from
        the SIF header filled in. Any other entry comes back unchanged."""
        if not isinstance(desc, dict) or desc.get("platform") or "_walk" in desc or \
                desc.get("mediaType") not in media.IMAGE_MANIFESTS or manifest.descriptor_problems(desc) or \
                (desc.get("artifactType") and not media.is_sif(desc)):
            return desc
        try:
            doc = self.fetch(desc["digest"], desc["mediaType"])
        except BadInput:
            return desc                    # the ranking says it has no platform
        if not sif.is_sif_manifest(doc):
            return desc
        out = dict(desc, artifactType=media.SIF_CONFIG)
        try:
            plat = sif.platform(self.sif_header(doc, f"SIF {desc['digest'][:19]}"))
        except BadInput as exc:
            out["_walk"] = ("error", str(exc))
            return out
        if plat:
            out["platform"] = plat
        return out

    def descriptor_of(self, digest: str, mt: str, doc: Dict) -> Dict:
        """The one candidate of a reference that names a single manifest: its platform from
        its config (a SIF: from its header), its annotations, and the SIF artifact type."""
        try:
            plat = self.platform_of(doc)
        except BadInput:
            plat = None
        desc = {"mediaType": mt, "digest": digest, "size": 0, "platform": plat,
                "annotations": doc.get("annotations") or {}}
        if sif.is_sif_manifest(doc):
            desc["artifactType"] = media.SIF_CONFIG
        return desc

    def platform_of(self, doc: Dict) -> Optional[Dict]:
        """The platform an image manifest's config declares (os, architecture, variant); for
        a SIF artifact, the SIF header's."""
        if sif.is_sif_manifest(doc):
            return sif.platform(self.sif_header(doc))
        cfg = doc.get("config") or {}
        if not cfg.get("digest"):
            return None
        try:
            c = _json.loads(self.blob(cfg["digest"]))
        except ValueError:
            return None
        if not isinstance(c, dict) or not c.get("architecture") or not c.get("os"):
            return None
        p = {"architecture": c["architecture"], "os": c["os"]}
        for key in ("variant", "os.version", "os.features"):
            if c.get(key):
                p[key] = c[key]
        return p

    def close(self) -> None:
        if self.registry is not None:
            self.registry.close()


def _read_up_to(fh, n: int) -> bytes:
    """At most ``n`` bytes of a stream (fewer only at its end)."""
    out = b""
    while len(out) < n:
        piece = fh.read(n - len(out))
        if not piece:
            break
        out += piece
    return out
