"""Random access to one file's bytes with bounded reads: the ELF and fat-binary readers ask
for the parts they need (a header, a section) and never hold a whole file in memory.

A :class:`Blob` is a window on a seekable binary file (a spooled tar member, a cubin inside
a fat binary). Reads past the end are cut short, never an error; every read is bounded by
the caller's limit; ``finditer`` searches the whole window in chunks, so a regular
expression over a 1 GiB file costs 1 MiB of memory.
"""
from __future__ import annotations

import io
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator, Optional

CHUNK = 1 << 20
#: the longest match a chunked search can find across a chunk boundary
OVERLAP = 4096


class Blob:
    def __init__(self, fh, size: int, base: int = 0):
        self.fh, self.size, self.base = fh, max(0, size), base

    @classmethod
    def of(cls, data: bytes) -> "Blob":
        return cls(io.BytesIO(data), len(data))

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer at the end, none past it)."""
        if offset < 0 or n <= 0 or offset >= self.size:
            return b""
        n = min(n, self.size - offset)
        self.fh.seek(self.base + offset)
        return self.fh.read(n)

    def window(self, offset: int, size: int) -> "Blob":
        """The bytes ``[offset, offset + size)`` as a Blob of their own (clipped to this one)."""
        offset = min(max(0, offset), self.size)
        return Blob(self.fh, min(max(0, size), self.size - offset), self.base + offset)

    def finditer(self, pattern: "re.Pattern[bytes]", limit: Optional[int] = None) -> Iterator["re.Match[bytes]"]:
        """Matches of ``pattern`` over the first ``limit`` bytes, in order, each once; a
        match must be shorter than OVERLAP bytes."""
        end = self.size if limit is None else min(self.size, limit)
        pos = 0
        while pos < end:
            buf = self.read_at(pos, min(CHUNK + OVERLAP, end - pos))
            if not buf:
                return
            last = pos + CHUNK >= end
            for m in pattern.finditer(buf):
                if m.start() >= CHUNK and not last:
                    break                      # the next window finds it whole
                yield m
            pos += CHUNK

    def find(self, needle: bytes, start: int = 0) -> int:
        """Offset of the first ``needle`` at or after ``start``, or -1 (read in chunks)."""
        pos = max(0, start)
        while pos < self.size:
            buf = self.read_at(pos, CHUNK + len(needle))
            i = buf.find(needle)
            if i >= 0:
                return pos + i
            pos += CHUNK
        return -1

    def contains(self, needle: bytes, limit: Optional[int] = None) -> bool:
        return next(self.finditer(re.compile(re.escape(needle)), limit), None) is not None
