"""``--format``: the pinned image in the form each runtime accepts for that kind of source.

Registries: every runtime takes ``docker://registry/repo@sha256:<child>`` (enroot also the
``registry#repo`` form). OCI layouts (``oci:DIR``) are another matter, and each runtime's own
syntax decides (spec/cli.md, "--format"):

- podman, skopeo, buildah (containers/image ``oci:DIR[:NAME]``): NAME is the
  ``org.opencontainers.image.ref.name`` of an entry of ``DIR/index.json``; there is no digest
  form (``oci:DIR@sha256:…`` is read as the directory ``DIR@sha256``).
- apptainer >= 1.4 (go-containerregistry, ``oci:DIR[@sha256:…]``): the digest must be an entry
  of ``DIR/index.json`` itself; a manifest inside a nested index cannot be named.
- enroot: imports from registries, ``dockerd://`` and ``podman://`` only; no layouts.

Where the runtime cannot name the selected manifest, the command refuses (exit 2) and says why,
instead of printing something the runtime rejects.

A SIF child (an ORAS artifact, spec/oci.md "SIF children") is named ``oras://registry/repo@sha256:…``
for the runtimes that run SIF (``runs`` in compat/data/runtimes.json: apptainer; from an OCI
layout, the SIF file itself, ``DIR/blobs/sha256/<layer>``, which apptainer runs as a path); for
any other format it is refused. Selection already excludes SIF children for a runtime that cannot run
them (the runtime dimension, compat/match/runtime.py); the refusal here is the last defence
for a digest chosen some other way (``--platform``, the API).
"""
from __future__ import annotations

from collections.abc import Mapping

from compat.errors import BadInput, printable
from compat.vocab.data import runtimes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List

FORMATS = ("ref", "digest", "apptainer", "podman", "enroot", "json")
REF_NAME = "org.opencontainers.image.ref.name"


def pinned(ref, digest: str, fmt: str = "ref", sif: bool = False) -> str:
    """The child ``digest`` of the index ``ref`` named the way ``fmt``'s runtime accepts;
    ``sif``: the child is a SIF artifact."""
    if fmt not in FORMATS or fmt == "json":
        raise BadInput(f"--format {printable(fmt, 40)}: not a reference format ({', '.join(FORMATS[:-1])})")
    if fmt == "digest":
        return digest
    if sif:
        return _sif(ref, digest, fmt)
    if not ref.is_layout:
        return ref.pinned(digest, fmt)
    if fmt == "ref":
        return f"oci:{ref.layout}@{digest}"
    if fmt == "enroot":
        raise BadInput(f"{_where(ref)}: enroot cannot import from an OCI layout (only docker://, dockerd://, "
                       f"podman://): push the layout to a registry, or use --format podman and enroot's podman://")
    entries = _top_entries(ref)
    if fmt == "podman":
        names = [(d.get("annotations") or {}).get(REF_NAME) for d in entries if d.get("digest") == digest]
        names = [n for n in names if isinstance(n, str) and n]
        if names:
            return f"oci:{ref.layout}:{names[0]}"
        raise BadInput(f"{_where(ref)}: podman/skopeo name an image of a layout only by the "
                       f"{REF_NAME} of an entry of index.json, and none names {digest[:19]}: "
                       f"push the layout to a registry, or tag that manifest in index.json")
    if any(d.get("digest") == digest for d in entries):      # apptainer
        return f"oci:{ref.layout}@{digest}"
    raise BadInput(f"{_where(ref)}: apptainer reads from a layout only the manifests index.json lists, "
                   f"and {digest[:19]} is inside a nested index: push the layout to a registry")


def _sif(ref, digest: str, fmt: str) -> str:
    """A SIF child: ``oras://`` for a runtime that runs SIF, the plain reference for ``ref``."""
    if fmt != "ref" and "sif" not in runtimes().get(fmt, {}).get("runs", ()):
        raise BadInput(f"{printable(digest[:19], 19)} is a SIF (an ORAS artifact): {fmt} cannot run it; "
                       f"select with --format apptainer, or for {fmt} from the index's OCI images")
    if ref.is_layout:
        if fmt == "ref":
            return f"oci:{ref.layout}@{digest}"
        return _sif_file(ref, digest)
    plain = ref.pinned(digest, "ref")
    return plain if fmt == "ref" else f"oras://{plain}"


def _sif_file(ref, digest: str) -> str:
    """A SIF child of a layout for apptainer: the SIF file itself, the one layer blob of its
    manifest (apptainer runs a SIF path; its ``oci:`` source reads OCI images only)."""
    # start-up: the layout reader loads only for an oci: source
    from compat.oci.layout import Layout
    from compat.oci.digest import blob_path
    from compat.oci.sif import layer_of
    layer = layer_of(Layout(ref.layout).fetch(digest))
    return blob_path(ref.layout, layer["digest"], _where(ref))


def _where(ref) -> str:
    return printable(f"oci:{ref.layout}", 120)


def _top_entries(ref) -> List[Mapping]:
    # start-up: the layout reader loads only for an oci: source
    from compat.oci.layout import Layout
    entries = Layout(ref.layout).entries()
    return [d for d in entries if isinstance(d, Mapping)]
