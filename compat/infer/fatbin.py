"""CUDA fat binaries (``.nv_fatbin``): which SASS and PTX a binary carries.

Layout (as cuobjdump reads it; the public decoders agree): containers of a 16-byte header
(magic ``0xBA55ED50``, version 1, header size, payload size) followed by entries. Each entry
header gives its kind (u16 at +0: 1 PTX, 2 ELF/cubin), its header size (u32 at +4), its
payload size (u64 at +8), the code version (u16 minor at +24, u16 major at +26), the SM
number (u32 at +28) and flags (u64 at +40: 0x1 64-bit, 0x10 Linux, 0x2000 compressed).

Arch- and family-specific code (``sm_90a``, ``sm_100f``, ``compute_120f``): nvcc marks the
entry's flags, bit 20 (0x100000) for ``a`` and bit 21 (0x200000) for ``f``, measured on
nvcc 13.0 builds of every kind (tests/test_infer_cuda.py builds them). The cubin's own ELF
header is a second witness where it says anything: the pre-CUDA-13 ELF ABI (EI_ABIVERSION
< 8) sets ``EF_CUDA_ACCELERATORS_V1`` (0x800) for ``a``, ABI 8 reserves
``EF_CUDA_ACCELERATORS`` (0x8), as LLVM's ``BinaryFormat/ELF.h`` names them; nvcc 13.0
leaves both clear, so the entry flags decide. An ``f`` cubin is byte-identical to a plain
one: only the entry flags tell them apart.

For PTX, the code version is the PTX ISA version (9.0 = CUDA 13.0, ``compat/data/cuda.json``).
An uncompressed cubin carries ``.note.nv.tkinfo`` with the toolkit release ("Cuda
compilation tools, release 13.0"): read when present, never decompressed.
"""
from __future__ import annotations

import re
import struct

from compat.infer.blob import Blob
from compat.infer.elf import Elf, ElfError
from compat.record import Record
from compat.vocab.data import load

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

MAGIC = 0xBA55ED50
KIND_PTX, KIND_ELF = 1, 2
FLAG_ARCH_SPECIFIC, FLAG_FAMILY_SPECIFIC = 1 << 20, 1 << 21
EF_CUDA_ACCELERATORS_V1, EF_CUDA_ACCELERATORS = 0x800, 0x8
#: bounds: entries per fat binary (cuBLASLt, the largest known, has about 5,500), header size
ENTRIES = 200_000
ENTRY_HEADER_BYTES = 4096


class Entry(Record):
    kind: int                 # 1 PTX, 2 cubin
    sm: int                   # 80, 90, 100 ...
    version: tuple            # (major, minor): PTX ISA for PTX, cubin format for ELF
    toolkit: Optional[str]    # "13.0" from an uncompressed cubin's .note.nv.tkinfo
    suffix: str = ""          # "a" arch-specific, "f" family-specific, "" portable

    @property
    def arch(self) -> str:
        return f"{'compute' if self.kind == KIND_PTX else 'sm'}_{self.sm}{self.suffix}"


_TK = re.compile(rb"Cuda compilation tools, release (\d+\.\d+)")


def entries(section) -> List[Entry]:
    """Every PTX and cubin entry of a ``.nv_fatbin`` section (bytes or a Blob)."""
    blob = Blob.of(section) if isinstance(section, (bytes, bytearray)) else section
    out: List[Entry] = []
    pos = 0
    while pos + 16 <= blob.size and len(out) < ENTRIES:
        magic, _ver, hsize, fsize = struct.unpack("<IHHQ", blob.read_at(pos, 16))
        if magic != MAGIC:
            nxt = _find_magic(blob, pos + 1)        # containers are 8-aligned; padding between
            if nxt < 0:
                break
            pos = nxt
            continue
        end = min(pos + hsize + fsize, blob.size)
        e = pos + hsize
        while e + 32 <= end and len(out) < ENTRIES:
            head = blob.read_at(e, 64)
            kind, _unk, ehs, psize = struct.unpack_from("<HHIQ", head, 0)
            if ehs < 32 or ehs > ENTRY_HEADER_BYTES:
                break
            minor, major, sm = struct.unpack_from("<HHI", head, 24)
            flags = struct.unpack_from("<Q", head, 40)[0] if len(head) >= 48 and ehs >= 48 else 0
            if kind in (KIND_PTX, KIND_ELF) and 10 <= sm <= 2000:
                payload = blob.window(e + ehs, psize)
                tk, eflags_a = _cubin_facts(payload) if kind == KIND_ELF else (None, False)
                out.append(Entry(kind, sm, (major, minor), tk, _suffix(flags, eflags_a)))
            e += ehs + psize
        pos = max(end, pos + 16)
    return out


def _suffix(flags: int, eflags_a: bool) -> str:
    if flags & FLAG_FAMILY_SPECIFIC:
        return "f"
    if flags & FLAG_ARCH_SPECIFIC or eflags_a:
        return "a"
    return ""


def _find_magic(blob: Blob, start: int) -> int:
    return blob.find(struct.pack("<I", MAGIC), start)


def _cubin_facts(payload: Blob) -> Tuple[Optional[str], bool]:
    """(toolkit release, arch-specific flag in e_flags) of an uncompressed cubin."""
    if payload.read_at(0, 4) != b"\x7fELF":
        return None, False                       # compressed: nothing more without inflating it
    try:
        cubin = Elf(payload)
        accel = bool(cubin.flags & (EF_CUDA_ACCELERATORS_V1 if cubin.abi_version < 8 else EF_CUDA_ACCELERATORS))
        note = cubin.section(".note.nv.tkinfo")
        m = _TK.search(cubin.bytes_of(note, 1 << 16)) if note is not None else None
        return (m.group(1).decode() if m else None), accel
    except ElfError:
        return None, False


def ptx_table():
    """{(major, minor): CUDA release} from compat/data/cuda.json."""
    table = load("cuda")["ptx_isa_cuda"]
    return {tuple(int(x) for x in k.split(".")): v for k, v in table.items() if not k.startswith("_")}


def _vt(v: str):
    return tuple(int(x) for x in v.split("."))


def cuda_version(found: List[Entry]) -> Tuple[Optional[str], str]:
    """(the CUDA release that built these entries, or None; why): a toolkit note, else the
    newest PTX ISA through the table."""
    tks = [e.toolkit for e in found if e.toolkit]
    if tks:
        return max(tks, key=_vt), "toolkit note"
    ptx = sorted({e.version for e in found if e.kind == KIND_PTX})
    if not ptx:
        return None, "compressed cubins and no PTX"
    table = ptx_table()
    newest = ptx[-1]
    if newest in table:
        return table[newest], "PTX ISA"
    if newest > max(table):
        return None, f"PTX {newest[0]}.{newest[1]} is newer than compat's table (newest known: " \
                     f"PTX {max(table)[0]}.{max(table)[1]} = CUDA {table[max(table)]})"
    return None, f"PTX {newest[0]}.{newest[1]} is not a PTX ISA version compat's table knows"
