"""OCI image layouts (``oci:DIR[:tag]``, skopeo's transport): offline, verified reads."""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Tuple

from compat.errors import BadInput
from compat.oci import digest as D, manifest, media
from compat.oci.reference import Reference

REF_NAME = "org.opencontainers.image.ref.name"


class Layout:
    def __init__(self, path: str):
        self.path = path
        if not os.path.isdir(path):
            raise BadInput(f"oci:{path}: not a directory")
        try:
            with open(os.path.join(path, "oci-layout"), encoding="utf-8") as fh:
                marker = json.load(fh)
        except (OSError, ValueError):
            raise BadInput(f"oci:{path}: no valid oci-layout file (not an OCI image layout)") from None
        if not isinstance(marker, dict) or "imageLayoutVersion" not in marker:
            raise BadInput(f"oci:{path}: oci-layout has no imageLayoutVersion")

    def blob(self, digest: str) -> bytes:
        p = D.blob_path(self.path, digest, f"oci:{self.path}")
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise BadInput(f"oci:{self.path}: blob {digest}: {exc.strerror}") from None
        D.verify(data, digest, f"oci:{self.path} blob {digest}")
        return data

    def index_json(self) -> Dict:
        try:
            with open(os.path.join(self.path, "index.json"), "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise BadInput(f"oci:{self.path}/index.json: {exc.strerror}") from None
        _, doc = manifest.parse(data, f"oci:{self.path}/index.json", media.OCI_INDEX, descriptors=True)
        return doc

    def resolve(self, ref: Reference) -> Tuple[str, str, Dict]:
        """(digest, media type, document) the reference names."""
        if ref.digest:
            data = self.blob(ref.digest)
            mt, doc = manifest.parse(data, f"oci:{self.path}@{ref.digest}")
            return ref.digest, mt, doc
        top = self.index_json()
        entries = top["manifests"]
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
        for d in self.index_json().get("manifests", []):
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
