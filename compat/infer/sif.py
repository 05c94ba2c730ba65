"""``annotate --infer`` on a SIF: the files of its primary squashfs partition, read with
Debian's squashfs-tools, fed to the same per-file readers as image layers (spec/inference.md,
"SIF variants").

A squashfs image is hostile input like a layer. Before anything is written, ``unsquashfs -s``
gives the inode count (at most ``limits.SIF_SQUASHFS_FILES``) and ``unsquashfs -lls`` the
listing; only regular files in scope are extracted (an extract file, ``-no-wildcards``: no
devices, FIFOs or symbolic links are ever created), their listed sizes together at most
``limits.SIF_SQUASHFS_BYTES``, into a private temporary directory removed afterwards, each run
bounded by ``limits.SIF_UNSQUASHFS_S``. The partition is read in place (``-o OFFSET``). Files
are opened with ``O_NOFOLLOW`` and must be regular. Nothing is executed but unsquashfs.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time

from compat import limits
from compat.errors import BadInput, printable
from compat.infer import elf as E
from compat.infer.analyse import Finding, analyse_elf, analyse_pc
from compat.infer.blob import Blob
from compat.infer.propose import propose
from compat.oci import sif
from compat.oci.digest import check

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

ROOT = "squashfs-root/"
_INODES = re.compile(rb"^Number of inodes (\d+)$", re.M)


def infer_sif(path: str, scopes: Optional[List[str]] = None, label: str = "") -> Dict:
    """Proposals for the SIF file at ``path`` (the shape of ``compat.infer.infer_image``'s)."""
    t = time.perf_counter()
    what = printable(label or path, 200)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(sif.HEADER_BYTES)
        head += fh.read(max(0, sif.meta_length(head, what) - len(head)))
    part = sif.parse(head, size, what).primary
    if part is None or part.fs != "squashfs":
        raise BadInput(f"{what}: --infer reads a squashfs primary partition; this SIF has "
                       f"{'none' if part is None else part.fs}")
    files = scan_squashfs(path, part.offset, scopes, what)
    result = propose(files)
    result["files"] = len(files)
    result["bytes"] = size
    result["seconds"] = time.perf_counter() - t
    return result


def _unsquashfs(args: List[str], what: str) -> bytes:
    exe = shutil.which("unsquashfs")
    if exe is None:
        raise BadInput(f"{what}: --infer on a SIF needs unsquashfs (Debian's squashfs-tools)")
    try:
        proc = subprocess.run([exe, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=limits.SIF_UNSQUASHFS_S)
    except subprocess.TimeoutExpired:
        raise BadInput(f"{what}: unsquashfs ran past limits.SIF_UNSQUASHFS_S ({limits.SIF_UNSQUASHFS_S} s)") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BadInput(f"{what}: unsquashfs: {printable(err[-1] if err else f'exit {proc.returncode}', 200)}")
    return proc.stdout


def _in_scope(path: str, scopes) -> bool:
    p = "/" + path
    return not scopes or any(p == s.rstrip("/") or p.startswith(s.rstrip("/") + "/") for s in scopes)


def regular_files(listing: bytes, scopes=None) -> Tuple[List[Tuple[str, int]], List[str]]:
    """([(path, size)] of the regular files an ``unsquashfs -lls`` listing names, in scope),
    and the names left out (backslashes, surrounding blanks: an extract file could not name
    them exactly; a name with a newline breaks the listing's line and is not seen at all)."""
    out, odd = [], []
    for line in listing.split(b"\n"):
        if not line.startswith(b"-"):
            continue
        fields = line.split(None, 5)
        if len(fields) < 6 or not fields[2].isdigit() or not fields[5].startswith(ROOT.encode()):
            continue
        name = fields[5][len(ROOT):].decode("utf-8", "surrogateescape")
        if not _in_scope(name, scopes):
            continue
        if "\\" in name or name != name.strip() or not name:
            odd.append(name)
            continue
        out.append((name, int(fields[2])))
    return out, odd


def scan_squashfs(path: str, offset: int, scopes=None, what: str = "SIF") -> Dict[str, List[Finding]]:
    """{path: findings} of the squashfs image at ``offset`` in the file ``path``."""
    base = ["-o", str(offset)]
    m = _INODES.search(_unsquashfs(["-s", *base, path], what))
    inodes = int(m.group(1)) if m else 0
    if inodes > limits.SIF_SQUASHFS_FILES:
        raise BadInput(f"{what}: squashfs of {inodes} inodes (at most limits.SIF_SQUASHFS_FILES: "
                       f"{limits.SIF_SQUASHFS_FILES})")
    wanted, odd = regular_files(_unsquashfs(["-lls", "-n", *base, path], what), scopes)
    total = sum(size for _, size in wanted)
    if total > limits.SIF_SQUASHFS_BYTES:
        raise BadInput(f"{what}: {total >> 20} MiB of files in scope (at most limits.SIF_SQUASHFS_BYTES: "
                       f"{limits.SIF_SQUASHFS_BYTES >> 20} MiB; narrow it with --path)")
    files: Dict[str, List[Finding]] = {name: [Finding("skipped", "a name unsquashfs cannot be asked for exactly",
                                                      "/" + name, "name")] for name in odd}
    with tempfile.TemporaryDirectory(prefix="compat-sif-") as tmp:
        listed = os.path.join(tmp, "extract")
        with open(listed, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write("".join(f"{name}\n" for name, _ in wanted))
        dest = os.path.join(tmp, "root")
        if wanted:
            _unsquashfs(["-no-wildcards", "-ef", listed, "-d", dest, "-n", "-no-xattrs", "-q", *base, path], what)
        for name, _ in wanted:
            found = _read(dest, name)
            if found:
                files[name] = found
    return dict(sorted(files.items()))


def _read(root: str, name: str) -> List[Finding]:
    """What one extracted file says (an ELF file, a pkg-config file); a file that is not a
    regular file where unsquashfs put it is not opened."""
    try:
        fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return []
    with open(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            return []
        head = fh.read(4)
        if E.is_elf(head):
            if st.st_size > limits.INFER_FILE_BYTES:
                return [Finding("skipped", f"{st.st_size >> 20} MiB is over the {limits.INFER_FILE_BYTES >> 20} "
                                           "MiB limit", "/" + name, "size")]
            return analyse_elf("/" + name, Blob(fh, st.st_size))
        if name.endswith(".pc") and "pkgconfig" in os.path.dirname(name) and st.st_size < 1 << 20:
            return analyse_pc("/" + name, head + fh.read(1 << 20))
    return []


def infer_sif_artifact(source, doc: Dict, scopes: Optional[List[str]] = None, label: str = "") -> Dict:
    """Proposals for a SIF artifact in a registry or a layout: its one layer copied to a
    private temporary file (at most ``limits.SIF_FILE_BYTES``, verified against its digest
    as it streams), then read as :func:`infer_sif` reads a file."""
    layer = sif.layer_of(doc)
    what = printable(label or layer["digest"][:19], 200)
    if layer["size"] > limits.SIF_FILE_BYTES:
        raise BadInput(f"{what}: SIF of {layer['size'] >> 20} MiB (at most limits.SIF_FILE_BYTES: "
                       f"{limits.SIF_FILE_BYTES >> 20} MiB)")
    algorithm = check(layer["digest"], what).split(":")[0]
    h = hashlib.new(algorithm)
    with tempfile.NamedTemporaryFile(prefix="compat-sif-", suffix=".sif") as tmp:
        blob = source.open_blob(layer["digest"], layer["size"])
        try:
            for piece in iter(lambda: blob.read(1 << 20), b""):
                h.update(piece)
                tmp.write(piece)
        finally:
            blob.close()
        tmp.flush()
        if f"{algorithm}:{h.hexdigest()}" != layer["digest"]:
            raise BadInput(f"{what}: the SIF does not match its digest {layer['digest']}")
        return infer_sif(tmp.name, scopes, label)
