"""What one file of an image says: the findings of an ELF file or a pkg-config file.

Each part of an ELF file (notes, recorded flags, dynamic section, symbol versions, fat
binary, version strings) is read on its own: a damaged part becomes a ``damaged`` finding
naming the part and what is wrong with it, and the other parts still count.
"""
from __future__ import annotations

import posixpath
import re
import struct

from compat import limits
from compat.errors import printable
from compat.infer import elf as E, fatbin as F
from compat.infer.blob import Blob
from compat.record import Record
from compat.vocab.data import mpi_sonames

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List

_MARCH = re.compile(rb"-march=([A-Za-z0-9_.+-]{1,64})")
_GLIBC = re.compile(rb"GNU C Library [^\n]{0,200}?version (\d+\.\d+)")
_OMPI = re.compile(rb"\x00v(\d+\.\d+\.\d+)\x00")
_VERSION = re.compile(rb"\x00(\d+\.\d+(?:\.\d+)?(?:a\d|b\d|rc\d)?)\x00")
_MPICH_TAG = re.compile(rb"(?:mpich-|MPICH )(\d+\.\d+(?:\.\d+)?(?:a\d|b\d|rc\d)?)")
_IMPI = re.compile(rb"Intel\(R\) MPI Library[^\x00]{0,200}?Version (\d+\.\d+)")
_NAMES = re.compile(rb"Open MPI|ompi|CRAY|MVAPICH|MPICH")
_FI_INI = re.compile(rb"fi_([a-z0-9]+)_ini\x00")
#: x86-64 ``movl $imm32, (%rdi); xorl %eax, %eax; ret``: cudaRuntimeGetVersion's body in
#: libcudart (stores CUDART_VERSION, 1000 * major + 10 * minor, and returns cudaSuccess)
_CUDART_X86 = re.compile(rb"\xc7\x07(....)\x31\xc0\xc3", re.S)
_DAMAGE = (E.ElfError, struct.error, ValueError, IndexError, OverflowError, UnicodeError)


class Finding(Record):
    """One fact read from one file: what it says and where it was found."""

    kind: str          # isa_level, march, needed, executable, glibc_need, glibc_own, fatbin, mpi_lib,
    value: object      # cudart, fabric_provider, pc, soname, damaged, skipped
    path: str
    section: str

    def evidence(self) -> Dict:
        """File, section and value as printable text (all three come from the image)."""
        value = describe(self.kind, self.value)
        return {"file": printable(self.path, 1000), "section": printable(self.section, 200),
                "value": printable(value, 1000) if isinstance(value, str) else value}


def describe(kind: str, v) -> object:
    """A finding's value as text a person reads (never a Python tuple)."""
    if isinstance(v, F.Entry):
        return f"{v.arch} (code version {v.version[0]}.{v.version[1]}" + \
               (f", toolkit {v.toolkit}" if v.toolkit else "") + ")"
    if kind == "mpi_lib":
        abi, impl, version = v
        who = " ".join(x for x in (impl, version) if x) or "unidentified implementation"
        return f"{who} ({abi} ABI)"
    if kind == "pc":
        return f"{v[0]}.pc Version: {v[1]}"
    return v if isinstance(v, (str, int)) else str(v)


def _guard(out: List[Finding], path: str, part: str, fn: Callable, default=None):
    try:
        return fn()
    except _DAMAGE as exc:
        out.append(Finding("damaged", f"{part}: {exc}", path, part))
        return default


def analyse_elf(path: str, blob: Blob) -> List[Finding]:
    try:
        f = E.Elf(blob)
    except _DAMAGE as exc:
        return [Finding("damaged", f"ELF header: {exc}", path, "ELF header")]
    out: List[Finding] = []
    if f.machine == E.EM_X86_64:
        level = _guard(out, path, "notes", f.x86_isa_needed)
        if level:
            out.append(Finding("isa_level", level, path, ".note.gnu.property (GNU_PROPERTY_X86_ISA_1_NEEDED)"))
    for name in (".GCC.command.line", ".debug_str", ".comment"):
        s = f.section(name)
        if s is not None:
            found = _guard(out, path, name, lambda: {m.group(1) for m in f.window(s).finditer(
                _MARCH, limits.INFER_SCAN_BYTES)}, set())
            out += [Finding("march", m.decode(), path, name) for m in sorted(found)]
    dyn = _guard(out, path, ".dynamic", f.dynamic, {"needed": [], "soname": []})
    if _guard(out, path, "program headers", f.is_executable, False):
        out.append(Finding("executable", True, path, "ELF header"))
    out += [Finding("needed", lib, path, ".dynamic (DT_NEEDED)") for lib in dyn["needed"]]
    out += [Finding("soname", s, path, ".dynamic (DT_SONAME)") for s in dyn["soname"]]
    for lib, versions in _guard(out, path, ".gnu.version_r", f.version_needs, {}).items():
        for v in versions:
            if re.fullmatch(r"GLIBC_\d+\.\d+(\.\d+)?", v):
                out.append(Finding("glibc_need", v[6:], path, f".gnu.version_r ({lib})"))
    fb = f.section(".nv_fatbin")
    if fb is not None:
        found = _guard(out, path, ".nv_fatbin", lambda: F.entries(f.window(fb)), [])
        out += [Finding("fatbin", entry, path, ".nv_fatbin") for entry in found]
    out += _guard(out, path, "version strings", lambda: _library_identity(path, f, blob, dyn), [])
    return out


def _library_identity(path: str, f: E.Elf, blob: Blob, dyn) -> List[Finding]:
    """What a library says about itself: glibc, MPI, CUDA runtime, libfabric."""
    out: List[Finding] = []
    base = posixpath.basename(path)
    sonames = set(dyn["soname"]) | {base}
    if base.startswith("libc.so.6") or "libc.so.6" in dyn["soname"]:
        m = next(blob.finditer(_GLIBC, limits.INFER_SCAN_BYTES), None)
        if m:
            out.append(Finding("glibc_own", m.group(1).decode(), path, ".rodata (version string)"))
    for so, abi in mpi_sonames().items():
        if any(s == so or s.startswith(so + ".") for s in sonames):
            out.append(Finding("mpi_lib", (abi, *_mpi_identity(blob, abi)), path, ".rodata (version string)"))
    m = re.match(r"libcudart\.so\.(\d+(?:\.\d+){0,2})$", base)
    if m:
        out += _cudart(path, m.group(1), f, blob)
    m = re.search(r"/libfabric/lib([a-z0-9]+)-fi\.so$", path)
    if m:
        out.append(Finding("fabric_provider", m.group(1), path, "provider plugin file"))
    if any(s.startswith("libfabric.so") for s in sonames):
        for prov in sorted({m.group(1) for m in blob.finditer(_FI_INI, limits.INFER_SCAN_BYTES)}):
            if prov != b"prov":
                out.append(Finding("fabric_provider", prov.decode(), path, ".rodata (fi_<provider>_ini)"))
    return out


def _cudart(path: str, version: str, f: E.Elf, blob: Blob) -> List[Finding]:
    """The CUDA runtime's version: the file name when it has major.minor (libcudart.so.12.4.127),
    else the CUDART_VERSION constant its code returns (pip wheels ship only libcudart.so.12)."""
    parts = version.split(".")
    if len(parts) >= 2:
        return [Finding("cudart", version, path, "file name")]
    major = int(parts[0])
    found = set()
    if f.machine == E.EM_X86_64:
        for m in blob.finditer(_CUDART_X86, limits.INFER_SCAN_BYTES):
            value, = struct.unpack("<I", m.group(1))
            if value // 1000 == major and value % 10 == 0:
                found.add(value)
    if len(found) == 1:
        value = found.pop()
        return [Finding("cudart", f"{value // 1000}.{value % 1000 // 10}", path,
                        ".text (cudaRuntimeGetVersion: CUDART_VERSION constant)")]
    why = "no CUDART_VERSION constant found" if not found else \
        "several CUDART_VERSION candidates: " + ", ".join(str(v) for v in sorted(found))
    return [Finding("cudart_major", f"{major} ({why})", path, "file name")]


def _mpi_identity(blob: Blob, abi: str):
    """(implementation, version) of an MPI library from its own strings."""
    m = next(blob.finditer(_IMPI, limits.INFER_SCAN_BYTES), None)
    if m:
        return "intel-mpi", m.group(1).decode()
    names = {m.group(0) for m in blob.finditer(_NAMES, limits.INFER_SCAN_BYTES)}
    if abi == "openmpi" or {b"Open MPI", b"ompi"} <= names:
        m = next(blob.finditer(_OMPI, limits.INFER_SCAN_BYTES), None)
        return "openmpi", m.group(1).decode() if m else None
    if b"CRAY" in names and b"MPICH" in names:
        impl = "cray-mpich"
    elif b"MVAPICH" in names:
        impl = "mvapich"
    elif b"MPICH" in names:
        impl = "mpich"
    else:
        return None, None
    versions = []
    for m in blob.finditer(_VERSION, limits.INFER_SCAN_BYTES):
        v = m.group(1).decode()
        if v not in versions:
            versions.append(v)
        if len(versions) >= 1000:
            break
    tags = {m.group(1).decode() for m in blob.finditer(_MPICH_TAG, limits.INFER_SCAN_BYTES)}
    tagged = [v for v in versions if any(t.startswith(v) for t in tags)]
    return impl, (tagged or versions or [None])[0]


def analyse_pc(path: str, text: bytes) -> List[Finding]:
    m = re.search(rb"^Version:[ \t]*([0-9][0-9A-Za-z.+~_-]{0,40})[ \t]*$", text, re.M)
    name = posixpath.basename(path)[:-3]
    if m and name in ("ompi", "mpich", "impi", "mvapich2", "cray-mpich", "mpi"):
        return [Finding("pc", (name, m.group(1).decode("utf-8", "replace")), path, "pkg-config Version")]
    return []
