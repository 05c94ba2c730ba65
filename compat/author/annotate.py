"""Build an extended index from variant images, or rewrite the annotations of an existing
one; check it; push it (or print it, with ``--dry-run``).

Deterministic by construction: the same input gives the same index bytes, hence the same
digest, so a re-run changes nothing; a rewrite that changes nothing pushes nothing.
"""
from __future__ import annotations

import copy
import json
import re

from compat.author import lint, nfd
from compat.author.sif import SifFile, descriptor_problems, is_sif_variant
from compat.author.variants import Variant, full_key
from compat.errors import BadInput
from compat.oci import digest as M, media
from compat.oci.manifest import not_image_reason
from compat.oci.platform import from_descriptor, normalise
from compat.oci.reference import Reference, parse as parse_ref
from compat.oci.sif import is_sif_manifest
from compat.oci.sink import copy_image, open_sink
from compat.oci.source import Source
from compat.record import Record
from compat.vocab.annotations import PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Sequence, Tuple


class Plan(Record):
    index: Dict                      # the index document to push
    labels: List[str]                # a location label per descriptor, for messages
    images: List[Tuple]              # (source, digest, media type, manifest doc) to make present
    problems: List[lint.Problem]
    unchanged: bool = False          # rewrite mode: nothing to do
    source_digest: str = ""
    sif_problems: List[lint.Problem] = []     # validate's SIF checks of the variants (build mode)


def serialise(index: Dict) -> bytes:
    return json.dumps(index, indent=2, ensure_ascii=False).encode()


def _open(ref: Reference, plain_http: bool, timeout: float, deadline=None):
    return Source(ref, plain_http=plain_http, timeout=timeout, deadline=deadline)


def build(variants: Sequence[Variant], index_annotations: Optional[Dict[str, str]] = None,
          plain_http: bool = False, timeout: float = 30.0, deadline=None) -> Plan:
    """``deadline``: a compat.oci.http.Deadline shared by every client of the command, so
    ``timeout`` bounds all of its network work together (spec/cli.md)."""
    manifests, labels, images, sif_problems = [], [], [], []
    for v in variants:
        if is_sif_variant(v.ref):            # a local SIF: pushed as an ORAS artifact
            src = SifFile(v.ref)
            digest, mt, doc = src.digest, media.OCI_MANIFEST, src.doc
            desc = src.descriptor()
            if v.platform:
                desc["platform"] = dict(v.platform)
        else:
            src = _open(parse_ref(v.ref), plain_http, timeout, deadline)
            digest, mt, doc = src.resolve()
            if mt in media.INDEXES:
                raise BadInput(f"variant {v.ref}: is an image index; name one of its images by digest")
            desc = _descriptor(src, digest, mt, doc, v.platform)
        if v.annotations:
            desc["annotations"] = dict(v.annotations)
        manifests.append(desc)
        labels.append(lint.position(len(labels), v.ref))
        images.append((src, digest, mt, doc))
        if is_sif_manifest(doc):           # a stated platform against the header, as validate checks it
            sif_problems += descriptor_problems(src, desc, labels[-1], doc)
    index = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": manifests}
    if index_annotations:
        index["annotations"] = dict(index_annotations)
    return Plan(index, labels, images, lint.lint_index(index, labels) + sif_problems, sif_problems=sif_problems)


def _descriptor(src, digest: str, mt: str, doc: Dict, platform) -> Dict:
    """The index entry for a variant read from a registry or a layout (a SIF artifact pushed
    by ``apptainer push oras://`` included: typed, its platform from the SIF header)."""
    data = src.manifest_bytes(digest)
    platform = dict(platform) if platform else src.platform_of(doc)
    desc = {"mediaType": mt, "digest": digest, "size": len(data)}
    if is_sif_manifest(doc):
        desc["artifactType"] = media.SIF_CONFIG
    if platform:
        desc["platform"] = platform
    return desc


class Edit(Record):
    selector: str
    key: str
    value: Optional[str]             # None: remove the key


def parse_edits(sets: Sequence[Sequence[str]], unsets: Sequence[Sequence[str]]) -> List[Edit]:
    edits = []
    for selector, pair in sets:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set {selector} {pair!r}: expected KEY=VALUE")
        edits.append(Edit(selector, full_key(key), value.strip()))
    for selector, key in unsets:
        edits.append(Edit(selector, full_key(key), None))
    return edits


def select_descriptors(index: Dict, selector: str) -> List[int]:
    """``all`` (every image entry), ``#N`` (position counted from 1, as ``validate`` and ``select --explain``
    number things), a digest or its prefix (``sha256:1234abcd``), or ``os/arch[/variant]``.
    Returns 0-based list positions."""
    manifests = index.get("manifests") or []
    if selector == "all":            # the entries selection reads: not attestations, artifacts, nested indexes
        return [i for i, d in enumerate(manifests)
                if not_image_reason(d) is None and d.get("mediaType") not in media.INDEXES]
    m = re.fullmatch(r"#(\d{1,9})", selector.strip())
    if m:
        n = int(m.group(1))
        if n == 0:
            raise BadInput(f"selector {selector}: positions count from #1 (the first descriptor)")
        if n > len(manifests):
            raise BadInput(f"selector {selector}: the index has {len(manifests)} descriptor(s), "
                           f"#1 to #{len(manifests)}")
        return [n - 1]
    if selector.startswith("sha256:"):
        hits = [i for i, d in enumerate(manifests) if d.get("digest", "").startswith(selector)]
        if len(hits) != 1:
            raise BadInput(f"selector {selector}: matches {len(hits)} descriptors (need exactly one)")
        return hits
    parts = selector.split("/")
    if len(parts) in (2, 3):
        want = normalise(*parts) if len(parts) == 3 else normalise(parts[0], parts[1], "")
        hits = []
        for i, d in enumerate(manifests):
            p = from_descriptor(d.get("platform"))
            if p and (p.os, p.arch) == (want.os, want.arch) and (len(parts) == 2 or p.variant == want.variant):
                hits.append(i)
        if not hits:
            raise BadInput(f"selector {selector}: no descriptor has that platform")
        return hits
    raise BadInput(f"selector {selector!r}: expected all, #N, sha256:<prefix> or os/arch[/variant]")


def rewrite(ref: Reference, edits: Sequence[Edit], plain_http: bool = False, timeout: float = 30.0,
            deadline=None) -> Plan:
    src = _open(ref, plain_http, timeout, deadline)
    digest, mt, doc = src.resolve()
    if mt not in media.INDEXES:
        raise BadInput(f"{ref}: is an image manifest, not an index; build one with --variant")
    new = copy.deepcopy(doc)
    for e in edits:
        for i in select_descriptors(new, e.selector):
            d = new["manifests"][i]
            ann = dict(d.get("annotations") or {})
            if e.value is None:
                ann.pop(e.key, None)
            else:
                ann[e.key] = e.value
            if ann:
                d["annotations"] = ann
            else:
                d.pop("annotations", None)
    labels = [lint.position(i, d.get("digest", "")[:19]) for i, d in enumerate(new.get("manifests", []))]
    return Plan(new, labels, [(src, d["digest"], d["mediaType"], None) for d in new["manifests"]],
                lint.lint_index(new, labels), unchanged=(new == doc), source_digest=digest)


def attach_nfd(sink, index: Dict, created: str) -> List[str]:
    """Attach an NFD compatibility artifact to every image of ``index`` (skipping one whose
    identical spec is already attached); returns the artifact digests pushed."""
    pushed = []
    empty = b"{}"
    for desc in index["manifests"]:
        if not_image_reason(desc) or desc.get("mediaType") in media.INDEXES:
            continue
        tag = (desc.get("annotations") or {}).get(PREFIX + "description", "") or desc["digest"][7:19]
        layer, man = nfd.artifact(desc, desc.get("annotations") or {}, tag, created)
        layer_digest = M.digest_of(layer)
        if any((d.get("annotations") or {}).get(nfd.SPEC_DIGEST) == layer_digest
               for d in sink.referrers(desc["digest"])):
            continue
        doc = json.loads(man)
        doc["annotations"][nfd.SPEC_DIGEST] = layer_digest
        man = json.dumps(doc, indent=2, sort_keys=True).encode()
        if not sink.has_blob(nfd.EMPTY_CONFIG["digest"]):
            sink.put_blob(nfd.EMPTY_CONFIG["digest"], empty)
        sink.put_blob(layer_digest, layer)
        descriptor = {"mediaType": media.OCI_MANIFEST, "digest": M.digest_of(man), "size": len(man),
                      "artifactType": nfd.ARTIFACT_TYPE, "annotations": dict(doc["annotations"])}
        pushed.append(sink.attach(man, descriptor, desc["digest"]))
    return pushed


class Inferred(Record):
    label: str
    digest: str
    result: Dict                     # compat.infer.infer_image()
    disagreements: List[str]


def infer(plan: Plan, scopes: Optional[List[str]] = None, write: bool = False,
          prefer_inferred: bool = False) -> Tuple[Plan, List[Inferred]]:
    """Infer annotations for every image of the plan; with ``write``, merge them into the
    index (hand-written values win unless ``prefer_inferred``). Returns the new plan."""
    index = copy.deepcopy(plan.index)
    reports = []
    for i, (src, digest, mt, doc) in enumerate(plan.images):
        desc = index["manifests"][i]
        if not_image_reason(desc) or mt in media.INDEXES:
            continue
        if doc is None:
            doc = src.fetch(digest, mt)
        result = _infer_one(src, digest, doc, scopes, plan.labels[i])
        ann = dict(desc.get("annotations") or {})
        disagreements = []
        for p in result["proposals"]:
            key = PREFIX + p.key
            if key in ann and ann[key] != p.value:
                keep = "inferred" if prefer_inferred else "hand-written"
                disagreements.append(f"{key}: hand-written {ann[key]!r}, inferred {p.value!r} (kept {keep})")
                if prefer_inferred:
                    ann[key] = p.value
            elif key not in ann:
                ann[key] = p.value
        if write:
            if ann:
                desc["annotations"] = ann
        reports.append(Inferred(plan.labels[i], digest, result, disagreements))
    if not write:
        return plan, reports
    labels = plan.labels
    new = plan._replace(index=index, problems=lint.lint_index(index, labels) + plan.sif_problems,
                        unchanged=plan.unchanged and index == plan.index)
    return new, reports


def _infer_one(src, digest: str, doc: Dict, scopes, label: str) -> Dict:
    """Proposals for one variant: a SIF file's or artifact's squashfs, an image's layers."""
    # start-up: only --infer reads layers (ELF, fat binaries) and SIF partitions
    from compat.infer import infer_image
    from compat.infer.sif import infer_sif, infer_sif_artifact
    if isinstance(src, SifFile):
        return infer_sif(src.path, scopes, label)
    if is_sif_manifest(doc):
        return infer_sif_artifact(src, doc, scopes, label)
    return infer_image(src, digest, doc, scopes, label)


def publish(plan: Plan, dest: Reference, plain_http: bool = False, timeout: float = 30.0,
            nfd_created: Optional[str] = None, deadline=None) -> str:
    """Make every image present at ``dest``, push the index under its tag, and (when
    ``nfd_created`` is given) attach NFD artifacts created at that time."""
    sink = open_sink(dest, plain_http=plain_http, timeout=timeout, deadline=deadline)
    try:
        for src, digest, mt, doc in plan.images:
            same_repo = (src.ref is not None and not src.ref.is_layout and not dest.is_layout
                         and src.ref.registry == dest.registry)
            if same_repo and src.ref.repository == dest.repository:
                continue                    # already there
            if doc is None:
                doc = src.fetch(digest, mt)
            if mt in media.INDEXES:
                raise BadInput(f"{digest}: nested indexes are not copied between repositories")
            copy_image(src, sink, digest, mt, doc, src.ref.repository if same_repo else None)
        digest = sink.put_manifest(dest.tag or "latest", serialise(plan.index), media.OCI_INDEX)
        if nfd_created:
            attach_nfd(sink, plan.index, nfd_created)
        return digest
    finally:
        sink.close()
        for src, *_ in plan.images:
            src.close()
