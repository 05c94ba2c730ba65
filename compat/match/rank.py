"""Ranking: every descriptor of an index becomes a :class:`Candidate` with a verdict, the
checks that decided it, and (when compatible) a ranking key.  Choosing is then ``max``.

Selection order (spec/selection.md, CONTRACT section 4): candidates -> platform filter ->
hard filter (every requirement) -> rank by GPU fit, fabric fit, MPI fit, CPU specificity,
number of satisfied requirements, ``weight``, index order.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from compat.host.profile import Host
from compat.match import compatibilities as compat_sets, cpu as cpu_m, fabric as fabric_m, gpu as gpu_m, \
    kernel as kernel_m, mpi as mpi_m, nfd as nfd_m, platform as platform_m
from compat.match.check import Check
from compat.nfd.rules import RuleError
from compat.oci import media
from compat.vocab import annotations as A

COMPATIBLE, INCOMPATIBLE, UNKNOWN, ERROR, SKIPPED = "compatible", "incompatible", "unknown", "error", "skipped"

#: fetch(digest, media_type) -> parsed child index (for nested indexes)
Fetch = Callable[[str, str], Mapping]


class Candidate(NamedTuple):
    position: int                       # order in the (flattened) index: first = 0
    digest: str
    media_type: str
    platform: Optional[Mapping]
    annotations: Mapping[str, str]
    verdict: str
    reason: str                         # the deciding reason
    checks: Tuple[Check, ...] = ()
    key: Tuple = ()                     # ranking key, compatible candidates only
    notes: Tuple[str, ...] = ()
    path: str = ""                      # "manifests[3]" or "manifests[1].manifests[0]"

    @property
    def compatible(self) -> bool:
        return self.verdict == COMPATIBLE

    @property
    def description(self) -> str:
        return self.annotations.get(A.PREFIX + "description", "")

    @property
    def platform_text(self) -> str:
        p = platform_m.from_descriptor(self.platform)
        return str(p) if p else "-"

    def score(self) -> Optional[Dict]:
        """The ranking key as named numbers (compatible candidates only; None otherwise).
        Candidates compare on gpu, cuda, cudaVersion, fabric, mpi, cpu, requirements, weight,
        in this order, higher first, then index position (first wins)."""
        if not self.key:
            return None
        (arch, cuda, cver), fab, mpi, cpu, nreq, weight, _ = self.key
        return {"gpu": arch, "cuda": cuda, "cudaVersion": ".".join(map(str, cver)) or None, "fabric": fab,
                "mpi": mpi, "cpu": cpu, "requirements": nreq, "weight": weight}

    def score_text(self) -> str:
        s = self.score()
        if s is None:
            return ""
        gpu = f"gpu {s['gpu']}" + (f"/{'native' if s['cuda'] == 2 else 'minor'} {s['cudaVersion']}"
                                   if s["cuda"] else "")
        return f"{gpu} fab {s['fabric']} mpi {s['mpi']} cpu {s['cpu']} req {s['requirements']}" + \
            (f" w {s['weight']}" if s["weight"] else "")

    def to_dict(self, rank: Optional[int] = None) -> Dict:
        """The candidate in the shape of schemas/defs.schema.json#/$defs/candidate (``rank``:
        its place among the compatible ones, 1 = selected)."""
        return {"position": self.position, "path": self.path, "digest": self.digest,
                "mediaType": self.media_type, "platform": self.platform_text,
                "verdict": self.verdict, "rank": rank, "reason": self.reason, "score": self.score(),
                "description": self.description, "notes": list(self.notes),
                "checks": [{"dimension": c.dimension, "ok": c.ok, "reason": c.reason}
                           for c in self.checks if c.reason]}


class Ranking(NamedTuple):
    """All candidates: compatible ones best first, then the others in index order."""

    candidates: Tuple[Candidate, ...]
    platform: platform_m.Platform

    @property
    def best(self) -> Optional[Candidate]:
        return self.candidates[0] if self.candidates and self.candidates[0].compatible else None

    @property
    def compatible(self) -> List[Candidate]:
        return [c for c in self.candidates if c.compatible]


def host_platform(host: Host, override: Optional[str] = None) -> platform_m.Platform:
    if override:
        return platform_m.parse(override)
    p = platform_m.normalise(host.os.name or "linux", host.os.arch or "", host.os.variant or "")
    return platform_m.Platform(p.os, p.arch, p.variant, tuple(host.os.features))


def _skip_reason(desc: Mapping) -> Optional[str]:
    ann = desc.get("annotations") or {}
    plat = desc.get("platform") or {}
    if ann.get("vnd.docker.reference.type") == "attestation-manifest" or \
            (plat.get("os") == "unknown" and plat.get("architecture") == "unknown"):
        return "attestation or unknown/unknown entry: not an image"
    if desc.get("artifactType"):
        return f"artifact ({desc['artifactType']}): not an image"
    mt = desc.get("mediaType", "")
    if mt and mt not in media.IMAGE_MANIFESTS and mt not in media.INDEXES:
        return f"media type {mt}: not an image manifest"
    return None


_NO_FEATURES = Check("platform.features", True, "", (0,))
_NO_SETS = Check("compatibilities", True, "", (0, 0))
_NO_NFD = Check("nfd", True, "", (0, 0))

#: which requirement keys each matcher reads: its verdict is memoised on their values
_MATCHERS = ((cpu_m, ("cpu.",)), (gpu_m, ("gpu.",)), (fabric_m, ("fabric",)),
             (mpi_m, ("mpi.", "libc.glibc")), (kernel_m, ("os.kernel",)))
_DIMENSION = {k: m.__name__ for k in A.KEYS for m, prefixes in _MATCHERS if k.startswith(prefixes)}


def _checks(req: A.Requirements, host: Host, memo: Optional[dict]) -> List[Check]:
    if memo is None:
        return [m.check(req, host) for m, _ in _MATCHERS]
    groups: Dict[str, list] = {}
    for k, v in req.values.items():
        d = _DIMENSION.get(k)
        if d:
            groups.setdefault(d, []).append((k, v))
    out = []
    for matcher, _ in _MATCHERS:
        name = matcher.__name__
        key = (name, tuple(sorted(groups[name])) if name in groups else ())
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = matcher.check(req, host)
        out.append(hit)
    return out


def _platform(desc_platform, plat: platform_m.Platform, memo: Optional[dict]) -> Tuple[Check, int]:
    """(platform check, CPU specificity of the descriptor's variant), memoised per platform."""
    key = None
    if memo is not None and isinstance(desc_platform, Mapping):
        key = ("platform",) + tuple(sorted((k, str(v)) for k, v in desc_platform.items()))
        hit = memo.get(key)
        if hit is not None:
            return hit
    pcheck = platform_m.check(desc_platform, plat)
    spec = 0
    if pcheck.ok:
        cand = platform_m.from_descriptor(desc_platform)
        spec = cpu_m.depth(cpu_m.variant_target(cand.arch, cand.variant))
    if key is not None:
        memo[key] = (pcheck, spec)
    return pcheck, spec


def evaluate(desc: Mapping, position: int, path: str, host: Host, plat: platform_m.Platform,
             allow_unknown: bool = False, memo: Optional[dict] = None,
             nfd: Optional[nfd_m.NfdContext] = None) -> Candidate:
    digest = desc.get("digest", "")
    ann = desc.get("annotations") or {}
    base = dict(position=position, digest=digest, media_type=desc.get("mediaType", ""),
                platform=desc.get("platform"), annotations=ann, path=path)
    skip = _skip_reason(desc)
    if skip:
        return Candidate(verdict=SKIPPED, reason=skip, **base)
    req = A.parse(ann, where=digest)
    if req.errors:
        return Candidate(verdict=ERROR, reason=req.errors[0], notes=req.errors[1:], **base)
    pcheck, variant_spec = _platform(desc.get("platform"), plat, memo)
    if not pcheck.ok:
        return Candidate(verdict=INCOMPATIBLE, reason=pcheck.reason, checks=(pcheck,), **base)
    if req.unknown and not allow_unknown:
        return Candidate(verdict=UNKNOWN, checks=(pcheck,), **base,
                         reason=f"unknown key{'s' if len(req.unknown) > 1 else ''} "
                                f"{', '.join(req.unknown)} (--allow-unknown to rank without)")
    plat_doc = desc.get("platform") or {}
    checks = [pcheck] + _checks(req, host, memo)
    # the index-level formats and NFD artifacts: most descriptors have none of them
    checks.append(platform_m.check_features(plat_doc, plat.arch, set(host.cpu.features)
                                            if host.cpu.features is not None else None)
                  if plat_doc.get("features") else _NO_FEATURES)
    checks.append(compat_sets.check(plat_doc, host, nfd.features if nfd is not None else None)
                  if plat_doc.get("compatibilities") else _NO_SETS)
    try:
        checks.append(nfd_m.check(digest, nfd) if nfd is not None else _NO_NFD)
    except RuleError as exc:
        return Candidate(verdict=ERROR, reason=f"nfd: {exc}", checks=tuple(checks), **base)
    for c in checks:
        if not c.ok:
            return Candidate(verdict=INCOMPATIBLE, reason=f"{c.dimension}: {c.reason}",
                             checks=tuple(checks), **base)
    by = {c.dimension: c for c in checks}
    cpu_spec = max(by["cpu"].fit[0], variant_spec)
    # weight: the annotation, plus the best holding set's weight or compatibility-score
    weight = req.get("weight", 0) + by["nfd"].fit[0] + by["compatibilities"].fit[0]
    satisfied = req.requirement_count + by["platform.features"].fit[0] + by["nfd"].fit[1] + \
        by["compatibilities"].fit[1]
    key = (by["gpu"].fit, by["fabric"].fit[0], by["mpi"].fit[0], cpu_spec, satisfied, weight, -position)
    notes = tuple(c.note for c in checks if c.note)
    if req.unknown:
        notes += (f"ignored unknown keys {', '.join(req.unknown)}",)
    summary = "; ".join(f"{c.reason}" for c in checks[1:] if c.reason) or "generic: platform match only"
    return Candidate(verdict=COMPATIBLE, reason=summary, checks=tuple(checks), key=key, notes=notes, **base)


def flatten(index: Mapping, fetch: Optional[Fetch] = None, path: str = "",
            depth: int = 0) -> List[Tuple[str, Mapping]]:
    """(path, descriptor) for every leaf, nested indexes walked depth-first."""
    out: List[Tuple[str, Mapping]] = []
    for i, desc in enumerate(index.get("manifests") or []):
        p = f"{path}manifests[{i}]"
        if desc.get("mediaType") in media.INDEXES and not _skip_reason(dict(desc, mediaType="")):
            if fetch is None or depth >= 4:
                out.append((p, dict(desc, _nested_error="nested index not walked"
                                    + (" (no way to fetch it)" if fetch is None else " (deeper than 4)"))))
                continue
            child = fetch(desc["digest"], desc["mediaType"])
            out.extend(flatten(child, fetch, p + ".", depth + 1))
        else:
            out.append((p, desc))
    return out


def rank(index: Mapping, host: Host, platform: Optional[str] = None, allow_unknown: bool = False,
         fetch: Optional[Fetch] = None, nfd: Optional[nfd_m.NfdContext] = None) -> Ranking:
    """Rank the descriptors of a parsed image index for ``host``.

    ``index`` is the index JSON as a dict (already validated by :mod:`compat.oci.manifest`
    when it came from a registry); ``fetch`` resolves nested indexes; ``nfd`` carries the NFD
    artifacts found for candidates and the host's NFD features.
    """
    plat = host_platform(host, platform)
    memo: dict = {}      # per call: the host is fixed, so a verdict depends on the values alone
    cands = []
    for pos, (path, desc) in enumerate(flatten(index, fetch)):
        if "_nested_error" in desc:
            cands.append(Candidate(position=pos, digest=desc.get("digest", ""),
                                   media_type=desc.get("mediaType", ""), platform=desc.get("platform"),
                                   annotations=desc.get("annotations") or {}, verdict=ERROR,
                                   reason=desc["_nested_error"], path=path))
            continue
        cands.append(evaluate(desc, pos, path, host, plat, allow_unknown, memo, nfd))
    good = sorted((c for c in cands if c.compatible), key=lambda c: c.key, reverse=True)
    rest = [c for c in cands if not c.compatible]
    return Ranking(candidates=tuple(good + rest), platform=plat)
