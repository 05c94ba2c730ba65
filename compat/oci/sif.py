"""SIF, the Singularity Image Format (Apptainer, SingularityCE): its global header and
descriptor table, read from bytes (spec/oci.md, "SIF children").

The byte layout is the one ``github.com/sylabs/sif`` (``pkg/sif``) writes and reads, all
integers little-endian, structures packed:

- global header, 128 bytes: launch script (32), magic ``SIF_MAGIC\\0`` (10), version
  (3, ``"01\\0"``), primary architecture (3, a two-digit code and NUL), ID (16, a UUID),
  then eight int64: created, modified, descriptors free, descriptors total, descriptors
  offset, descriptors size, data offset, data size;
- descriptor table at ``descriptors offset``, ``descriptors total`` slots of 585 bytes:
  data type (int32), used (1 byte), ID, group ID, linked ID (uint32), then int64 offset,
  size, size with padding, created, modified, UID, GID, a 128-byte name and 384 bytes of
  type-specific data; a partition's are file-system type (int32), partition type (int32)
  and architecture (3 bytes, the header's codes).

The codes below are the format's own (``pkg/sif/sif.go``, ``arch.go``), part of the layout
like the magic, not site knowledge. Hostile input (a truncated header, a descriptor table or
an object outside the file, more slots than ``limits.SIF_DESCRIPTORS``) is BadInput with the
reason; nothing here allocates more than the bytes it was given.
"""
from __future__ import annotations

import struct

from compat import limits
from compat.errors import BadInput, printable
from compat.oci import media
from compat.oci.digest import digest_of
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple

MAGIC = b"SIF_MAGIC\0"
VERSION = "01"                      # sylabs/sif CurrentVersion; its loader refuses any other
HEADER = struct.Struct("<32s10s3s3s16s8q")
DESCRIPTOR = struct.Struct("<iBIIIqqqqqqq128s384s")
PARTITION = struct.Struct("<ii3s")
HEADER_BYTES = HEADER.size          # 128
DESCRIPTOR_BYTES = DESCRIPTOR.size  # 585

#: SIF architecture code -> Go/OCI architecture name (sylabs/sif pkg/sif/arch.go)
ARCHES = {"01": "386", "02": "amd64", "03": "arm", "04": "arm64", "05": "ppc64", "06": "ppc64le",
          "07": "mips", "08": "mipsle", "09": "mips64", "10": "mips64le", "11": "s390x",
          "12": "riscv64", "13": "loong64"}
DATA_PARTITION = 0x4004
DATA_TYPES = {0x4001: "deffile", 0x4002: "envvar", 0x4003: "labels", DATA_PARTITION: "partition",
              0x4005: "signature", 0x4006: "generic-json", 0x4007: "generic", 0x4008: "crypto-message",
              0x4009: "sbom", 0x400a: "oci-root-index", 0x400b: "oci-blob"}
FS_TYPES = {1: "squashfs", 2: "ext3", 3: "archive", 4: "raw", 5: "encrypted-squashfs"}
PART_TYPES = {1: "system", 2: "primary", 3: "data", 4: "overlay"}


class Partition(Record):
    id: int
    group: int
    fs: str                         # squashfs, ext3, archive, raw, encrypted-squashfs, unknown
    kind: str                       # system, primary (the primary system partition), data, overlay, unknown
    arch: str                       # OCI architecture name; "" when the code is unknown ("00")
    offset: int
    size: int


class Sif(Record):
    version: str
    created: int                    # seconds since the epoch (the header's)
    arch: str                       # the header's primary architecture; "" when unknown
    descriptors_total: int
    descriptors_free: int
    descriptors_offset: int
    data_offset: int
    data_size: int
    objects: Tuple[str, ...]        # the data type of every used descriptor, in table order
    partitions: Tuple[Partition, ...]

    @property
    def primary(self) -> Optional[Partition]:
        """The primary system partition (what Apptainer mounts as the container's root)."""
        return next((p for p in self.partitions if p.kind == "primary"), None)

    @property
    def architecture(self) -> str:
        """The image's architecture: the header's, else the primary partition's (sylabs/sif
        sets the header from the primary partition; a file written otherwise may lack it)."""
        return self.arch or (self.primary.arch if self.primary else "")

    def problems(self):
        """What is inconsistent though parseable (what validate reports and annotate refuses):
        no primary system partition, or more than one, the header and the primary partition
        disagreeing on the architecture, or neither naming one (apptainer push refuses it)."""
        primary = self.primary
        if primary is None:
            return ["no primary system partition (nothing for a runtime to run)"]
        out = []
        primaries = [p.arch or "unknown" for p in self.partitions if p.kind == "primary"]
        if len(primaries) > 1:
            out.append(f"{len(primaries)} primary system partitions ({', '.join(primaries)}): a SIF has one")
        if self.arch and primary.arch and primary.arch != self.arch:
            out.append(f"header architecture {self.arch} but primary partition {primary.arch}")
        if not self.architecture:
            out.append("no architecture in the SIF header or its primary partition (apptainer push refuses it too)")
        return out


def _arch(code: bytes) -> str:
    return ARCHES.get(code.rstrip(b"\0").decode("latin-1"), "")


def meta_length(head: bytes, what: str = "SIF") -> int:
    """How many bytes from the start of the file hold the header and the descriptor table
    (what :func:`parse` needs), checked against ``limits.SIF_META_BYTES``."""
    h = _header(head, what)
    end = h[1] + h[0] * DESCRIPTOR_BYTES
    if end > limits.SIF_META_BYTES:
        raise BadInput(f"{what}: descriptor table ends at byte {end}, past limits.SIF_META_BYTES "
                       f"({limits.SIF_META_BYTES})")
    return end


def _header(data: bytes, what: str) -> Tuple[int, int, tuple]:
    """(descriptors total, descriptors offset, the unpacked header) after the checks that need
    nothing but the header."""
    if len(data) < HEADER_BYTES:
        raise BadInput(f"{what}: {len(data)} bytes, shorter than a SIF header ({HEADER_BYTES})")
    h = HEADER.unpack_from(data)
    if h[1] != MAGIC:
        raise BadInput(f"{what}: not a SIF file (no SIF_MAGIC at byte 32)")
    version = h[2].rstrip(b"\0").decode("latin-1")
    if version != VERSION:
        raise BadInput(f"{what}: SIF version {printable(version, 8)} (compat reads {VERSION})")
    free, total, offset = h[7], h[8], h[9]
    if not 0 <= total <= limits.SIF_DESCRIPTORS:
        raise BadInput(f"{what}: {total} descriptor slots (at most limits.SIF_DESCRIPTORS: {limits.SIF_DESCRIPTORS})")
    if not 0 <= free <= total:
        raise BadInput(f"{what}: {free} free descriptors of {total}")
    if offset < HEADER_BYTES:
        raise BadInput(f"{what}: descriptor table at offset {offset}, inside the header")
    return total, offset, h


def parse(data: bytes, file_size: Optional[int] = None, what: str = "SIF") -> Sif:
    """The header and descriptor table of a SIF whose first bytes are ``data`` (at least up to
    :func:`meta_length`); ``file_size``: the whole file's size, when known, which every
    object must lie inside (else ``len(data)`` bounds only the table)."""
    total, offset, h = _header(data, what)
    end = offset + total * DESCRIPTOR_BYTES
    if end > len(data) or (file_size is not None and end > file_size):
        raise BadInput(f"{what}: descriptor table ({total} slots at offset {offset}) runs past the "
                       f"{'file' if file_size is not None and end > file_size else 'bytes read'}")
    size = file_size if file_size is not None else None
    table_size = h[10]
    if not 0 <= table_size <= limits.SIF_META_BYTES or (size is not None and offset + table_size > size):
        raise BadInput(f"{what}: descriptor table size {table_size} outside the file "
                       f"(or past limits.SIF_META_BYTES, {limits.SIF_META_BYTES})")
    data_offset, data_size = h[11], h[12]
    if data_offset < 0 or data_size < 0 or (size is not None and data_offset + data_size > size):
        raise BadInput(f"{what}: data section ({data_size} bytes at {data_offset}) outside the file")
    objects, partitions = [], []
    for i in range(total):
        d = DESCRIPTOR.unpack_from(data, offset + i * DESCRIPTOR_BYTES)
        if not d[1]:
            continue
        dtype, oid, group, obj_offset, obj_size = d[0], d[2], d[3], d[5], d[6]
        if obj_offset < 0 or obj_size < 0 or (size is not None and obj_offset + obj_size > size):
            raise BadInput(f"{what}: object {oid} ({obj_size} bytes at {obj_offset}) outside the file")
        objects.append(DATA_TYPES.get(dtype, "unknown"))
        if dtype == DATA_PARTITION:
            fs, kind, arch = PARTITION.unpack_from(d[13])
            partitions.append(Partition(id=oid, group=group & 0x0FFFFFFF, fs=FS_TYPES.get(fs, "unknown"),
                                        kind=PART_TYPES.get(kind, "unknown"), arch=_arch(arch),
                                        offset=obj_offset, size=obj_size))
    return Sif(version=VERSION, created=h[5], arch=_arch(h[3]), descriptors_total=total, descriptors_free=h[7],
               descriptors_offset=offset, data_offset=data_offset, data_size=data_size,
               objects=tuple(objects), partitions=tuple(partitions))


def platform(sif: Sif) -> Optional[dict]:
    """The OCI platform of a SIF (``{"os": "linux", "architecture": ...}``; SIF images are
    Linux root file systems); None when neither header nor primary partition names one."""
    arch = sif.architecture
    return {"os": "linux", "architecture": arch} if arch else None


#: the layer media types Apptainer pulls as a SIF: v1, and the prototype's (Singularity < 3.7,
#: misspelt; apptainer internal/pkg/client/oras/layer.go)
LAYER_TYPES = (media.SIF_LAYER, "appliciation/vnd.sylabs.sif.layer.tar")
#: 9999-12-31T23:59:59Z, the last second a four-digit year (and Python's datetime) can write
LAST_SECOND = 253402300799
#: the config Apptainer pushes: the empty JSON object (oras/config.go)
EMPTY_CONFIG = b"{}"


def is_sif_manifest(doc) -> bool:
    """A manifest whose config is the SIF config type (what ``apptainer push oras://`` writes;
    an index descriptor for it carries that type as its ``artifactType``)."""
    cfg = doc.get("config") if isinstance(doc, dict) else None
    return isinstance(cfg, dict) and cfg.get("mediaType") == media.SIF_CONFIG


def manifest_problems(doc) -> list:
    """Why a SIF artifact manifest is not one Apptainer pulls: the config type, exactly one
    layer of a SIF layer type with a digest and a size ([] when it is)."""
    if not is_sif_manifest(doc):
        return [f"config media type is not {media.SIF_CONFIG}"]
    layers = doc.get("layers")
    if not isinstance(layers, list) or len(layers) != 1:
        return [f"{len(layers) if isinstance(layers, list) else 'no'} layers; a SIF artifact has exactly one"]
    layer = layers[0]
    if not isinstance(layer, dict) or layer.get("mediaType") not in LAYER_TYPES:
        return [f"layer media type {printable((layer or {}).get('mediaType') if isinstance(layer, dict) else layer, 80)}"
                f" is not {media.SIF_LAYER}"]
    size = layer.get("size")
    if not isinstance(layer.get("digest"), str) or size.__class__ is not int or size < HEADER_BYTES:
        return ["the SIF layer has no digest or a size below a SIF header's"]
    return []


def layer_of(doc) -> dict:
    """The one SIF layer of a SIF artifact manifest; BadInput with the reason otherwise."""
    problems = manifest_problems(doc)
    if problems:
        raise BadInput(f"SIF artifact: {problems[0]}")
    return doc["layers"][0]


def artifact_manifest(layer_digest: str, size: int, title: str, created: int = 0) -> dict:
    """The manifest ``apptainer push oras://`` writes for one SIF (apptainer
    internal/pkg/client/oras/image.go): an OCI image manifest, the empty-JSON config typed
    SIF_CONFIG, one SIF_LAYER layer (the whole file) titled with the file's name, and the
    SIF's creation time as ``org.opencontainers.image.created``."""
    doc = {"schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
           "config": {"mediaType": media.SIF_CONFIG, "digest": digest_of(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)},
           "layers": [{"mediaType": media.SIF_LAYER, "digest": layer_digest, "size": size,
                       "annotations": {"org.opencontainers.image.title": title}}]}
    if 0 < created <= LAST_SECOND:         # a later "created" is not a date: no annotation
        # start-up: only annotate writes a SIF manifest; select never loads datetime
        from datetime import datetime, timezone
        stamp = datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        doc["annotations"] = {"org.opencontainers.image.created": stamp}
    return doc
