"""Where pushed content goes: a registry repository or an OCI layout directory.

Both take blobs (verified against their digest before they are sent or written),
manifests by digest, and an index under a tag.  Registry pushes use compat's own client:
oras-py cannot push an index, and its token auth re-sends a pull token when a push needs
``pull,push`` (research notes, registry-runtimes.md 1.1-1.2).
"""
from __future__ import annotations

import json
import os
import urllib.parse

from compat import limits
from compat.errors import BadInput, RegistryError
from compat.io import load_json, read_file, write_atomically
from compat.oci import digest as D, media
from compat.oci.layout import REF_NAME, Layout
from compat.oci.manifest import referrers_tag
from compat.oci.reference import Reference, check_repository, check_tag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


def _check_reference(reference: str, what: str) -> str:
    """A tag or a digest, checked before it becomes a URL or a layout entry."""
    return D.check(reference, what) if ":" in reference else check_tag(reference, what)


class RegistrySink:
    def __init__(self, ref: Reference, plain_http: bool = False, timeout: float = 30.0, deadline=None):
        self.ref = ref
        from compat.oci.registry import Registry  # start-up: a layout sink never loads the HTTP client
        self.registry = Registry(ref, plain_http=plain_http, timeout=timeout, deadline=deadline)

    def has_blob(self, digest: str) -> bool:
        D.check(digest, f"{self.ref.registry}/{self.ref.repository}: blob")
        r = self.registry.request("HEAD", f"/v2/{self.ref.repository}/blobs/{digest}")
        return r.status == 200

    def mount_blob(self, digest: str, from_repo: str) -> bool:
        D.check(digest, f"{self.ref.registry}/{self.ref.repository}: blob")
        check_repository(from_repo, f"{self.ref.registry}: mount source")
        r = self.registry.request("POST", f"/v2/{self.ref.repository}/blobs/uploads/?mount={digest}&from={from_repo}")
        return r.status == 201

    def put_blob(self, digest: str, data: bytes) -> None:
        D.verify(data, digest, f"blob {digest}")
        what = f"{self.ref.registry}/{self.ref.repository}"
        r = self.registry.request("POST", f"/v2/{self.ref.repository}/blobs/uploads/")
        if r.status != 202 or "location" not in r.headers:
            raise self.registry._fail(r, f"{what}: starting an upload")
        parts = urllib.parse.urlsplit(r.headers["location"])
        loc = parts.path + (f"?{parts.query}" if parts.query else "")     # only ever to the registry
        sep = "&" if "?" in loc else "?"
        r = self.registry.request("PUT", f"{loc}{sep}digest={digest}", {"Content-Type": "application/octet-stream"},
                                  data)
        if r.status != 201:
            raise self.registry._fail(r, f"{what}: uploading {digest}")

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        what = f"{self.ref.registry}/{self.ref.repository}:{reference}"
        _check_reference(reference, f"{self.ref.registry}/{self.ref.repository}")
        r = self.registry.request("PUT", f"/v2/{self.ref.repository}/manifests/{reference}",
                                  {"Content-Type": media_type}, data)
        if r.status != 201:
            raise self.registry._fail(r, f"{what}: pushing a manifest")
        digest = D.digest_of(data)
        said = r.headers.get("docker-content-digest")
        if said and said != digest:
            raise RegistryError(f"{what}: registry stored {said}, compat sent {digest}")
        return digest

    def referrers(self, digest: str) -> list:
        return self.registry.referrers(digest)

    def attach(self, data: bytes, descriptor: dict, subject_digest: str) -> str:
        """Push an artifact manifest; keep the referrers tag index when the registry does not
        index subjects itself (no ``OCI-Subject`` header in its answer)."""
        digest = D.check(descriptor.get("digest"), f"{self.ref.registry}/{self.ref.repository}: artifact")
        r = self.registry.request("PUT", f"/v2/{self.ref.repository}/manifests/{digest}",
                                  {"Content-Type": descriptor["mediaType"]}, data)
        if r.status != 201:
            raise self.registry._fail(r, f"{self.ref.registry}/{self.ref.repository}@{digest}: pushing an artifact")
        if r.headers.get("oci-subject"):
            return digest
        tag = referrers_tag(subject_digest)
        existing = [d for d in self.referrers(subject_digest) if d.get("digest") != digest]
        index = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": existing + [descriptor]}
        self.put_manifest(tag, json.dumps(index, indent=2).encode(), media.OCI_INDEX)
        return digest

    def close(self) -> None:
        self.registry.close()


class LayoutSink:
    """Writes an OCI image layout (creating it if needed); a tag is an index.json entry."""

    def __init__(self, ref: Reference):
        self.ref = ref
        self.path = ref.layout
        os.makedirs(os.path.join(self.path, "blobs", "sha256"), exist_ok=True)
        marker = os.path.join(self.path, "oci-layout")
        if not os.path.exists(marker):
            with open(marker, "w", encoding="utf-8") as fh:
                json.dump({"imageLayoutVersion": "1.0.0"}, fh)

    def _blob_path(self, digest: str) -> str:
        path = D.blob_path(self.path, digest, f"oci:{self.path}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(D.blob_path(self.path, digest, f"oci:{self.path}"))

    def _index(self) -> dict:
        """index.json as it is (bounded, a regular file), or a new empty index."""
        index_path = os.path.join(self.path, "index.json")
        if not os.path.lexists(index_path):
            return {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": []}
        top = load_json(read_file(index_path, limits.MANIFEST_BYTES, f"oci:{self.path}/index.json"),
                        f"oci:{self.path}/index.json")
        if not isinstance(top, dict) or not isinstance(top.get("manifests", []), list):
            raise BadInput(f"oci:{self.path}/index.json: not an image index")
        return top

    def mount_blob(self, digest: str, from_repo: str) -> bool:
        return False

    def put_blob(self, digest: str, data: bytes) -> None:
        D.verify(data, digest, f"blob {digest}")
        write_atomically(self._blob_path(digest), data)

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        digest = D.digest_of(data)
        self.put_blob(digest, data)
        if ":" in reference:            # by digest: the blob is all there is to write
            D.check(reference, f"oci:{self.path}")
            return digest
        index_path = os.path.join(self.path, "index.json")
        top = self._index()
        entries = [d for d in top.get("manifests", [])
                   if not isinstance(d, dict) or (d.get("annotations") or {}).get(REF_NAME) != reference]
        entries.append({"mediaType": media_type, "digest": digest, "size": len(data),
                        "annotations": {REF_NAME: reference}})
        top["manifests"] = entries
        write_atomically(index_path, json.dumps(top, indent=2).encode())
        return digest

    def referrers(self, digest: str) -> list:
        if not os.path.exists(os.path.join(self.path, "index.json")):
            return []
        return Layout(self.path).referrers(digest)

    def attach(self, data: bytes, descriptor: dict, subject_digest: str) -> str:
        """Write an artifact manifest and list it (untagged) in index.json, as oras does."""
        self.put_blob(descriptor["digest"], data)
        index_path = os.path.join(self.path, "index.json")
        top = self._index()
        if not any(isinstance(d, dict) and d.get("digest") == descriptor["digest"] for d in top["manifests"]):
            top.setdefault("manifests", []).append(descriptor)
            write_atomically(index_path, json.dumps(top, indent=2).encode())
        return descriptor["digest"]

    def close(self) -> None:
        pass


def open_sink(ref: Reference, plain_http: bool = False, timeout: float = 30.0, deadline=None):
    if ref.is_layout:
        return LayoutSink(ref)
    return RegistrySink(ref, plain_http=plain_http, timeout=timeout, deadline=deadline)


def copy_image(source, sink, digest: str, media_type: str, doc: dict, same_registry_repo: Optional[str]) -> None:
    """Make the image ``digest`` (its config, layers and manifest) present in ``sink``."""
    blobs = [doc.get("config")] + list(doc.get("layers") or [])
    for b in blobs:
        if not b or sink.has_blob(b["digest"]):
            continue
        if same_registry_repo and sink.mount_blob(b["digest"], same_registry_repo):
            continue
        size = b.get("size")
        limit = size if isinstance(size, int) and 0 <= size <= limits.COPY_BLOB_BYTES else limits.COPY_BLOB_BYTES
        sink.put_blob(b["digest"], source.blob(b["digest"], limit))
    data = source.manifest_bytes(digest)
    sink.put_manifest(digest, data, media_type)
