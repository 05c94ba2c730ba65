"""A small ELF reader: what inference needs, from bytes, never executing anything.

Sections by name, notes (``.note.gnu.property`` x86 ISA needed), ``DT_NEEDED`` and
``DT_SONAME``, the symbol versions a binary needs (``.gnu.version_r``: ``GLIBC_2.34``), and
the raw bytes of any section (``.comment``, ``.GCC.command.line``, ``.debug_str``,
``.nv_fatbin``). ELF32/64, little and big endian.  Malformed files raise :class:`ElfError`.
"""
from __future__ import annotations

import struct
from typing import Dict, List, NamedTuple, Optional, Tuple

MAGIC = b"\x7fELF"
SHT_NOTE, SHT_DYNAMIC, SHT_GNU_VERNEED = 7, 6, 0x6FFFFFFE
DT_NEEDED, DT_SONAME = 1, 14
NT_GNU_PROPERTY_TYPE_0 = 5
GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002
#: ISA_1 bits (binutils include/elf/common.h): baseline, v2, v3, v4
X86_ISA_LEVELS = ((1, 1), (1 << 1, 2), (1 << 2, 3), (1 << 3, 4))
EM_X86_64, EM_AARCH64, EM_PPC64 = 62, 183, 21


class ElfError(ValueError):
    pass


class Section(NamedTuple):
    name: str
    type: int
    offset: int
    size: int
    link: int


def is_elf(head: bytes) -> bool:
    return head[:4] == MAGIC


class Elf:
    def __init__(self, data: bytes):
        if not is_elf(data) or len(data) < 52:
            raise ElfError("not an ELF file")
        self.data = data
        self.bits = {1: 32, 2: 64}.get(data[4])
        self.endian = {1: "<", 2: ">"}.get(data[5])
        if self.bits is None or self.endian is None:
            raise ElfError("unknown ELF class or byte order")
        e = self.endian
        if self.bits == 64:
            (self.type, self.machine) = struct.unpack_from(e + "HH", data, 16)
            shoff, = struct.unpack_from(e + "Q", data, 40)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 58)
        else:
            (self.type, self.machine) = struct.unpack_from(e + "HH", data, 16)
            shoff, = struct.unpack_from(e + "I", data, 32)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 46)
        if shoff == 0 or shnum == 0:
            self.sections: List[Section] = []
            return
        if shoff + shnum * shentsize > len(data):
            raise ElfError("section headers past the end of the file")
        raw = []
        for i in range(shnum):
            o = shoff + i * shentsize
            if self.bits == 64:
                name, typ, _, _, off, size, link = struct.unpack_from(e + "IIQQQQI", data, o)
            else:
                name, typ, _, _, off, size, link = struct.unpack_from(e + "IIIIIII", data, o)
            raw.append((name, typ, off, size, link))
        if shstrndx >= len(raw):
            raise ElfError("bad section name table index")
        strtab_off, strtab_size = raw[shstrndx][2], raw[shstrndx][3]
        self.sections = []
        for name, typ, off, size, link in raw:
            self.sections.append(Section(self._cstr(strtab_off, strtab_size, name), typ, off, size, link))

    def _cstr(self, base: int, size: int, index: int) -> str:
        if index >= size:
            return ""
        end = self.data.find(b"\0", base + index, base + size)
        return self.data[base + index:end if end >= 0 else base + size].decode("utf-8", "replace")

    def section(self, name: str) -> Optional[Section]:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def bytes_of(self, s: Section) -> bytes:
        if s.type == 8:          # SHT_NOBITS
            return b""
        return self.data[s.offset:s.offset + s.size]

    # -- notes -------------------------------------------------------------------------------
    def notes(self) -> List[Tuple[str, int, bytes, str]]:
        """(owner, type, descriptor, section name) of every note."""
        out = []
        for s in self.sections:
            if s.type != SHT_NOTE:
                continue
            buf = self.bytes_of(s)
            pos = 0
            align = 8 if s.name == ".note.gnu.property" and self.bits == 64 else 4
            while pos + 12 <= len(buf):
                namesz, descsz, ntype = struct.unpack_from(self.endian + "III", buf, pos)
                pos += 12
                name = buf[pos:pos + namesz].rstrip(b"\0").decode("utf-8", "replace")
                pos += (namesz + 3) & ~3
                desc = buf[pos:pos + descsz]
                pos += (descsz + align - 1) & ~(align - 1)
                out.append((name, ntype, desc, s.name))
        return out

    def x86_isa_needed(self) -> Optional[int]:
        """Highest x86-64 level in GNU_PROPERTY_X86_ISA_1_NEEDED (1 = baseline), or None."""
        for owner, ntype, desc, _ in self.notes():
            if owner != "GNU" or ntype != NT_GNU_PROPERTY_TYPE_0:
                continue
            pos = 0
            step = 8 if self.bits == 64 else 4
            while pos + 8 <= len(desc):
                ptype, datasz = struct.unpack_from(self.endian + "II", desc, pos)
                pos += 8
                if ptype == GNU_PROPERTY_X86_ISA_1_NEEDED and datasz >= 4:
                    bits, = struct.unpack_from(self.endian + "I", desc, pos)
                    level = 0
                    for bit, lvl in X86_ISA_LEVELS:
                        if bits & bit:
                            level = max(level, lvl)
                    return level or None
                pos += (datasz + step - 1) & ~(step - 1)
        return None

    # -- dynamic section -----------------------------------------------------------------------
    def _dynstr(self, s: Section) -> Tuple[int, int]:
        if s.link >= len(self.sections):
            raise ElfError("bad string table link")
        st = self.sections[s.link]
        return st.offset, st.size

    def dynamic(self) -> Dict[str, List[str]]:
        """{"needed": [...], "soname": [...]}"""
        out: Dict[str, List[str]] = {"needed": [], "soname": []}
        for s in self.sections:
            if s.type != SHT_DYNAMIC:
                continue
            base, size = self._dynstr(s)
            ent = 16 if self.bits == 64 else 8
            fmt = self.endian + ("qQ" if self.bits == 64 else "iI")
            buf = self.bytes_of(s)
            for pos in range(0, len(buf) - ent + 1, ent):
                tag, val = struct.unpack_from(fmt, buf, pos)
                if tag == 0:
                    break
                if tag == DT_NEEDED:
                    out["needed"].append(self._cstr(base, size, val))
                elif tag == DT_SONAME:
                    out["soname"].append(self._cstr(base, size, val))
        return out

    def version_needs(self) -> Dict[str, List[str]]:
        """{library file: [version names]} from .gnu.version_r (``libc.so.6: [GLIBC_2.34, ...]``)."""
        out: Dict[str, List[str]] = {}
        for s in self.sections:
            if s.type != SHT_GNU_VERNEED:
                continue
            base, size = self._dynstr(s)
            buf = self.bytes_of(s)
            pos = 0
            for _ in range(4096):
                if pos + 16 > len(buf):
                    break
                _ver, cnt, file_off, aux_off, next_off = struct.unpack_from(self.endian + "HHIII", buf, pos)
                lib = self._cstr(base, size, file_off)
                names = out.setdefault(lib, [])
                apos = pos + aux_off
                for _ in range(cnt):
                    if apos + 16 > len(buf):
                        break
                    _hash, _flags, _other, name_off, anext = struct.unpack_from(self.endian + "IHHII", buf, apos)
                    names.append(self._cstr(base, size, name_off))
                    if anext == 0:
                        break
                    apos += anext
                if next_off == 0:
                    break
                pos += next_off
        return out
