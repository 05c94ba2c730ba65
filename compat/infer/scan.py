"""Read an image's layers as streams and collect evidence from its files.

Layers are read in order through ``tarfile`` (gzip, zstd or plain: :mod:`compat.infer.layer`), each
verified against its digest as it streams, from a layout's blob file or from the registry
(``Registry.open_blob``); nothing is unpacked. Whiteouts (``.wh.<name>``, ``.wh..wh..opq``)
remove what earlier layers put there (:mod:`compat.infer.tree`, linear in the layer), so the
evidence describes the final filesystem. Only ELF files (and pkg-config files) are read: an
ELF member of up to ``INFER_MEMORY_BYTES`` in memory, a larger one spooled to an unlinked
temporary file (runs of zeros left as holes), and then only the parts the readers ask for
(:mod:`compat.infer.blob`). Nothing is executed.
"""
from __future__ import annotations

import io
import posixpath
import sys
import tarfile
import tempfile
import time

from compat import limits
from compat.errors import BadInput, printable
from compat.infer import elf as E
from compat.infer.analyse import Finding, analyse_elf, analyse_pc  # noqa: F401 - Finding is re-exported
from compat.infer.blob import Blob
from compat.infer.layer import Hashing, Reader, open_tar
from compat.infer.tree import Tree
from compat.oci.digest import check
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional

MAX_FILE = limits.INFER_FILE_BYTES
_ZEROS = bytes(1 << 20)


class Layer(Record):
    digest: str
    size: int
    media_type: str


def _open_layer(source, layer: Layer):
    """A binary stream of the layer blob, from the layout or streamed from the registry, at
    most its declared size (verified while it is read, by :class:`compat.infer.layer.Hashing`)."""
    return Reader(source.open_blob(layer.digest, layer.size))


class Progress:
    """A one-line progress bar on a terminal for large images (stderr, only when a tty)."""

    def __init__(self, total: int, label: str, stream=None):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() and total > 64 << 20
        self.last = 0.0

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self.last > 0.2:
            self.last = now
            pct = 100 * self.done // max(self.total, 1)
            self.stream.write(f"\r{self.label}: {self.done >> 20}/{self.total >> 20} MB ({pct}%)")
            self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\r" + " " * 70 + "\r")


def _in_scope(path: str, scopes: Optional[Iterable[str]]) -> bool:
    if not scopes:
        return True
    p = "/" + path.lstrip("/")
    return any(p == s.rstrip("/") or p.startswith(s.rstrip("/") + "/") for s in scopes)


def layers_of(manifest: Dict) -> List[Layer]:
    """The manifest's layers, every digest checked before it is used (config too)."""
    if not isinstance(manifest, dict):
        raise BadInput("image manifest: not a JSON object")
    config = manifest.get("config")
    if isinstance(config, dict) and "digest" in config:
        check(config.get("digest"), "image manifest: config")
    raw = manifest.get("layers") or []
    if not isinstance(raw, list):
        raise BadInput("image manifest: 'layers' is not a list")
    out = []
    for i, l in enumerate(raw):
        if not isinstance(l, dict):
            raise BadInput(f"image manifest: layer {i} is not an object")
        digest = check(l.get("digest"), f"image manifest: layer {i}")
        size = l.get("size", 0)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadInput(f"image manifest: layer {i}: size {printable(size, 40)} is not a byte count")
        media_type = l.get("mediaType", "")
        out.append(Layer(digest, size, media_type if isinstance(media_type, str) else ""))
    return out


def scan(source, manifest: Dict, scopes: Optional[List[str]] = None, label: str = "") -> Dict[str, List[Finding]]:
    """{path: findings} of the image's final filesystem."""
    layers = layers_of(manifest)
    progress = Progress(sum(l.size for l in layers), f"scanning {label or 'image'}")
    tree = Tree()
    try:
        for layer in layers:
            _scan_layer(source, layer, tree, scopes, progress)
    finally:
        progress.close()
    return dict(sorted(tree.items()))                    # by path: stable evidence order


def _scan_layer(source, layer: Layer, tree: Tree, scopes, progress) -> None:
    raw = _open_layer(source, layer)
    stream = Hashing(raw, layer.digest, progress)
    try:
        with open_tar(stream, layer.size, f"layer {layer.digest}") as data, \
                tarfile.open(fileobj=data, mode="r:") as tar:
            for member in tar:
                _apply(tar, member, tree, scopes)
        stream.finish()
    except (tarfile.TarError, EOFError, OSError) as exc:
        stream.finish()                  # content that is not what the digest names says so first
        raise BadInput(f"layer {layer.digest}: not a readable tar stream ({printable(str(exc), 160)})") from None
    finally:
        raw.close()


def _apply(tar, member, tree: Tree, scopes) -> None:
    path = posixpath.normpath("/" + member.name).lstrip("/")
    base = posixpath.basename(path)
    parent = posixpath.dirname(path)
    if base == ".wh..wh..opq":                       # opaque directory: drop what lower layers had
        tree.clear_below(parent)
        return
    if base.startswith(".wh."):
        tree.remove(posixpath.join(parent, base[4:]))
        return
    if member.isdir():
        tree.discard(path)                           # a directory over a file: the file is gone
        return
    tree.remove(path)                                # a later layer replaces the file (or directory)
    if not member.isfile() or not _in_scope(path, scopes):
        return
    fh = tar.extractfile(member)
    if fh is None:
        return
    fh = getattr(fh, "raw", fh)                      # unbuffered: large reads come straight from the layer
    head = fh.read(4)
    if E.is_elf(head):
        if member.size > MAX_FILE:
            tree.set(path, [Finding("skipped", f"{member.size >> 20} MiB is over the {MAX_FILE >> 20} MiB limit",
                                    "/" + path, "size")])
            return
        with _spool(head, fh, member.size) as spooled:
            tree.set(path, analyse_elf("/" + path, Blob(spooled, member.size)))
    elif base.endswith(".pc") and "pkgconfig" in parent and member.size < 1 << 20:
        found = analyse_pc("/" + path, head + fh.read(1 << 20))
        if found:
            tree.set(path, found)


def _spool(head: bytes, fh, size: int):
    """The member's bytes as a seekable file: in memory up to INFER_MEMORY_BYTES, else an
    unlinked temporary file in which runs of zeros stay holes (a sparse 1 GiB ELF costs
    its real bytes, not 1 GiB)."""
    if size <= limits.INFER_MEMORY_BYTES:
        return io.BytesIO(head + fh.read(size - len(head)))
    out = tempfile.TemporaryFile(prefix="compat-infer-")
    out.write(head)
    while True:
        chunk = fh.read(len(_ZEROS))
        if not chunk:
            break
        if chunk == _ZEROS[:len(chunk)]:
            out.seek(len(chunk), io.SEEK_CUR)
        else:
            out.write(chunk)
    out.truncate(out.tell())
    return out
