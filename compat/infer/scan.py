"""Read an image's layers as streams and collect evidence from its files.

Layers are read in order through ``tarfile``'s stream mode (gzip or plain; nothing is
unpacked to disk); whiteouts (``.wh.<name>``, ``.wh..wh..opq``) remove what earlier layers
put there, so the evidence describes the final filesystem. Only ELF files (and pkg-config
files) are read in full, up to ``MAX_FILE`` bytes each; nothing is executed.
"""
from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import sys
import tarfile
import time
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional

from compat.errors import BadInput
from compat.infer import elf as E, fatbin as F

MAX_FILE = 1 << 30
_MARCH = re.compile(rb"-march=([A-Za-z0-9_.+-]+)")
_GLIBC = re.compile(rb"GNU C Library [^\n]*?version (\d+\.\d+)")
_OMPI = re.compile(rb"\x00v(\d+\.\d+\.\d+)\x00")
_VERSION = re.compile(rb"\x00(\d+\.\d+(?:\.\d+)?(?:a\d|b\d|rc\d)?)\x00")
_IMPI = re.compile(rb"Intel\(R\) MPI Library[^\x00]*?Version (\d+\.\d+)")
_FI_INI = re.compile(rb"fi_([a-z0-9]+)_ini\x00")
_MPI_SONAMES = {"libmpi.so.40": "openmpi", "libmpi.so.12": "mpich", "libmpich.so.12": "mpich",
                "libmpi_cray.so.12": "mpich", "libmpi_abi.so": "mpi-abi", "libmpi_abi.so.0": "mpi-abi"}


class Finding(NamedTuple):
    """One fact read from one file: what it says and where it was found."""

    kind: str          # isa_level, march, needed, glibc_need, glibc_own, fatbin, mpi_lib, cudart, fabric_provider, pc
    value: object
    path: str
    section: str

    def evidence(self) -> Dict:
        v = self.value
        if isinstance(v, F.Entry):
            v = f"{v.arch} (code version {v.version[0]}.{v.version[1]}" + (f", toolkit {v.toolkit}" if v.toolkit else "") + ")"
        return {"file": self.path, "section": self.section, "value": v if isinstance(v, (str, int)) else str(v)}


def analyse_elf(path: str, data: bytes) -> List[Finding]:
    try:
        f = E.Elf(data)
    except (E.ElfError, Exception) as exc:  # noqa: BLE001 - a damaged file is reported, not fatal
        return [Finding("unreadable", str(exc), path, "ELF header")]
    out: List[Finding] = []
    if f.machine == E.EM_X86_64:
        level = f.x86_isa_needed()
        if level:
            out.append(Finding("isa_level", level, path, ".note.gnu.property (GNU_PROPERTY_X86_ISA_1_NEEDED)"))
    for name in (".GCC.command.line", ".debug_str", ".comment"):
        s = f.section(name)
        if s is None:
            continue
        for m in set(_MARCH.findall(f.bytes_of(s))):
            out.append(Finding("march", m.decode(), path, name))
    dyn = f.dynamic()
    for lib in dyn["needed"]:
        out.append(Finding("needed", lib, path, ".dynamic (DT_NEEDED)"))
    for soname in dyn["soname"]:
        out.append(Finding("soname", soname, path, ".dynamic (DT_SONAME)"))
    for lib, versions in f.version_needs().items():
        for v in versions:
            if v.startswith("GLIBC_") and re.fullmatch(r"GLIBC_\d+\.\d+(\.\d+)?", v):
                out.append(Finding("glibc_need", v[6:], path, f".gnu.version_r ({lib})"))
    fb = f.section(".nv_fatbin")
    if fb is not None:
        for entry in F.entries(f.bytes_of(fb)):
            out.append(Finding("fatbin", entry, path, ".nv_fatbin"))
    base = posixpath.basename(path)
    sonames = set(dyn["soname"]) | {base}
    if base.startswith("libc.so.6") or "libc.so.6" in dyn["soname"]:
        m = _GLIBC.search(data)
        if m:
            out.append(Finding("glibc_own", m.group(1).decode(), path, ".rodata (version string)"))
    for so, abi in _MPI_SONAMES.items():
        if any(s == so or s.startswith(so + ".") for s in sonames):
            out.append(Finding("mpi_lib", (abi, *_mpi_identity(data, abi)), path, ".rodata (version string)"))
    m = re.match(r"libcudart\.so\.(\d+(?:\.\d+){0,2})", base)
    if m:
        out.append(Finding("cudart", m.group(1), path, "file name"))
    m = re.search(r"/libfabric/lib([a-z0-9]+)-fi\.so$", path)
    if m:
        out.append(Finding("fabric_provider", m.group(1), path, "provider plugin file"))
    if any(s.startswith("libfabric.so") for s in sonames):
        for prov in set(_FI_INI.findall(data)):
            if prov != b"prov":
                out.append(Finding("fabric_provider", prov.decode(), path, ".rodata (fi_<provider>_ini)"))
    return out


def _mpi_identity(data: bytes, abi: str):
    """(implementation, version) of an MPI library from its own strings."""
    m = _IMPI.search(data)
    if m:
        return "intel-mpi", m.group(1).decode()
    if abi == "openmpi" or b"Open MPI" in data and b"ompi" in data:
        m = _OMPI.search(data)
        return "openmpi", m.group(1).decode() if m else None
    if b"CRAY" in data and b"MPICH" in data:
        impl = "cray-mpich"
    elif b"MVAPICH" in data:
        impl = "mvapich"
    elif b"MPICH" in data:
        impl = "mpich"
    else:
        return None, None
    versions = [v.decode() for v in _VERSION.findall(data)]
    tagged = [v for v in versions if f"mpich-{v}".encode() in data or f"MPICH {v}".encode() in data]
    return impl, (tagged or versions or [None])[0]


def analyse_pc(path: str, text: bytes) -> List[Finding]:
    m = re.search(rb"^Version:\s*(\S+)", text, re.M)
    name = posixpath.basename(path)[:-3]
    if m and name in ("ompi", "mpich", "impi", "mvapich2", "cray-mpich", "mpi"):
        return [Finding("pc", (name, m.group(1).decode()), path, "pkg-config Version")]
    return []


class Layer(NamedTuple):
    digest: str
    size: int
    media_type: str


class _Hashing(io.RawIOBase):
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
        while self.read(1 << 20):
            pass
        got = f"{self.digest.split(':')[0]}:{self.h.hexdigest()}"
        if got != self.digest:
            raise BadInput(f"layer {self.digest}: content does not match its digest (got {got})")


def _open_layer(source, layer: Layer):
    if source.layout is not None:
        from compat.oci.digest import blob_path
        path = blob_path(source.layout.path, layer.digest, f"{source.ref}: layer")
        try:
            return open(path, "rb")
        except OSError as exc:
            raise BadInput(f"{source.ref}: layer {layer.digest}: {exc.strerror}") from None
    return io.BytesIO(source.registry.get_blob(layer.digest))   # verified in full by get_blob


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


def scan(source, manifest: Dict, scopes: Optional[List[str]] = None, label: str = "") -> Dict[str, List[Finding]]:
    """{path: findings} of the image's final filesystem."""
    layers = [Layer(l["digest"], int(l.get("size", 0)), l.get("mediaType", "")) for l in manifest.get("layers") or []]
    total = sum(l.size for l in layers)
    progress = Progress(total, f"scanning {label or 'image'}")
    files: Dict[str, List[Finding]] = {}
    try:
        for layer in layers:
            if "zstd" in layer.media_type:
                raise BadInput(f"layer {layer.digest}: zstd-compressed layers are not supported yet")
            raw = _open_layer(source, layer)
            stream = _Hashing(raw, layer.digest, progress)
            try:
                with tarfile.open(fileobj=io.BufferedReader(stream, 1 << 20), mode="r|*") as tar:
                    for member in tar:
                        _apply(tar, member, files, scopes)
                stream.finish()
            except tarfile.TarError as exc:
                raise BadInput(f"layer {layer.digest}: not a readable tar stream ({exc})") from None
            finally:
                raw.close()
    finally:
        progress.close()
    return files


def _apply(tar, member, files, scopes) -> None:
    path = posixpath.normpath("/" + member.name.lstrip("./")).lstrip("/")
    base = posixpath.basename(path)
    parent = posixpath.dirname(path)
    if base == ".wh..wh..opq":                       # opaque directory: drop what lower layers had
        prefix = parent + "/"
        for p in [p for p in files if p.startswith(prefix)]:
            del files[p]
        return
    if base.startswith(".wh."):
        gone = posixpath.join(parent, base[4:])
        for p in [p for p in files if p == gone or p.startswith(gone + "/")]:
            del files[p]
        return
    files.pop(path, None)                            # a later layer replaces the file
    if not member.isfile() or not _in_scope(path, scopes):
        return
    fh = tar.extractfile(member)
    if fh is None:
        return
    head = fh.read(4)
    if E.is_elf(head):
        if member.size > MAX_FILE:
            files[path] = [Finding("skipped", f"{member.size >> 20} MB is over the {MAX_FILE >> 20} MB limit",
                                   "/" + path, "size")]
            return
        files[path] = analyse_elf("/" + path, head + fh.read())
    elif base.endswith(".pc") and "pkgconfig" in parent and member.size < 1 << 20:
        found = analyse_pc("/" + path, head + fh.read())
        if found:
            files[path] = found
