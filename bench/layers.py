"""The layers the inference rows scan: this machine's shared libraries
(/usr/lib/x86_64-linux-gnu, about 150 MB of ELF files) as one tar, compressed with gzip
(level 1, as before issue 13, so the figures compare) and with zstd (level 3, zstd's
default), each in an OCI layout with its manifest beside it (``manifest.json``) and the tar's
content size (``content.json``)."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from typing import Dict, Optional

LIBDIR = "/usr/lib/x86_64-linux-gnu"
CONTENT_BYTES = 150 << 20
MEDIA = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip", "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}


def library_tar() -> Optional[tuple]:
    """(tar bytes, bytes of file content) of up to CONTENT_BYTES of shared libraries."""
    if not os.path.isdir(LIBDIR):
        return None
    raw, total = io.BytesIO(), 0
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in sorted(os.listdir(LIBDIR)):
            path = os.path.join(LIBDIR, name)
            if not os.path.isfile(path) or os.path.islink(path) or ".so" not in name:
                continue
            size = os.path.getsize(path)
            if total + size > CONTENT_BYTES:
                continue
            tar.add(path, arcname="usr/lib/x86_64-linux-gnu/" + name)
            total += size
    return raw.getvalue(), total


def compress(tar: bytes, how: str) -> Optional[bytes]:
    if how == "gzip":
        return gzip.compress(tar, compresslevel=1, mtime=0)
    if shutil.which("zstd"):
        return subprocess.run(["zstd", "-q", "-3", "-c"], input=tar, capture_output=True, check=True).stdout
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard.ZstdCompressor(level=3).compress(tar)


def layout(root: str, how: str, tar: bytes, content: int) -> Optional[str]:
    """An OCI layout holding ``tar`` compressed ``how`` (gzip, zstd), or None where this
    machine cannot make it."""
    blob = compress(tar, how)
    if blob is None:
        return None
    out = os.path.join(root, how)
    os.makedirs(os.path.join(out, "blobs", "sha256"))
    d = "sha256:" + hashlib.sha256(blob).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", d[7:]), "wb") as fh:
        fh.write(blob)
    files: Dict[str, object] = {
        "oci-layout": {"imageLayoutVersion": "1.0.0"},
        "index.json": {"schemaVersion": 2, "manifests": []},
        "manifest.json": {"layers": [{"digest": d, "size": len(blob), "mediaType": MEDIA[how]}]},
        "content.json": {"bytes": content},
    }
    for name, doc in files.items():
        with open(os.path.join(out, name), "w") as fh:
            json.dump(doc, fh)
    return out
