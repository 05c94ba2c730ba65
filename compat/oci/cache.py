"""Content-addressed cache of manifests and indexes, keyed by digest.

Safe by construction: an entry is the bytes whose digest is its name, re-verified on every
read; a tag is never cached, so ``select`` by tag costs one HEAD request when warm.
"""
from __future__ import annotations

import os

from compat import limits
from compat.errors import BadInput
from compat.io import cache_dir, write_atomically
from compat.io import read_file
from compat.oci import digest as D

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


class ManifestCache:
    def __init__(self, enabled: Optional[bool] = None):
        if enabled is None:
            enabled = os.environ.get("COMPAT_NO_CACHE", "") in ("", "0")
        self.enabled = enabled
        self.root = os.path.join(cache_dir(), "manifests")

    def _path(self, digest: str) -> str:
        return D.blob_path(self.root, digest, "manifest cache")

    def get(self, digest: str) -> Optional[bytes]:
        if not self.enabled or not D.is_digest(digest):
            return None
        try:       # a regular file of at most a manifest's size: a FIFO or /dev/zero is a miss
            data = read_file(self._path(digest), limits.MANIFEST_BYTES, "manifest cache")
        except BadInput:
            return None
        if D.digest_of(data, digest.split(":")[0]) != digest:
            return None      # corrupted entry: ignore it, it will be rewritten
        return data

    def put(self, digest: str, data: bytes) -> None:
        if not self.enabled:
            return
        path = self._path(digest)
        try:
            os.makedirs(cache_dir(), mode=0o700, exist_ok=True)    # private to the user, like its files
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            write_atomically(path, data)
        except OSError:
            pass
