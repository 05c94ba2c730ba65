"""NFD image-compatibility artifacts attached to images: find the newest, read its spec.

Discovery: the referrers of the candidate's manifest (the referrers API, else the
``sha256-<hex>`` tag; in a layout, ``index.json`` entries with a ``subject``), filtered by
``artifactType``; several artifacts -> the newest ``org.opencontainers.image.created``
(missing or unparsable dates count as oldest; the ``oci.opencontainers.image.created`` typo of
NFD's docs is read too). Only the first layer is read, as NFD does; JSON is valid YAML.

Everything here is hostile input: the artifact manifest and its spec layer are capped by their
descriptors' ``size`` (``limits.ARTIFACT_BYTES``) before they are fetched, the layer's real
length is checked, digests go through :mod:`compat.oci.digest`, and the spec is parsed with
:func:`compat.io.load_structured` (bounded depth and expanded size). A bad artifact becomes
an :class:`Artifact` with ``error``: its candidate is excluded with that reason, the others
are still ranked.
"""
from __future__ import annotations

from collections.abc import Mapping

from compat import limits
from compat.errors import BadInput, RuleError, printable
from compat.io import load_structured
from compat.oci.digest import check as check_digest, is_digest
from compat.oci.manifest import not_image_reason
from compat.record import Record
from compat.vocab.annotations import PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional

ARTIFACT_TYPE = "application/vnd.nfd.image-compatibility.v1alpha1"
CREATED_KEYS = ("org.opencontainers.image.created", "oci.opencontainers.image.created")


class Artifact(Record):
    digest: str
    created: str
    spec: Optional[Mapping]
    subject: str
    error: str = ""          # why the artifact cannot be used: its candidate is excluded with this reason


def _created(desc: Mapping) -> "datetime.datetime":
    # start-up: datetime loads only when artifacts were found (most candidates have none)
    import datetime
    oldest = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    ann = desc.get("annotations")
    ann = ann if isinstance(ann, Mapping) else {}
    for key in CREATED_KEYS:
        value = ann.get(key)
        if isinstance(value, str) and value:
            try:
                stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                break
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.timezone.utc)
    return oldest


def newest(descriptors) -> Optional[Mapping]:
    """The newest NFD artifact among referrer descriptors (entries that are not objects are
    not artifacts)."""
    cands = [d for d in descriptors or () if isinstance(d, Mapping) and d.get("artifactType") == ARTIFACT_TYPE]
    if not cands:
        return None
    return max(cands, key=_created)     # max keeps the first of equal dates


def _size(desc: Mapping, what: str) -> int:
    """The descriptor's size, checked against ARTIFACT_BYTES before anything is fetched."""
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadInput(f"{what}: descriptor size {printable(size, 40)} is not a byte count")
    if size > limits.ARTIFACT_BYTES:
        raise BadInput(f"{what}: {size} bytes, more than the {limits.ARTIFACT_BYTES} an NFD artifact may have")
    return size


def _annotations(desc: Mapping, what: str) -> Mapping[str, str]:
    ann = desc.get("annotations")
    if ann is None:
        return {}
    if not isinstance(ann, Mapping) or not all(isinstance(v, str) for v in ann.values()):
        raise BadInput(f"{what}: annotations must map names to strings (got {printable(ann, 80)})")
    return ann


def _spec_layer(source, doc, where: str) -> Mapping:
    layers = doc.get("layers") if isinstance(doc, Mapping) else None
    if not isinstance(layers, list) or not layers or not isinstance(layers[0], Mapping):
        raise BadInput(f"{where}: no spec layer")
    layer = layers[0]
    digest = check_digest(layer.get("digest"), f"{where}: spec layer")
    size = _size(layer, f"{where}: spec layer")
    data = source.blob(digest)
    if len(data) > limits.ARTIFACT_BYTES or len(data) != size:
        raise BadInput(f"{where}: spec layer is {len(data)} bytes, its descriptor says {size}")
    spec = load_structured(data, f"{where}: spec")
    # start-up: NFD's rule language loads only when an artifact was found
    from compat.nfd.rules import check_spec
    try:
        check_spec(spec)
    except RuleError as exc:
        raise BadInput(f"{where}: {exc}") from None
    return spec


def _fetch(source, subject_digest: str, desc: Mapping) -> Artifact:
    digest = check_digest(desc.get("digest"), f"NFD artifact of {subject_digest[:19]}")
    where = f"NFD artifact {digest[:19]} of {subject_digest[:19]}"
    _size(desc, where)
    ann = _annotations(desc, where)
    doc = source.fetch(digest, desc.get("mediaType") if isinstance(desc.get("mediaType"), str) else None)
    spec = _spec_layer(source, doc, where)
    created = next((ann[k] for k in CREATED_KEYS if ann.get(k)), "")
    return Artifact(digest, created, spec, subject_digest)


def fetch(source, subject_digest: str) -> Optional[Artifact]:
    """The newest NFD artifact of ``subject_digest``, or None. An artifact compat cannot use
    (hostile, oversized, malformed, missing its layer) comes back with ``error`` set: it
    excludes its candidate only, with that reason."""
    desc = newest(source.referrers(subject_digest, ARTIFACT_TYPE))   # a registry failure fails the select
    if desc is None:
        return None
    try:
        return _fetch(source, subject_digest, desc)
    except BadInput as exc:
        digest = desc.get("digest") if is_digest(desc.get("digest")) else ""
        return Artifact(digest, "", None, subject_digest, error=str(exc))


def discover(source, index_digest: str, candidates, want_all: bool) -> Dict[str, Artifact]:
    """Artifacts for the candidates that need one (no compat annotations, or all when asked),
    falling back to an artifact attached to the index itself."""
    out: Dict[str, Artifact] = {}
    index_artifact = None
    index_checked = False
    for desc in candidates:
        if not_image_reason(desc):
            continue
        annotated = any(k.startswith(PREFIX) for k in (desc.get("annotations") or {}))
        if annotated and not want_all:
            continue
        art = fetch(source, desc["digest"])
        if art is None:
            if not index_checked:
                index_artifact, index_checked = fetch(source, index_digest), True
            art = index_artifact
        if art is not None:
            out[desc["digest"]] = art
    return out
