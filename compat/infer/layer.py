"""A layer blob as the stream of its tar bytes: verified against its digest while it is read,
decompressed in bounded steps (gzip with isal's inflate where installed, else zlib; zstd with
the ``zstandard`` package, or the stdlib's ``compression.zstd`` / ``backports.zstd``), and
read forward only. The compression is told by the blob's first bytes, not by its media type.

Every compressed layer is bounded alike: at most ``INFER_INFLATE_RATIO`` bytes out per byte
in (deflate's own ceiling, so no gzip layer can reach it) past a floor of
``INFER_INFLATE_FLOOR_BYTES``, and a zstd frame may not ask for a window over
``INFER_ZSTD_WINDOW_BYTES`` (the decoder's memory). Each step inflates at most what the
reader asked for: memory stays bounded whatever the ratio.
"""
from __future__ import annotations

import hashlib
import io
import zlib
from typing import Callable

from compat import limits
from compat.errors import BadInput

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: compressed bytes handed to the decompressor per step
STEP = 1 << 16
BUFFER = 1 << 20
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


class _Gunzip(io.RawIOBase):
    """gzip members (concatenated ones too) inflated in bounded steps (tarfile's own stream
    inflates a whole compressed block at once and then copies the rest of it on every small
    read, quadratic on the highly compressible layers images are made of)."""

    def __init__(self, raw, zmod=None):
        self.raw, self.zmod = raw, zmod or inflate_module()
        self.z = self.zmod.decompressobj(wbits=47)
        self.pending, self.done = b"", False

    def readable(self):
        return True

    def readinto(self, b):
        try:
            return self._readinto(b)
        except self.zmod.error as exc:
            raise CorruptLayer(f"gzip: {exc}") from None

    def _readinto(self, b):
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
            out = self.z.decompress(self.pending, len(b))
            self.pending = self.z.unconsumed_tail
            if out:
                b[:len(out)] = out
                return len(out)
            if ended and not self.z.eof:
                raise EOFError("compressed layer ends early")
        return 0


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


class _Unzstd(io.RawIOBase):
    def __init__(self, raw):
        self.reader, self.error = _zstd_reader(raw)

    def readable(self):
        return True

    def readinto(self, b):
        try:
            return self.reader.readinto(b)
        except self.error as exc:
            raise CorruptLayer(f"zstd: {exc}") from None


class _Bounded(io.RawIOBase):
    """Decompressed bytes, at most ``limit`` of them (a decompression bomb stops here)."""

    def __init__(self, raw, limit: int):
        self.raw, self.left, self.limit = raw, limit, limit

    def readable(self):
        return True

    def readinto(self, b):
        n = self.raw.readinto(b)
        self.left -= n
        if self.left < 0:
            raise CorruptLayer(f"decompresses to more than {self.limit >> 20} MiB, over "
                               f"{limits.INFER_INFLATE_RATIO}x its size (a decompression bomb)")
        return n


def tar_bytes(raw: io.BufferedReader, size: int) -> io.RawIOBase:
    """The layer's tar bytes from ``raw`` (its blob, ``size`` bytes): gzip or zstd
    decompressed, plain tar passed through."""
    magic = raw.peek(4)[:4]
    limit = max(limits.INFER_INFLATE_FLOOR_BYTES, limits.INFER_INFLATE_RATIO * size)
    if magic.startswith(GZIP_MAGIC):
        return _Bounded(_Gunzip(raw), limit)
    if magic == ZSTD_MAGIC:
        return _Bounded(_Unzstd(raw), limit)
    return raw


class Forward:
    """A stream that tarfile may ``seek`` forward on (skipping is reading): tarfile's
    random-access mode reads member data and headers straight from here in large reads,
    where its stream mode copies its buffer on every small read."""

    def __init__(self, raw):
        self.raw, self.pos = io.BufferedReader(raw, BUFFER), 0
        self.scratch = memoryview(bytearray(BUFFER))

    def tell(self):
        return self.pos

    def read(self, n=-1):
        data = self.raw.read(n)
        self.pos += len(data)
        return data

    def seek(self, pos, whence=0):
        if whence == 1:
            pos += self.pos
        if whence == 2 or pos < self.pos:
            raise OSError("a layer is read once, forward only")
        while self.pos < pos:                    # skipped bytes land in one reused buffer
            n = self.raw.readinto(self.scratch[:min(pos - self.pos, BUFFER)])
            if not n:
                break
            self.pos += n
        return self.pos


def open_tar(blob: io.RawIOBase, size: int) -> Forward:
    """The forward-only tar byte stream of a layer blob of ``size`` bytes (``blob``: its
    :class:`Hashing` stream)."""
    return Forward(tar_bytes(io.BufferedReader(blob, BUFFER), size))
