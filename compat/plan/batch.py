"""Batch ranking: each index read and normalised once, ranked once per node class.

``plan(images, hosts)`` is the API a scheduler calls (``compat.plan``); ``compat plan`` is
its CLI. A class's ranking is the ranking every node of the class gets (spec/plan.md).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from compat.errors import printable
from compat.match.rank import Candidate, Ranking, flatten, rank as _rank
from compat.oci import media
from compat.oci.formats import pinned
from compat.oci.reference import parse as parse_ref
from compat.oci.source import Source
from compat.plan import features as F
from compat.plan import render
from compat.plan.inventory import Inventory, NodeClass, from_hosts, read
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Sequence, Tuple, Union

SCHEMA_ID = "compat.plan/v1"


class VariantPlan(Record):
    """One candidate of an image that is the best choice somewhere."""
    candidate: Candidate
    classes: Tuple[str, ...]          # class ids where it is the best
    nodes: Tuple[str, ...]
    constraint: Optional[str]         # Slurm --constraint; "" = every node; None = cannot be expressed
    constraint_problem: str = ""


class ImagePlan(Record):
    image: str                        # the reference as given (or "index")
    index_digest: str
    ref: object                       # compat.oci.reference.Reference, None for an in-memory index
    rankings: Mapping[str, Ranking]   # class id -> ranking

    def choice(self, class_id: str) -> Optional[Candidate]:
        return self.rankings[class_id].best

    def reason(self, class_id: str) -> str:
        """Why nothing fits (the deciding reason of the first non-skipped candidate)."""
        r = self.rankings[class_id]
        if r.best:
            return r.best.reason
        for c in r.candidates:
            if c.verdict != "skipped":
                return f"{c.digest[:19] or c.path}: {c.reason}"
        return "the index lists no images"

    def pinned(self, class_id: str, fmt: str = "ref") -> Optional[str]:
        best = self.choice(class_id)
        if best is None:
            return None
        if self.ref is None:
            return best.digest
        return pinned(self.ref, best.digest, fmt, sif=best.artifact_type == media.SIF_CONFIG)


class Plan(Record):
    classes: Tuple[NodeClass, ...]
    images: Tuple[ImagePlan, ...]
    inventory: Inventory
    node_class: Mapping[str, str]                 # node -> class id
    class_features: Mapping[str, Tuple[str, ...]]  # class id -> Slurm features (compat's vocabulary)

    def cls(self, class_id: str) -> NodeClass:
        return next(c for c in self.classes if c.id == class_id)

    def for_node(self, node: str, image: int = 0) -> Optional[Candidate]:
        """The chosen candidate of ``images[image]`` for ``node`` (None: nothing fits)."""
        return self.images[image].choice(self.node_class[node])

    def ranking_for_node(self, node: str, image: int = 0) -> Ranking:
        return self.images[image].rankings[self.node_class[node]]

    def variants(self, image: int = 0, nodes: Optional[Sequence[str]] = None) -> List[VariantPlan]:
        """Every candidate that is the best choice on some class (of ``nodes``, default all),
        most nodes first, with the Slurm constraint selecting exactly those classes."""
        ip = self.images[image]
        ids = _class_ids(self, nodes)
        by: Dict[str, List[str]] = {}
        cands: Dict[str, Candidate] = {}
        for cid in ids:
            best = ip.choice(cid)
            if best is not None:
                by.setdefault(best.digest, []).append(cid)
                cands.setdefault(best.digest, best)
        wanted_nodes = set(nodes) if nodes is not None else None
        out = []
        for digest, cids in by.items():
            others = [frozenset(self.class_features[c]) for c in ids if c not in cids]
            wanted = [frozenset(self.class_features[c]) for c in cids]
            try:
                expr, problem = F.constraint(wanted, others), ""
            except F.NoConstraint as exc:
                expr, problem = None, str(exc)
            members = tuple(n for c in cids for n in self.cls(c).nodes
                            if wanted_nodes is None or n in wanted_nodes)
            out.append(VariantPlan(cands[digest], tuple(cids), members, expr, problem))
        out.sort(key=lambda v: (-len(v.nodes), v.candidate.position))
        return out

    def to_dict(self) -> dict:
        return render.to_dict(self)


def _class_ids(p: Plan, nodes: Optional[Sequence[str]]) -> List[str]:
    if nodes is None:
        return [c.id for c in p.classes]
    wanted = {p.node_class[n] for n in nodes if n in p.node_class}
    return [c.id for c in p.classes if c.id in wanted]


def _inventory(hosts) -> Inventory:
    if isinstance(hosts, Inventory):
        return hosts
    if isinstance(hosts, Mapping):
        return from_hosts(dict(hosts))
    if isinstance(hosts, (str, os.PathLike)):
        return read([hosts])
    if isinstance(hosts, (list, tuple)):
        return read(list(hosts))
    raise TypeError("hosts: expected an Inventory, a {node: Host} mapping, or inventory source paths")


def plan(images: Union[str, Mapping, Sequence[Union[str, Mapping]]], hosts, *, platform: Optional[str] = None,
         allow_unknown: bool = False, plain_http: bool = False, timeout: float = 10.0) -> Plan:
    """Rank each image (a reference, or a parsed index dict) once per node class of ``hosts``
    (an Inventory, ``{node: Host}``, or ``--nodes`` source paths). NFD artifacts attached to
    images are not looked for (spec/plan.md: one index walk per image)."""
    inv = _inventory(hosts)
    classes = tuple(inv.classes())
    if isinstance(images, (str, Mapping)):
        images = [images]
    planned = tuple(_plan_image(img, classes, platform, allow_unknown, plain_http, timeout) for img in images)
    node_class = {n: c.id for c in classes for n in c.nodes}
    feats = {c.id: F.slurm_features(c.host) for c in classes}
    return Plan(classes, planned, inv, node_class, feats)


def _rank_all(index, classes, platform, allow_unknown, fetch) -> Dict[str, Ranking]:
    entries = flatten(index, fetch)        # nested indexes walked once for every class
    return {c.id: _rank(index, c.host, platform=platform, allow_unknown=allow_unknown, fetch=fetch, entries=entries)
            for c in classes}


def _plan_image(image, classes, platform, allow_unknown, plain_http, timeout) -> ImagePlan:
    if isinstance(image, Mapping):
        return ImagePlan("index", "", None, _rank_all(image, classes, platform, allow_unknown, None))
    if not isinstance(image, str):
        raise TypeError(f"images: expected a reference or an index dict, got {type(image).__name__}")
    reference = parse_ref(image)
    source = Source(reference, plain_http=plain_http, timeout=timeout)
    try:
        digest, mt, doc = source.resolve(descriptors=False)
        if mt in media.INDEXES:
            index = doc
        else:
            index = {"schemaVersion": 2, "manifests": [source.descriptor_of(digest, mt, doc)]}
        rankings = _rank_all(index, classes, platform, allow_unknown, source.fetch)
    finally:
        source.close()
    return ImagePlan(printable(image, 300), digest, reference, rankings)
