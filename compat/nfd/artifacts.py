"""NFD image-compatibility artifacts attached to images: find the newest, read its spec.

Discovery: the referrers of the candidate's manifest (the referrers API, else the
``sha256-<hex>`` tag; in a layout, ``index.json`` entries with a ``subject``), filtered by
``artifactType``; several artifacts -> the newest ``org.opencontainers.image.created``
(missing or unparsable dates count as oldest; the ``oci.opencontainers.image.created`` typo of
NFD's docs is read too). Only the first layer is read, as NFD does; JSON is valid YAML.
"""
from __future__ import annotations

import datetime
from typing import Dict, Mapping, NamedTuple, Optional

from compat.errors import BadInput
from compat.nfd.rules import RuleError, check_spec

ARTIFACT_TYPE = "application/vnd.nfd.image-compatibility.v1alpha1"
CREATED_KEYS = ("org.opencontainers.image.created", "oci.opencontainers.image.created")


class Artifact(NamedTuple):
    digest: str
    created: str
    spec: Mapping
    subject: str


def _created(desc: Mapping) -> datetime.datetime:
    ann = desc.get("annotations") or {}
    for key in CREATED_KEYS:
        value = ann.get(key)
        if value:
            try:
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                break
    return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


def newest(descriptors) -> Optional[Mapping]:
    cands = [d for d in descriptors if (d.get("artifactType") or "") == ARTIFACT_TYPE]
    if not cands:
        return None
    stamped = []
    for d in cands:
        c = _created(d)
        if c.tzinfo is None:
            c = c.replace(tzinfo=datetime.timezone.utc)
        stamped.append((c, d))
    return max(stamped, key=lambda cd: cd[0])[1]     # max keeps the first of equal dates


def fetch(source, subject_digest: str) -> Optional[Artifact]:
    """The newest NFD artifact of ``subject_digest``, or None. Bad artifacts are bad input."""
    desc = newest(source.referrers(subject_digest, ARTIFACT_TYPE))
    if desc is None:
        return None
    where = f"NFD artifact {desc['digest'][:19]} of {subject_digest[:19]}"
    doc = source.fetch(desc["digest"], desc.get("mediaType"))
    layers = doc.get("layers") or []
    if not layers or not isinstance(layers[0], Mapping) or "digest" not in layers[0]:
        raise BadInput(f"{where}: no spec layer")
    data = source.blob(layers[0]["digest"])
    from compat.author.variants import parse_text
    spec = parse_text(data.decode("utf-8", "replace"), where)
    try:
        check_spec(spec)
    except RuleError as exc:
        raise BadInput(f"{where}: {exc}") from None
    created = next(((desc.get("annotations") or {}).get(k) for k in CREATED_KEYS
                    if (desc.get("annotations") or {}).get(k)), "")
    return Artifact(desc["digest"], created, spec, subject_digest)


def discover(source, index_digest: str, candidates, want_all: bool) -> Dict[str, Artifact]:
    """Artifacts for the candidates that need one (no compat annotations, or all when asked),
    falling back to an artifact attached to the index itself."""
    from compat.match.rank import _skip_reason
    from compat.vocab.annotations import PREFIX

    out: Dict[str, Artifact] = {}
    index_artifact = None
    index_checked = False
    for desc in candidates:
        if _skip_reason(desc):
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
