"""A small ELF reader: what inference needs, read with bounds, never executing anything.

Sections by name, notes (``.note.gnu.property`` x86 ISA needed), ``DT_NEEDED`` and
``DT_SONAME``, the symbol versions a binary needs (``.gnu.version_r``: ``GLIBC_2.34``),
whether the file is an executable, and the bytes of any section up to a limit
(``.comment``, ``.GCC.command.line``, ``.debug_str``). ELF32/64, little and big endian.

The file is read through a :class:`~compat.infer.blob.Blob`: only the headers and the
sections asked for are read, each bounded. Anything malformed (a section past the end of
the file, a bad ``sh_link``, a truncated note) raises :class:`ElfError` from the part that
reads it, so a caller can keep what the other parts say.
"""
from __future__ import annotations

import struct

from compat.infer.blob import Blob
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional

MAGIC = b"\x7fELF"
SHT_NOTE, SHT_DYNAMIC, SHT_NOBITS, SHT_GNU_VERNEED = 7, 6, 8, 0x6FFFFFFE
PT_INTERP = 3
ET_EXEC, ET_DYN = 2, 3
DT_NEEDED, DT_SONAME = 1, 14
NT_GNU_PROPERTY_TYPE_0 = 5
GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002
#: ISA_1 bits (binutils include/elf/common.h): baseline, v2, v3, v4
X86_ISA_LEVELS = ((1, 1), (1 << 1, 2), (1 << 2, 3), (1 << 3, 4))
EM_X86_64, EM_AARCH64, EM_PPC64 = 62, 183, 21

#: bounds on what one part may read (a section header table is at most 65535 entries)
TABLE_BYTES = 16 << 20          # a string table, .dynamic, .gnu.version_r
NOTE_BYTES = 1 << 20            # one note section
SECTIONS = 65535


class ElfError(ValueError):
    pass


class Section(Record):
    name: str
    type: int
    offset: int
    size: int
    link: int


def is_elf(head: bytes) -> bool:
    return head[:4] == MAGIC


def unpack(fmt: str, buf: bytes, pos: int, what: str) -> tuple:
    """``struct.unpack_from`` that says "truncated <what>" instead of a struct error."""
    if pos < 0 or pos + struct.calcsize(fmt) > len(buf):
        raise ElfError(f"truncated {what}")
    return struct.unpack_from(fmt, buf, pos)


class Elf:
    def __init__(self, blob: Blob):
        if isinstance(blob, (bytes, bytearray)):
            blob = Blob.of(bytes(blob))
        self.blob = blob
        head = blob.read_at(0, 64)
        if not is_elf(head) or len(head) < 52:
            raise ElfError("not an ELF file")
        self.bits = {1: 32, 2: 64}.get(head[4])
        self.endian = {1: "<", 2: ">"}.get(head[5])
        if self.bits is None or self.endian is None:
            raise ElfError("unknown ELF class or byte order")
        e = self.endian
        self.type, self.machine = unpack(e + "HH", head, 16, "ELF header")
        if self.bits == 64:
            self.phoff, self.shoff = unpack(e + "QQ", head, 32, "ELF header")
            self.flags, _, phentsize, phnum, shentsize, shnum, shstrndx = unpack(e + "IHHHHHH", head, 48, "ELF header")
        else:
            self.phoff, self.shoff = unpack(e + "II", head, 28, "ELF header")
            self.flags, _, phentsize, phnum, shentsize, shnum, shstrndx = unpack(e + "IHHHHHH", head, 36, "ELF header")
        self.abi_version = head[8]
        self._ph = (phentsize, phnum)
        self._strings: Dict[int, bytes] = {}
        self.sections: List[Section] = self._section_table(shentsize, shnum, shstrndx)

    # -- section table ---------------------------------------------------------------------
    def _section_table(self, shentsize: int, shnum: int, shstrndx: int) -> List[Section]:
        if self.shoff == 0 or shnum == 0:
            return []
        need = 40 if self.bits == 64 else 28
        if shentsize < need:
            raise ElfError("section header entries too small")
        if self.shoff + shnum * shentsize > self.blob.size:
            raise ElfError("section headers past the end of the file")
        table = self.blob.read_at(self.shoff, shnum * shentsize)
        fmt = self.endian + ("IIQQQQI" if self.bits == 64 else "IIIIIII")
        raw = []
        for i in range(shnum):
            name, typ, _, _, off, size, link = unpack(fmt, table, i * shentsize, "section header")
            raw.append((name, typ, off, size, link))
        if shstrndx >= len(raw):
            raise ElfError("bad section name table index")
        names = self._read(raw[shstrndx][2], raw[shstrndx][3], TABLE_BYTES, "section name table")
        return [Section(_cstr(names, n), typ, off, size, link) for n, typ, off, size, link in raw]

    def _read(self, offset: int, size: int, limit: int, what: str) -> bytes:
        if offset + size > self.blob.size:
            raise ElfError(f"{what} past the end of the file")
        if size > limit:
            raise ElfError(f"{what} is {size >> 20} MiB, over the {limit >> 20} MiB limit")
        return self.blob.read_at(offset, size)

    def section(self, name: str) -> Optional[Section]:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def bytes_of(self, s: Section, limit: int = TABLE_BYTES) -> bytes:
        """The section's bytes; ElfError when it lies past the end or is over ``limit``."""
        if s.type == SHT_NOBITS:
            return b""
        return self._read(s.offset, s.size, limit, s.name or "section")

    def window(self, s: Section) -> Blob:
        """The section as a Blob (for sections read in pieces: ``.nv_fatbin``, ``.debug_str``)."""
        if s.type == SHT_NOBITS:
            return Blob.of(b"")
        if s.offset + s.size > self.blob.size:
            raise ElfError(f"{s.name or 'section'} past the end of the file")
        return self.blob.window(s.offset, s.size)

    def _strtab(self, s: Section) -> bytes:
        if s.link >= len(self.sections) or s.link == 0:
            raise ElfError(f"{s.name or 'section'}: bad string table link (sh_link {s.link})")
        if s.link not in self._strings:
            self._strings[s.link] = self.bytes_of(self.sections[s.link])
        return self._strings[s.link]

    # -- what kind of file ------------------------------------------------------------------
    def is_executable(self) -> bool:
        """A program, not a library: ET_EXEC, or ET_DYN with an interpreter (PIE)."""
        if self.type == ET_EXEC:
            return True
        if self.type != ET_DYN:
            return False
        if self.section(".interp") is not None:
            return True
        entsize, num = self._ph
        if self.phoff == 0 or num == 0 or entsize < (56 if self.bits == 64 else 32):
            return False
        table = self.blob.read_at(self.phoff, min(num, 4096) * entsize)
        for i in range(len(table) // entsize):
            ptype, = unpack(self.endian + "I", table, i * entsize, "program header")
            if ptype == PT_INTERP:
                return True
        return False

    # -- notes -------------------------------------------------------------------------------
    def notes(self):
        """(owner, type, descriptor, section name) of every note; ElfError when one is cut short."""
        out = []
        for s in self.sections:
            if s.type != SHT_NOTE:
                continue
            buf = self.bytes_of(s, NOTE_BYTES)
            pos = 0
            align = 8 if s.name == ".note.gnu.property" and self.bits == 64 else 4
            while pos + 12 <= len(buf):
                namesz, descsz, ntype = unpack(self.endian + "III", buf, pos, f"note in {s.name}")
                pos += 12
                if pos + namesz > len(buf):
                    raise ElfError(f"truncated note in {s.name}")
                name = buf[pos:pos + namesz].rstrip(b"\0").decode("utf-8", "replace")
                pos += (namesz + 3) & ~3
                if pos + descsz > len(buf):
                    raise ElfError(f"truncated note in {s.name}")
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
                ptype, datasz = unpack(self.endian + "II", desc, pos, "GNU property")
                pos += 8
                if ptype == GNU_PROPERTY_X86_ISA_1_NEEDED:
                    bits, = unpack(self.endian + "I", desc, pos, "GNU_PROPERTY_X86_ISA_1_NEEDED")
                    level = 0
                    for bit, lvl in X86_ISA_LEVELS:
                        if bits & bit:
                            level = max(level, lvl)
                    return level or None
                pos += (datasz + step - 1) & ~(step - 1)
        return None

    # -- dynamic section -----------------------------------------------------------------------
    def dynamic(self) -> Dict[str, List[str]]:
        """{"needed": [...], "soname": [...]}"""
        out: Dict[str, List[str]] = {"needed": [], "soname": []}
        for s in self.sections:
            if s.type != SHT_DYNAMIC:
                continue
            strings = self._strtab(s)
            ent = 16 if self.bits == 64 else 8
            fmt = self.endian + ("qQ" if self.bits == 64 else "iI")
            buf = self.bytes_of(s)
            for pos in range(0, len(buf) - ent + 1, ent):
                tag, val = struct.unpack_from(fmt, buf, pos)
                if tag == 0:
                    break
                if tag == DT_NEEDED:
                    out["needed"].append(_cstr(strings, val))
                elif tag == DT_SONAME:
                    out["soname"].append(_cstr(strings, val))
        return out

    def version_needs(self) -> Dict[str, List[str]]:
        """{library file: [version names]} from .gnu.version_r (``libc.so.6: [GLIBC_2.34, ...]``)."""
        out: Dict[str, List[str]] = {}
        for s in self.sections:
            if s.type != SHT_GNU_VERNEED:
                continue
            strings = self._strtab(s)
            buf = self.bytes_of(s)
            pos = 0
            for _ in range(4096):
                if pos + 16 > len(buf):
                    break
                _ver, cnt, file_off, aux_off, next_off = struct.unpack_from(self.endian + "HHIII", buf, pos)
                names = out.setdefault(_cstr(strings, file_off), [])
                apos = pos + aux_off
                for _ in range(min(cnt, 4096)):
                    if apos + 16 > len(buf):
                        break
                    _hash, _flags, _other, name_off, anext = struct.unpack_from(self.endian + "IHHII", buf, apos)
                    names.append(_cstr(strings, name_off))
                    if anext == 0:
                        break
                    apos += anext
                if next_off == 0:
                    break
                pos += next_off
        return out


def _cstr(table: bytes, index: int) -> str:
    if index >= len(table):
        return ""
    end = table.find(b"\0", index)
    return table[index:end if end >= 0 else len(table)].decode("utf-8", "replace")
