"""Build small ELF64 files and CUDA fat binaries byte by byte, for the cases no compiler here
writes (a PTX ISA newer than any toolkit, hostile layouts). The layouts are the ELF
specification's and the fat-binary layout documented in compat/infer/fatbin.py."""
import struct

SHT_PROGBITS, SHT_STRTAB, SHT_NOTE, SHT_DYNAMIC = 1, 3, 7, 6


def elf(sections, etype=3, machine=62, flags=0, abi=(0, 0)):
    """ELF64 little-endian; ``sections``: [(name, type, data, link)], indices from 1;
    ``abi``: (EI_OSABI, EI_ABIVERSION)."""
    names = b"\0"
    name_off = []
    for name, *_ in sections:
        name_off.append(len(names))
        names += name.encode() + b"\0"
    shstr_name = len(names)
    names += b".shstrtab\0"
    body, offsets = b"", []
    for _, _, data, _ in sections:
        offsets.append(64 + len(body))
        body += data + b"\0" * (-len(data) % 8)
    shstr_off = 64 + len(body)
    body += names + b"\0" * (-len(names) % 8)
    shoff = 64 + len(body)
    shnum = len(sections) + 2
    head = b"\x7fELF\x02\x01\x01" + bytes(abi) + b"\0" * 7
    head += struct.pack("<HHIQQQIHHHHHH", etype, machine, 1, 0, 0, shoff, flags, 64, 56, 0, 64, shnum, shnum - 1)
    table = b"\0" * 64
    for (name, typ, data, link), off, noff in zip(sections, offsets, name_off):
        table += struct.pack("<IIQQQQIIQQ", noff, typ, 0, 0, off, len(data), link, 0, 1, 0)
    table += struct.pack("<IIQQQQIIQQ", shstr_name, SHT_STRTAB, 0, 0, shstr_off, len(names), 0, 0, 1, 0)
    return head + body + table


def fatbin(entries):
    """One container; ``entries``: [(kind, sm, (major, minor), flags, payload)]."""
    body = b""
    for kind, sm, (major, minor), flags, payload in entries:
        payload += b"\0" * (-len(payload) % 8)
        head = struct.pack("<HHIQIIHHIIIQ", kind, 0x0101, 64, len(payload), 0, 0, minor, major, sm, 0, 0, flags)
        body += head + b"\0" * (64 - len(head)) + payload
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def with_fatbin(entries):
    return elf([(".nv_fatbin", SHT_PROGBITS, fatbin(entries), 0)])
