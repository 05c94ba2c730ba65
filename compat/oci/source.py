"""Where an index comes from: a registry (cached by digest) or an OCI layout."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

from compat.oci import manifest
from compat.oci.cache import ManifestCache
from compat.oci.reference import Reference


class Source:
    """resolve() -> (digest, media type, document); fetch(digest, media type) -> document."""

    def __init__(self, ref: Reference, plain_http: bool = False, timeout: float = 10.0,
                 cache: Optional[ManifestCache] = None, env=None):
        self.ref = ref
        self.cache = cache if cache is not None else ManifestCache()
        if ref.is_layout:
            from compat.oci.layout import Layout
            self.layout = Layout(ref.layout)
            self.registry = None
        else:
            from compat.oci.registry import Registry
            self.layout = None
            self.registry = Registry(ref, plain_http=plain_http, timeout=timeout, env=env)

    def resolve(self) -> Tuple[str, str, Dict]:
        if self.layout is not None:
            return self.layout.resolve(self.ref)
        digest = self.ref.digest or self.registry.head_digest(self.ref.reference)
        if digest:
            cached = self.cache.get(digest)
            if cached is not None:
                mt, doc = manifest.parse(cached, f"{self.ref} (cached {digest})")
                return digest, mt, doc
        digest, ctype, data = self.registry.get_manifest(digest or self.ref.reference)
        mt, doc = manifest.parse(data, str(self.ref), ctype)
        self.cache.put(digest, data)
        return digest, mt, doc

    def fetch(self, digest: str, media_type: Optional[str] = None) -> Dict:
        if self.layout is not None:
            return self.layout.fetch(digest, media_type)
        data = self.cache.get(digest)
        if data is None:
            _, _, data = self.registry.get_manifest(digest)
            self.cache.put(digest, data)
        _, doc = manifest.parse(data, f"{self.ref.registry}/{self.ref.repository}@{digest}", media_type)
        return doc

    def close(self) -> None:
        if self.registry is not None:
            self.registry.close()
