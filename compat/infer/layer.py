"""A layer blob as the stream of its tar bytes: verified against its digest while it is read,
decompressed in bounded steps (gzip with isal's inflate where installed, else zlib; zstd with
the ``zstandard`` package, or the stdlib's ``compression.zstd`` / ``backports.zstd``) on a
second thread a few chunks ahead of the tar reader, and read forward only. The compression is
told by the blob's first bytes, not by its media type.

Every compressed layer is bounded alike: at most ``INFER_INFLATE_RATIO`` bytes out per byte
in (deflate's own ceiling, so no gzip layer can reach it) past a floor of
``INFER_INFLATE_FLOOR_BYTES``, and a zstd frame may not ask for a window over
``INFER_ZSTD_WINDOW_BYTES`` (the decoder's memory). Each step inflates at most what the
reader asked for: memory stays bounded whatever the ratio.
"""
from __future__ import annotations

import hashlib
import io
import queue
import sys
import threading
import zlib

from compat import limits
from compat.errors import BadInput

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: compressed bytes handed to the decompressor per step
STEP = 1 << 16
BUFFER = 1 << 20
#: decompressed chunks (BUFFER bytes at most) read ahead of the tar reader
AHEAD = 4
ZSTD_INSTALL = "pip install 'hpc-compat[zstd]' (the zstandard package)"


class CorruptLayer(OSError):
    """The compressed stream is damaged or over a bound (what went wrong, in words)."""


class Hashing(io.RawIOBase):
    """Reads through to ``raw`` while hashing; checks the digest when the stream ends."""

    def __init__(self, raw, digest: str, progress: Callable[[int], None]):
        self.raw, self.digest, self.progress = raw, digest, progress
        self.h = hashlib.new(digest.split(":")[0])

    def readable(self):
        return True

    def readinto(self, b):
        n = self.raw.readinto(b)
        if n:
            self.h.update(memoryview(b)[:n])
            self.progress(n)
        return n

    def finish(self):
        while self.read(BUFFER):
            pass
        got = f"{self.digest.split(':')[0]}:{self.h.hexdigest()}"
        if got != self.digest:
            raise BadInput(f"layer {self.digest}: content does not match its digest (got {got})")


class Reader(io.RawIOBase):
    """A raw stream over anything with ``read(n)`` (a registry blob response)."""

    def __init__(self, obj):
        self.obj = obj

    def readable(self):
        return True

    def readinto(self, b):
        data = self.obj.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def close(self):
        try:
            self.obj.close()
        finally:
            super().close()


def inflate_module():
    """isal's zlib (the same API, inflate 2-3x faster) where installed, else the stdlib's."""
    try:
        from isal import isal_zlib  # start-up: optional dependency (extra `fast`), only when a layer is read
    except ImportError:
        return zlib
    return isal_zlib


class _Gunzip:
    """gzip members (concatenated ones too) inflated in bounded steps (tarfile's own stream
    inflates a whole compressed block at once and then copies the rest of it on every small
    read, quadratic on the highly compressible layers images are made of)."""

    def __init__(self, raw, zmod=None):
        self.raw, self.zmod = raw, zmod or inflate_module()
        self.z = self.zmod.decompressobj(wbits=47)
        self.pending, self.done = b"", False

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (b"" at the end), as inflated: never copied here."""
        try:
            return self._read(n)
        except self.zmod.error as exc:
            raise CorruptLayer(f"gzip: {exc}") from None

    def _read(self, n: int) -> bytes:
        while not self.done:
            if self.z.eof:                       # concatenated gzip members
                self.pending = self.z.unused_data + self.pending
                self.z = self.zmod.decompressobj(wbits=47)
                if not self.pending:
                    self.pending = self.raw.read(STEP)
                    self.done = not self.pending     # the last member ended with the blob
                    continue
            ended = False
            if not self.pending:
                self.pending = self.raw.read(STEP)
                ended = not self.pending         # still ask: a long match may hold output back
            out = self.z.decompress(self.pending, n)
            self.pending = self.z.unconsumed_tail
            if out:
                return out
            if ended and not self.z.eof:
                raise EOFError("compressed layer ends early")
        return b""


def _zstd_reader(raw):
    """(a reader of the zstd frames in ``raw``, its error class); the window is bounded."""
    try:
        import zstandard  # start-up: optional dependency (extras `zstd`, `fast`), only for zstd layers
    except ImportError:
        pass
    else:
        d = zstandard.ZstdDecompressor(max_window_size=limits.INFER_ZSTD_WINDOW_BYTES)
        return d.stream_reader(raw, read_size=STEP, read_across_frames=True, closefd=False), zstandard.ZstdError
    std = _stdlib_zstd()
    if std is None:
        raise BadInput(f"zstd-compressed layer: reading it needs zstd support: {ZSTD_INSTALL}")
    options = {std.DecompressionParameter.window_log_max: limits.INFER_ZSTD_WINDOW_BYTES.bit_length() - 1}
    return std.ZstdFile(raw, options=options), std.ZstdError


def _stdlib_zstd():
    """Python 3.14's ``compression.zstd``, or its backport, or None."""
    try:
        from compression import zstd  # start-up: only for zstd layers without the zstandard package
        return zstd
    except ImportError:
        pass
    try:
        from backports import zstd  # start-up: only for zstd layers without the zstandard package
        return zstd
    except ImportError:
        return None


class _Unzstd:
    def __init__(self, raw):
        self.reader, self.error = _zstd_reader(raw)

    def read(self, n: int) -> bytes:
        try:
            return self.reader.read(n)
        except self.error as exc:
            raise CorruptLayer(f"zstd: {exc}") from None


class _Bounded:
    """Decompressed bytes, at most ``limit`` of them (a decompression bomb stops here)."""

    def __init__(self, source, limit: int):
        self.source, self.left, self.limit = source, limit, limit

    def read(self, n: int) -> bytes:
        data = self.source.read(n)
        self.left -= len(data)
        if self.left < 0:
            raise CorruptLayer(f"decompresses to more than {self.limit >> 20} MiB, over "
                               f"{limits.INFER_INFLATE_RATIO}x its size (a decompression bomb)")
        return data


def tar_bytes(raw: io.BufferedReader, size: int):
    """The layer's tar bytes from ``raw`` (its blob, ``size`` bytes), as an object with
    ``read(n)``: gzip or zstd decompressed, plain tar passed through."""
    magic = raw.peek(4)[:4]
    limit = max(limits.INFER_INFLATE_FLOOR_BYTES, limits.INFER_INFLATE_RATIO * size)
    if magic.startswith(GZIP_MAGIC):
        return _Bounded(_Gunzip(raw), limit)
    if magic == ZSTD_MAGIC:
        return _Bounded(_Unzstd(raw), limit)
    return raw


class Forward:
    """The layer's tar bytes for tarfile's random-access mode, which reads member data and
    headers from here in large reads and may ``seek`` forward (skipping is reading; its
    stream mode copies its buffer on every small read).

    A second thread reads and decompresses up to AHEAD chunks ahead of the reader: inflating
    and hashing release the GIL, so on two cores they overlap the reading of the ELF files.
    Chunks are handed over as the decompressor made them; a whole-chunk read is not copied,
    skipped bytes never are. An error on that thread is raised to the reader. ``close`` (or
    leaving ``with``) stops the thread before anything else reads the blob."""

    def __init__(self, source):
        self.source, self.pos = source, 0
        self.chunk, self.at, self.ended = b"", 0, False
        self.queue: "queue.Queue" = queue.Queue(AHEAD)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._fill, name="compat-layer-reader", daemon=True)
        self.thread.start()

    def _fill(self):
        try:
            while not self.stop.is_set():
                data = self.source.read(BUFFER)
                self._put(data)
                if not data:
                    return
        except Exception as exc:                 # handed to the reader, raised there
            self._put(exc)

    def _put(self, item):
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _next(self) -> bool:
        """The next chunk in ``self.chunk``; False at the end."""
        if self.ended:
            return False
        item = self.queue.get()
        if isinstance(item, Exception):
            self.ended = True
            raise item
        if not item:
            self.ended = True
            return False
        self.chunk, self.at = item, 0
        return True

    def tell(self):
        return self.pos

    def read(self, n=-1):
        want = n if n is not None and n >= 0 else sys.maxsize
        parts = []
        while want > 0 and (self.at < len(self.chunk) or self._next()):
            piece = self.chunk[self.at:self.at + want] if self.at or want < len(self.chunk) else self.chunk
            parts.append(piece)
            self.at += len(piece)
            want -= len(piece)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.pos += len(data)
        return data

    def seek(self, pos, whence=0):
        if whence == 1:
            pos += self.pos
        if whence == 2 or pos < self.pos:
            raise OSError("a layer is read once, forward only")
        while self.pos < pos and (self.at < len(self.chunk) or self._next()):
            step = min(pos - self.pos, len(self.chunk) - self.at)
            self.at += step
            self.pos += step
        return self.pos

    def close(self):
        self.stop.set()
        self.thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_tar(blob: io.RawIOBase, size: int, what: str = "layer") -> Forward:
    """The forward-only tar byte stream of ``what``, a layer blob of ``size`` bytes
    (``blob``: its :class:`Hashing` stream), read ahead on a second thread: use it in ``with``."""
    try:
        source = tar_bytes(io.BufferedReader(blob, BUFFER), size)
    except BadInput as exc:                      # a compression this installation cannot read
        raise BadInput(f"{what}: {exc}") from None
    return Forward(source)
