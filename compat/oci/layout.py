"""OCI image layouts (``oci:DIR[:tag]``, skopeo's transport): offline, verified reads."""
from __future__ import annotations

import json
import os
import stat

from compat import limits
from compat.errors import BadInput, printable
from compat.io import read_file
from compat.oci import digest as D, manifest, media
from compat.oci.reference import Reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

REF_NAME = "org.opencontainers.image.ref.name"


class Layout:
    def __init__(self, path: str):
        self.path = path
        self.where = f"oci:{printable(path, 120)}"
        if not os.path.isdir(path):
            raise BadInput(f"{self.where}: " + ("not a directory" if os.path.lexists(path) else "no such directory"))
        self._real = os.path.realpath(path)
        try:
            marker = json.loads(read_file(os.path.join(path, "oci-layout"), 4096, "oci-layout"))
        except (BadInput, ValueError):
            raise BadInput(f"{self.where}: no valid oci-layout file (not an OCI image layout)") from None
        if not isinstance(marker, dict) or "imageLayoutVersion" not in marker:
            raise BadInput(f"{self.where}: oci-layout has no imageLayoutVersion")

    def blob(self, digest: str, limit: int = limits.MANIFEST_BYTES) -> bytes:
        """The verified bytes of a blob of at most ``limit`` bytes (a manifest by default).
        The digest is checked before it becomes a path, and a blob that resolves outside the
        layout (a symbolic link) is missing: no message tells anything about files outside."""
        what = f"{self.where}: blob {D.check(digest, self.where)}"
        data = read_file(self._inside(D.blob_path(self.path, digest, self.where), what), limit, what)
        if D.digest_of(data, digest.split(":", 1)[0]) != digest:
            raise BadInput(f"{what}: content does not match its digest")
        return data

    def _inside(self, path: str, what: str) -> str:
        """``path`` when it resolves inside the layout; else BadInput that says only that."""
        if not os.path.realpath(path).startswith(self._real + os.sep):
            raise BadInput(f"{what}: not in the layout")
        return path

    def open_blob(self, digest: str):
        """A blob as a binary file (a layer, read in pieces): a regular file inside the
        layout. The caller verifies the digest while it reads."""
        what = f"{self.where}: blob {D.check(digest, self.where)}"
        path = self._inside(D.blob_path(self.path, digest, self.where), what)
        try:
            fh = open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)), "rb")
        except OSError as exc:
            raise BadInput(f"{what}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            fh.close()
            raise BadInput(f"{what}: not a regular file")
        return fh

    def index_json(self) -> Dict:
        what = f"{self.where}/index.json"
        data = read_file(self._inside(os.path.join(self.path, "index.json"), what), limits.MANIFEST_BYTES, what)
        _, doc = manifest.parse(data, f"{self.where}/index.json", media.OCI_INDEX)
        return doc

    def entries(self) -> list:
        """The well-formed descriptors of ``index.json`` (its tags and attached artifacts); a
        malformed one names nothing to read, and is reported where the index is selected from
        or validated."""
        return [d for d in self.index_json()["manifests"] if not manifest.descriptor_problems(d)]

    def resolve(self, ref: Reference) -> Tuple[str, str, Dict]:
        """(digest, media type, document) the reference names."""
        if ref.digest:
            data = self.blob(ref.digest)
            mt, doc = manifest.parse(data, f"oci:{self.path}@{ref.digest}")
            return ref.digest, mt, doc
        entries = self.entries()
        if ref.tag:
            hits = [d for d in entries if (d.get("annotations") or {}).get(REF_NAME) == ref.tag]
            if not hits:
                names = sorted({(d.get("annotations") or {}).get(REF_NAME, "") for d in entries} - {""})
                raise BadInput(f"oci:{self.path}: no image tagged {ref.tag!r} (tags: {', '.join(names) or 'none'})")
            desc = hits[0]
        else:
            images = [d for d in entries if not d.get("artifactType")]   # attached artifacts are not images
            if len(images) != 1:
                raise BadInput(f"oci:{self.path}: holds {len(images)} images; name one with oci:{self.path}:TAG")
            desc = images[0]
        data = self.blob(desc["digest"])
        mt, doc = manifest.parse(data, f"oci:{self.path} {desc['digest']}", desc.get("mediaType"))
        return desc["digest"], mt, doc

    def referrers(self, digest: str, artifact_type: Optional[str] = None) -> list:
        """index.json entries whose manifest names ``digest`` as its subject (as oras writes them)."""
        out = []
        for d in self.index_json()["manifests"]:
            if not isinstance(d, dict) or not D.is_digest(d.get("digest")):
                continue                   # names nothing to read; anything else is the reader's to judge
            if artifact_type and d.get("artifactType") != artifact_type:
                continue
            try:
                subject = (json.loads(self.blob(d["digest"])).get("subject") or {}).get("digest")
            except (BadInput, ValueError, KeyError, AttributeError):
                continue
            if subject == digest:
                out.append(d)
        return out

    def fetch(self, digest: str, media_type: Optional[str] = None) -> Dict:
        _, doc = manifest.parse(self.blob(digest), f"oci:{self.path}@{digest}", media_type)
        return doc
