"""A local SIF file as an annotate variant (``--variant path/to/app.sif k=v``): the ORAS artifact
``apptainer push oras://`` would push, built here and pushed by compat's own client with the
index (spec/authoring.md, "SIF variants").
"""
from __future__ import annotations

import json
import os

from compat import limits
from compat.author.lint import ERROR, WARNING, Problem, position
from compat.errors import BadInput, printable
from compat.io import read_file
from compat.oci import manifest, media, sif
from compat.oci.digest import digest_of
from compat.oci.platform import normalise


def is_sif_variant(ref: str) -> bool:
    """A variant that names an existing file is a SIF file (references name no files)."""
    return os.path.isfile(ref)


class SifFile:
    """What :func:`compat.oci.sink.copy_image` reads from a source, for one SIF file: the file
    read whole (at most ``limits.SIF_FILE_BYTES``), its header checked, the artifact manifest
    Apptainer writes for it (deterministic: the same file gives the same manifest digest)."""

    ref = None                       # not in any repository: nothing to mount from

    def __init__(self, path: str):
        self.path = path
        what = printable(path, 200)
        self.data = read_file(path, limits.SIF_FILE_BYTES, what)
        self.header = sif.parse(self.data, len(self.data), what)
        problems = self.header.problems()
        if problems:
            raise BadInput(f"{what}: {problems[0]}")
        self.platform = sif.platform(self.header)     # not None: problems() names a SIF without one
        self.layer_digest = digest_of(self.data)
        doc = sif.artifact_manifest(self.layer_digest, len(self.data), os.path.basename(path), self.header.created)
        self.doc = doc
        self.manifest = json.dumps(doc, indent=2, sort_keys=True).encode()
        self.digest = digest_of(self.manifest)

    def descriptor(self) -> dict:
        """The index entry for this SIF: typed by its config (``artifactType``), with the
        header's platform."""
        return {"mediaType": media.OCI_MANIFEST, "digest": self.digest, "size": len(self.manifest),
                "artifactType": media.SIF_CONFIG, "platform": dict(self.platform)}

    def blob(self, digest: str, limit: int = 0) -> bytes:
        if digest == self.layer_digest:
            return self.data
        if digest == self.doc["config"]["digest"]:
            return sif.EMPTY_CONFIG
        raise BadInput(f"{printable(self.path, 200)}: no blob {printable(digest, 80)}")

    def sif_header(self, doc: dict, what: str = "SIF") -> sif.Sif:
        return self.header

    def manifest_bytes(self, digest: str) -> bytes:
        return self.manifest

    def fetch(self, digest: str, media_type=None) -> dict:
        return self.doc

    def close(self) -> None:
        self.data = b""


def sif_children(src, index) -> frozenset:
    """The digests of the children of ``index`` that select takes for SIFs: typed so, or
    listed with neither platform nor artifactType and found to be one
    (:meth:`compat.oci.source.Source.sif_descriptor`, select's own rule)."""
    return frozenset(d["digest"] for d in index.get("manifests") or ()
                     if not manifest.descriptor_problems(d) and media.is_sif(src.sif_descriptor(d)))


def child_problems(src, index) -> list:
    """What ``validate`` finds in the SIF children of an index (``src``: a Source): the
    manifest is not one Apptainer pulls (SIF config, exactly one SIF layer), the header does
    not parse or lacks a primary partition, the descriptor's architecture is not the header's,
    a SIF listed without ``artifactType``. Every image child is fetched (validate is the
    thorough command), except those that state another artifactType."""
    out = []
    for i, d in enumerate(index.get("manifests") or ()):
        if manifest.descriptor_problems(d) or d.get("mediaType") not in media.IMAGE_MANIFESTS or \
                (d.get("artifactType") and not media.is_sif(d)):
            continue
        out += descriptor_problems(src, d, position(i, d["digest"][:19]))
    return out


def descriptor_problems(src, d, where: str, doc=None) -> list:
    """What validate finds in one index entry that may be a SIF (``doc``: its manifest when
    already read); ``annotate`` runs it on each SIF variant before anything is pushed."""
    try:
        doc = src.fetch(d["digest"], d["mediaType"]) if doc is None else doc
    except BadInput as exc:
        return [Problem(ERROR, where, f"SIF artifact: {exc}")] if media.is_sif(d) else []
    if not sif.is_sif_manifest(doc):
        return [Problem(ERROR, where, f"artifactType is {media.SIF_CONFIG} but the manifest's config is "
                                      f"{printable((doc.get('config') or {}).get('mediaType'), 80)}")] \
            if media.is_sif(d) else []
    out = [] if media.is_sif(d) else [_untyped(d, where)]
    header, problems = artifact_problems(src, doc, where)
    out += problems
    plat = d.get("platform")
    if header is not None and isinstance(plat, dict) and header.architecture:
        said = normalise(str(plat.get("os", "")), str(plat.get("architecture", "")), "").arch
        if said != header.architecture:
            out.append(Problem(ERROR, where, f"platform says {printable(said, 40)}, the SIF header "
                                             f"{header.architecture}: selection would hand it to the wrong hosts"))
    return out


def _untyped(d, where: str) -> Problem:
    """A SIF listed without ``artifactType``: compat learns it is a SIF only from an entry with
    no platform either (one request); with a platform, select takes it for an OCI image."""
    if d.get("platform"):
        return Problem(ERROR, where, f"a SIF artifact listed with a platform but without artifactType "
                                     f"{media.SIF_CONFIG}: select takes it for an OCI image and hands it to "
                                     "runtimes that cannot run a SIF (podman, enroot, docker://)")
    return Problem(WARNING, where, f"a SIF artifact listed without artifactType {media.SIF_CONFIG}: compat "
                                   "reads its manifest to know it (one request); other tools do not")


def artifact_problems(src, doc, where: str):
    """(the SIF header or None, problems) of one SIF artifact manifest: one Apptainer pulls,
    a header that parses, a primary system partition."""
    problems = sif.manifest_problems(doc)
    if problems:
        return None, [Problem(ERROR, where, f"SIF artifact: {problems[0]}")]
    try:
        header = src.sif_header(doc, "SIF header")
    except BadInput as exc:
        return None, [Problem(ERROR, where, str(exc))]
    return header, [Problem(ERROR, where, f"SIF: {p}") for p in header.problems()]
