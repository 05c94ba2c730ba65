"""Which scheme a loopback registry answered on, remembered between runs (spec/oci.md,
"Transport").

A registry on this machine (``localhost``, ``127.0.0.0/8``, ``[::1]``) is tried over plain
HTTP first, because that is what a local registry usually speaks and a TLS attempt that
fails costs a CA bundle load, a handshake and a second connection. Whichever scheme
answered is written to ``<cache dir>/schemes/<host>_<port>`` (the text ``http`` or
``https``), so the next run goes straight to it. Only loopback registries are remembered:
every other registry is HTTPS unless the user says otherwise, and nothing here changes that.
"""
from __future__ import annotations

import os

from compat import limits
from compat.errors import BadInput
from compat.io import cache_dir, read_file, write_atomically

SCHEMES = ("http", "https")


def _enabled() -> bool:
    return os.environ.get("COMPAT_NO_CACHE", "") in ("", "0")


def _path(registry: str) -> str:
    """The memory's file; ``registry`` is a checked ``host[:port]`` (a name, an IPv4
    address or a bracketed IPv6 one), so the name below holds no separator."""
    name = registry.lower().replace("[", "").replace("]", "").replace(":", "_")
    return os.path.join(cache_dir(), "schemes", name)


def recall(registry: str):
    """The scheme ``registry`` answered on last time, or None (never asked, unreadable,
    not a regular file, or anything but ``http``/``https``)."""
    if not _enabled():
        return None
    try:
        text = read_file(_path(registry), limits.SCHEME_FILE_BYTES, "scheme memory").strip()
    except BadInput:
        return None
    scheme = text.decode("ascii", "replace")
    return scheme if scheme in SCHEMES else None


def remember(registry: str, scheme: str) -> None:
    """Write what ``registry`` answered on; a cache directory that cannot be written only
    costs the next run a second try."""
    if not _enabled() or scheme not in SCHEMES:
        return
    path = _path(registry)
    try:
        os.makedirs(cache_dir(), mode=0o700, exist_ok=True)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_atomically(path, scheme.encode("ascii"))
    except OSError:
        pass
