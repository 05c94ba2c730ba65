"""Build SIF files for the tests, to the SIF format as sylabs/sif writes it (the byte layout is
documented in compat/oci/sif.py), around a squashfs image made by Debian's ``mksquashfs``
(squashfs-tools). The builder writes what ``sif.CreateContainer`` + ``AddObject`` write: a
launch script, 48 descriptor slots at offset 4096, data from 32,176, each partition aligned
to 4096, the header's architecture set from the primary partition."""
import os
import shutil
import struct
import subprocess
import uuid

import pytest

LAUNCH = b"#!/usr/bin/env run-singularity\n"
SLOTS, TABLE_AT, ALIGN = 48, 4096, 4096
CODES = {"386": b"01", "amd64": b"02", "arm": b"03", "arm64": b"04", "ppc64": b"05", "ppc64le": b"06",
         "s390x": b"11", "riscv64": b"12", "": b"00"}
FS = {"squashfs": 1, "ext3": 2, "raw": 4}
PART = {"system": 1, "primary": 2, "data": 3, "overlay": 4}

needs_squashfs = pytest.mark.skipif(not shutil.which("mksquashfs") or not shutil.which("unsquashfs"),
                                    reason="needs Debian's squashfs-tools (mksquashfs, unsquashfs)")


def squashfs(tree: str, out: str) -> bytes:
    """A squashfs image of the directory ``tree``, made by mksquashfs (deterministic: no
    timestamps, root-owned)."""
    subprocess.run(["mksquashfs", tree, out, "-noappend", "-quiet", "-no-progress", "-all-root",
                    "-mkfs-time", "0", "-all-time", "0", "-no-xattrs"], check=True,
                   stdout=subprocess.DEVNULL)
    with open(out, "rb") as fh:
        return fh.read()


def sif(partitions, header_arch=None, slots=SLOTS, objects=()):
    """SIF bytes. ``partitions``: [(data, fs, kind, arch)] as partition objects;
    ``objects``: [(data_type, data)] other objects (e.g. 0x4006 generic JSON);
    ``header_arch``: the header's architecture (default: the primary partition's)."""
    if header_arch is None:
        header_arch = next((a for _, _, k, a in partitions if k == "primary"), "")
    data_at = TABLE_AT + slots * 585
    body, descs, pos = b"", [], data_at
    items = [(0x4004, d, struct.pack("<ii3s", FS[fs], PART[kind], CODES[arch] + b"\0"))
             for d, fs, kind, arch in partitions] + [(t, d, b"") for t, d in objects]
    for i, (dtype, data, extra) in enumerate(items, 1):
        if dtype == 0x4004:
            pad = -pos % ALIGN
            body += b"\0" * pad
            pos += pad
        descs.append(struct.pack("<iBIIIqqqqqqq128s384s", dtype, 1, i, 1 | 0xF0000000, 0, pos, len(data),
                                 len(data), 0, 0, 0, 0, f"object{i}".encode(), extra))
        body += data
        pos += len(data)
    table = b"".join(descs) + b"\0" * (585 * (slots - len(descs)))
    header = struct.pack("<32s10s3s3s16s8q", LAUNCH, b"SIF_MAGIC\0", b"01\0", CODES[header_arch] + b"\0",
                         uuid.UUID(int=1).bytes, 0, 0, slots - len(descs), slots, TABLE_AT, len(table),
                         data_at, pos - data_at)
    return header + b"\0" * (TABLE_AT - len(header)) + table + body


def sif_around(tree: str, workdir: str, arch: str = "amd64", **kw) -> bytes:
    """A SIF whose primary system partition is a squashfs of ``tree``."""
    image = squashfs(tree, os.path.join(workdir, "root.squashfs"))
    return sif([(image, "squashfs", "primary", arch)], **kw)


def write_sif(path: str, tree: str, arch: str = "amd64", **kw) -> str:
    """``path`` holding a SIF around ``tree``; returns ``path``."""
    data = sif_around(tree, os.path.dirname(path), arch, **kw)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def app_tree(root: str, files=None) -> str:
    """A small root file system: ``files`` {relative path: bytes} (default one text file)."""
    for rel, data in (files or {"etc/os-release": b"ID=test\n"}).items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data)
    return root
