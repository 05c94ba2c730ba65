"""Digests: the one place a digest string is checked before it becomes a path, a URL or a
cache key (spec/oci.md, "Digests").

OCI's grammar (image-spec descriptor.md) allows other algorithms; compat accepts the two
registered ones it can verify, ``sha256`` (64 lower-case hex) and ``sha512`` (128), and
refuses everything else before any file is opened or any request is sent.
"""
from __future__ import annotations

import os
import re

from compat.errors import BadInput, printable

try:        # CPython's own sha256 (no OpenSSL): 3.12+ names it _sha2, 3.9-3.11 _sha256
    from _sha2 import sha256 as _builtin_sha256
except ImportError:
    try:
        from _sha256 import sha256 as _builtin_sha256
    except ImportError:
        _builtin_sha256 = None

#: Up to this size sha256 uses CPython's builtin code: importing hashlib loads libcrypto
#: (~3.4 ms), which hashes ~5x faster, so it pays for itself only above ~1 MB; manifests,
#: indexes and configs are a few KB (measured: spec/oci.md, "Start-up").
BUILTIN_SHA256_BYTES = 64 * 1024

DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


def is_digest(value) -> bool:
    return isinstance(value, str) and DIGEST_RE.match(value) is not None


def check(value, what: str) -> str:
    """``value`` when it is a well-formed sha256/sha512 digest, else BadInput naming ``what``."""
    if not is_digest(value):
        raise BadInput(f"{what}: malformed digest {printable(value, 80)}")
    return value


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    if algorithm == "sha256" and len(data) <= BUILTIN_SHA256_BYTES and _builtin_sha256 is not None:
        return f"sha256:{_builtin_sha256(data).hexdigest()}"
    import hashlib      # start-up: libcrypto (~3.4 ms) loads only for sha512 or data over 64 KiB

    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify(data: bytes, digest: str, what: str) -> None:
    """Every fetched blob is checked against the digest that named it."""
    check(digest, what)
    actual = digest_of(data, digest.split(":", 1)[0])
    if actual != digest:
        raise BadInput(f"{what}: content does not match its digest (expected {digest}, got {actual})")


def blob_path(root: str, digest: str, what: str) -> str:
    """``root/blobs/<alg>/<hex>`` for a checked digest: the only way a digest becomes a path."""
    algorithm, _, hexpart = check(digest, what).partition(":")
    return os.path.join(root, "blobs", algorithm, hexpart)
