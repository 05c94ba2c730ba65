"""CUDA fat binaries (``.nv_fatbin``): which SASS and PTX a binary carries.

Layout (as cuobjdump reads it; reverse-engineered descriptions agree): containers of a
16-byte header (magic ``0xBA55ED50``, version 1, header size, payload size) followed by
entries; each entry header gives its kind (1 PTX, 2 ELF/cubin), its header size, its payload
size (u64 at +8), the code version (u16 minor at +24, u16 major at +26) and the SM number
(u32 at +28).  For PTX, the code version is the PTX ISA version (9.0 = CUDA 13.0).  An
uncompressed cubin carries ``.note.nv.tkinfo`` with the toolkit release
("Cuda compilation tools, release 13.0"): read when present, never decompressed.
"""
from __future__ import annotations

import re
import struct
from typing import List, NamedTuple, Optional

MAGIC = 0xBA55ED50
KIND_PTX, KIND_ELF = 1, 2

#: PTX ISA version -> the CUDA release that introduced it (PTX ISA release notes)
PTX_TO_CUDA = {(6, 0): "9.0", (6, 1): "9.1", (6, 2): "9.2", (6, 3): "10.0", (6, 4): "10.1", (6, 5): "10.2",
               (7, 0): "11.0", (7, 1): "11.1", (7, 2): "11.2", (7, 3): "11.3", (7, 4): "11.4", (7, 5): "11.5",
               (7, 6): "11.6", (7, 7): "11.7", (7, 8): "11.8", (8, 0): "12.0", (8, 1): "12.1", (8, 2): "12.2",
               (8, 3): "12.3", (8, 4): "12.4", (8, 5): "12.5", (8, 6): "12.7", (8, 7): "12.8", (8, 8): "12.9",
               (9, 0): "13.0", (9, 1): "13.1"}


class Entry(NamedTuple):
    kind: int                 # 1 PTX, 2 cubin
    sm: int                   # 80, 90, 100 ...
    version: tuple            # (major, minor): PTX ISA for PTX, cubin format for ELF
    toolkit: Optional[str]    # "13.0" from an uncompressed cubin's .note.nv.tkinfo

    @property
    def arch(self) -> str:
        return f"{'compute' if self.kind == KIND_PTX else 'sm'}_{self.sm}"


_TK = re.compile(rb"Cuda compilation tools, release (\d+\.\d+)")


def entries(section: bytes) -> List[Entry]:
    out: List[Entry] = []
    pos = 0
    while pos + 16 <= len(section):
        magic, _ver, hsize, fsize = struct.unpack_from("<IHHQ", section, pos)
        if magic != MAGIC:
            nxt = section.find(struct.pack("<I", MAGIC), pos + 1)     # containers are 8-aligned
            if nxt < 0:
                break
            pos = nxt
            continue
        end = min(pos + hsize + fsize, len(section))
        e = pos + hsize
        while e + 32 <= end:
            kind, _unk, ehs, psize = struct.unpack_from("<HHIQ", section, e)
            if ehs == 0:
                break
            minor, major, sm = struct.unpack_from("<HHI", section, e + 24)
            payload = section[e + ehs:e + ehs + psize]
            tk = None
            if kind == KIND_ELF and payload[:4] == b"\x7fELF":
                m = _TK.search(payload)
                tk = m.group(1).decode() if m else None
            if kind in (KIND_PTX, KIND_ELF) and 10 <= sm <= 2000:
                out.append(Entry(kind, sm, (major, minor), tk))
            e += ehs + psize
        pos = max(end, pos + 16)
    return out


def cuda_version(found: List[Entry]) -> Optional[str]:
    """The CUDA release that built these entries: a toolkit note, else the newest PTX ISA."""
    tks = [e.toolkit for e in found if e.toolkit]
    if tks:
        return max(tks, key=lambda v: tuple(int(x) for x in v.split(".")))
    ptx = [PTX_TO_CUDA.get(e.version) for e in found if e.kind == KIND_PTX]
    ptx = [v for v in ptx if v]
    return max(ptx, key=lambda v: tuple(int(x) for x in v.split("."))) if ptx else None
