"""Ranking: every descriptor of an index becomes a :class:`Candidate` with a verdict, the
checks that decided it, and (when compatible) a ranking key.  Choosing is then ``max``.

Selection order (spec/selection.md, CONTRACT section 4): candidates -> platform filter ->
hard filter (every requirement) -> rank by GPU fit, fabric fit, MPI fit, CPU specificity,
number of satisfied requirements, ``weight``, index order.
"""
from __future__ import annotations

import re

from collections.abc import Callable, Mapping

from compat import limits
from compat.errors import BadInput, RegistryError, RuleError, printable
from compat.host.profile import Host
from compat.match import compatibilities as compat_sets, cpu as cpu_m, fabric as fabric_m, gpu as gpu_m, \
    kernel as kernel_m, mpi as mpi_m, nfd as nfd_m, platform as platform_m, runtime as runtime_m
from compat.match.check import Check
from compat.oci import media
from compat.oci.digest import is_digest
from compat.oci.manifest import descriptor_problems, not_image_reason
from compat.record import Record
from compat.vocab import annotations as A

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

COMPATIBLE, INCOMPATIBLE, UNKNOWN, ERROR, SKIPPED = "compatible", "incompatible", "unknown", "error", "skipped"

#: fetch(digest, media_type) -> parsed child index (for nested indexes)
Fetch = Callable[[str, str], Mapping]


_PATH_NUMBERS = re.compile(r"\[([0-9]{1,9})\]")


class RankKey(Record):
    """What orders the compatible candidates: compared field by field, higher first."""
    gpu: Tuple                          # (architecture fit, CUDA native 2 / minor 1 / none 0, CUDA version)
    fabric: int
    mpi: int
    cpu: Tuple                          # (archspec depth, rung on the host's ladder, matching os.features)
    requirements: int                   # requirements and NFD rules satisfied
    weight: int                         # the weight annotation plus the best NFD set's or score
    order: int                          # -position: the first in the index wins a tie


class Candidate(Record):
    position: int                       # order in the (flattened) index: first = 0
    digest: str
    media_type: str
    platform: Optional[Mapping]
    annotations: Mapping[str, str]
    verdict: str
    reason: str                         # the deciding reason
    checks: Tuple[Check, ...] = ()
    key: Tuple = ()                     # a RankKey, compatible candidates only
    notes: Tuple[str, ...] = ()
    path: str = ""                      # "manifests[3]" or "manifests[1].manifests[0]"
    artifact_type: str = ""             # the descriptor's artifactType (a SIF: media.SIF_CONFIG)

    @property
    def compatible(self) -> bool:
        return self.verdict == COMPATIBLE

    @property
    def description(self) -> str:
        return self.annotations.get(A.PREFIX + "description", "")

    @property
    def entry(self) -> str:
        """Where the candidate sits as users count it: ``#3`` is the index's third descriptor
        (what ``annotate --set '#3'`` and ``validate`` name), ``#2.1`` the first inside the
        nested index at ``#2``."""
        nums = _PATH_NUMBERS.findall(self.path)
        return "#" + ".".join(str(int(n) + 1) for n in nums) if nums else "-"

    @property
    def platform_text(self) -> str:
        p = platform_m.from_descriptor(self.platform)
        return str(p) if p else "-"

    def score(self) -> Optional[Dict]:
        """The ranking key as named numbers (compatible candidates only; None otherwise).
        Candidates compare on gpu, cuda, cudaVersion, fabric, mpi, cpu, cpuLevel, osFeatures,
        requirements, weight,
        in this order, higher first, then index position (first wins)."""
        if not self.key:
            return None
        k = self.key
        arch, cuda, cver = k.gpu
        depth, level, feats = k.cpu
        return {"gpu": arch, "cuda": cuda, "cudaVersion": ".".join(map(str, cver)) or None, "fabric": k.fabric,
                "mpi": k.mpi, "cpu": depth, "cpuLevel": level, "osFeatures": feats, "requirements": k.requirements,
                "weight": k.weight}

    def score_text(self) -> str:
        s = self.score()
        if s is None:
            return ""
        gpu = f"gpu {s['gpu']}" + (f"/{'native' if s['cuda'] == 2 else 'minor'} {s['cudaVersion']}"
                                   if s["cuda"] else "")
        return f"{gpu} fab {s['fabric']} mpi {s['mpi']} cpu {s['cpu']}" + \
            (f"+{s['osFeatures']}f" if s["osFeatures"] else "") + f" req {s['requirements']}" + \
            (f" w {s['weight']}" if s["weight"] else "")

    def to_dict(self, rank: Optional[int] = None) -> Dict:
        """The candidate in the shape of schemas/defs.schema.json#/$defs/candidate (``rank``:
        its place among the compatible ones, 1 = selected)."""
        out = {"position": self.position, "path": self.path, "digest": self.digest,
               "mediaType": self.media_type, "platform": self.platform_text,
               "verdict": self.verdict, "rank": rank, "reason": self.reason, "score": self.score(),
               "description": self.description, "notes": list(self.notes),
               "checks": [{"dimension": c.dimension, "ok": c.ok, "reason": c.reason}
                          for c in self.checks if c.reason]}
        if self.artifact_type.__class__ is str and self.artifact_type:
            out["artifactType"] = self.artifact_type      # a SIF child: media.SIF_CONFIG
        return out


class Ranking(Record):
    """All candidates: compatible ones best first, then the others in index order. ``notes``:
    what the walk left out (a bound on nesting depth or on the number of candidates hit)."""

    candidates: Tuple[Candidate, ...]
    platform: platform_m.Platform
    notes: Tuple[str, ...] = ()

    @property
    def best(self) -> Optional[Candidate]:
        return self.candidates[0] if self.candidates and self.candidates[0].compatible else None

    @property
    def compatible(self) -> List[Candidate]:
        return [c for c in self.candidates if c.compatible]


def host_platform(host: Host, override: Optional[str] = None) -> platform_m.Platform:
    if override is not None:
        return platform_m.parse(override)
    p = platform_m.normalise(host.os.name or "linux", host.os.arch or "", host.os.variant or "", host.os.features)
    if platform_m.variant_problem(p.arch, p.variant):      # a profile's variant compat cannot place
        p = p._replace(variant="")
    return p


def seen_host(host: Host, override: Optional[str] = None) -> Tuple[Host, platform_m.Platform]:
    """The host as a requested platform sees it: that platform, and the CPU bounded by it
    (``cpu.seen_through``), so that ``amd64/v3`` and ``cpu.target=x86_64_v3`` are judged alike."""
    plat = host_platform(host, override)
    if override is None:
        return host, plat
    cpu = cpu_m.seen_through(host.cpu, host_platform(host), plat)
    os_ = host.os._replace(name=plat.os, arch=plat.arch, variant=plat.variant or None, features=plat.features)
    return host._replace(os=os_, cpu=cpu), plat


_NO_FEATURES = Check("platform.features", True, "", (0,))
_NO_SETS = Check("compatibilities", True, "", (0, 0))
_NO_NFD = Check("nfd", True, "", (0, 0))

#: which requirement keys each matcher reads: its verdict is memoised on their values
_MATCHERS = ((cpu_m, ("cpu.",)), (gpu_m, ("gpu.",)), (fabric_m, ("fabric",)),
             (mpi_m, ("mpi.", "libc.glibc")), (kernel_m, ("os.kernel",)), (runtime_m, ("runtime",)))
_DIMENSION = {k: m.__name__ for k in A.KEYS for m, prefixes in _MATCHERS if k.startswith(prefixes)}


class _Memo:
    """What one ranking call learns once and reuses: the host is fixed, so a decision depends
    on a descriptor's requirement-bearing annotations and its platform alone (spec/selection.md,
    "Performance"). ``host_flags``: the host's CPU features as a set, built once."""

    def __init__(self, host: Host):
        self.decisions: Dict[str, Dict[tuple, _Decision]] = {}     # platform repr -> annotations key -> ...
        self.checks: Dict[tuple, Check] = {}
        self.platforms: Dict[str, tuple] = {}
        self.problems: Dict[str, List[str]] = {}
        self.parsed: Dict[tuple, A.Requirements] = {}
        self.host_flags = set(host.cpu.features) if host.cpu.features is not None else None

    def requirements(self, items: tuple, ann: Mapping) -> A.Requirements:
        """``annotations.parse`` of ``ann``, by its :func:`~compat.vocab.annotations.decision_key`."""
        hit = self.parsed.get(items)
        if hit is None:
            hit = self.parsed[items] = A.parse(ann)
        return hit

    def platform_problems(self, key: str, desc_platform) -> List[str]:
        """``platform.problems`` of a descriptor's platform, by its ``repr`` (exact for JSON)."""
        hit = self.problems.get(key)
        if hit is None:
            hit = self.problems[key] = platform_m.problems(desc_platform)
        return hit


def _checks(req: A.Requirements, host: Host, memo: Optional[_Memo]) -> List[Check]:
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
        hit = memo.checks.get(key)
        if hit is None:
            hit = memo.checks[key] = matcher.check(req, host)
        out.append(hit)
    return out


def _platform(desc_platform, plat: platform_m.Platform, memo: Optional[_Memo]) \
        -> Tuple[Check, Optional[platform_m.Platform]]:
    """(platform check, the candidate's normalised platform when it matches), memoised per platform."""
    key = repr(desc_platform) if memo is not None else None
    if key is not None:
        hit = memo.platforms.get(key)
        if hit is not None:
            return hit
    pcheck = platform_m.check(desc_platform, plat)
    hit = (pcheck, platform_m.checked(desc_platform) if pcheck.ok else None)
    if key is not None:
        memo.platforms[key] = hit
    return hit


def _malformed(desc, position: int, path: str, problems: List[str]) -> Candidate:
    """A candidate for a descriptor that is not well formed: excluded with its first problem."""
    d = desc if isinstance(desc, dict) else {}
    digest = d.get("digest") if is_digest(d.get("digest")) else ""
    return Candidate(position=position, digest=digest, media_type=printable(d.get("mediaType", ""), 120),
                     platform=None, annotations={}, verdict=ERROR, path=path,
                     reason=f"malformed descriptor: {problems[0]}", notes=tuple(problems[1:]))


class _Decision(Record):
    """What a well-formed image descriptor's annotations and platform decide for the host: the
    candidate less where it sits (position, path) and what names it (digest, media type)."""
    verdict: str
    reason: str
    checks: Tuple[Check, ...] = ()
    fit: Tuple = ()                     # the RankKey's fields but ``order`` (compatible only)
    notes: Tuple[str, ...] = ()
    located: bool = False               # reason and notes are annotation errors, each to name the digest

    def candidate(self, desc: Mapping, position: int, path: str) -> Candidate:
        digest = desc["digest"]
        reason, notes = self.reason, self.notes
        if self.located:
            reason, notes = A.locate(reason, digest), tuple(A.locate(n, digest) for n in notes)
        key = RankKey(*self.fit, -position) if self.fit else ()
        return Candidate(position, digest, desc["mediaType"], desc.get("platform"), desc.get("annotations") or {},
                         self.verdict, reason, self.checks, key, notes, path, desc.get("artifactType") or "")


def evaluate(desc: Mapping, position: int, path: str, host: Host, plat: platform_m.Platform,
             allow_unknown: bool = False, memo: Optional[_Memo] = None,
             nfd: Optional[nfd_m.NfdContext] = None) -> Candidate:
    """One descriptor's candidate. With ``memo`` (one per ranking call) each distinct pair of
    platform and requirement-bearing annotations is decided once; without it, every time (the
    reference the memoised path is tested against)."""
    pkey = repr(desc.get("platform")) if memo is not None and desc.__class__ is dict else None
    problems = descriptor_problems(desc, memo.platform_problems(pkey, desc.get("platform")) if pkey else None)
    if problems:
        return _malformed(desc, position, path, problems)
    skip = not_image_reason(desc)
    if skip:
        return _Decision(SKIPPED, skip).candidate(desc, position, path)
    ann = desc.get("annotations") or {}
    sif = media.is_sif(desc)            # a SIF and an image with the same values differ in the runtime
    if pkey is None or (nfd is not None and nfd.artifacts.get(desc["digest"]) is not None):
        decision = _decide(A.parse(ann), desc.get("platform"), desc["digest"], host, plat, allow_unknown, memo, nfd,
                           sif)
    else:
        items = A.decision_key(ann)
        dkey = pkey + " sif" if sif else pkey
        decisions = memo.decisions.get(dkey) or memo.decisions.setdefault(dkey, {})
        decision = decisions.get(items)
        if decision is None:
            decision = decisions[items] = _decide(memo.requirements(items, ann), desc.get("platform"), "", host,
                                                  plat, allow_unknown, memo, nfd, sif)
    return decision.candidate(desc, position, path)


def _decide(req: A.Requirements, desc_platform, digest: str, host: Host, plat: platform_m.Platform,
            allow_unknown: bool, memo: Optional[_Memo], nfd: Optional[nfd_m.NfdContext],
            sif: bool = False) -> _Decision:
    """The verdict of the parsed annotations and the platform; ``digest`` names an NFD
    artifact (none when memoised: the same answer for every digest without one)."""
    if req.errors:
        return _Decision(ERROR, req.errors[0], notes=req.errors[1:], located=True)
    pcheck, cand = _platform(desc_platform, plat, memo)
    if not pcheck.ok:
        return _Decision(INCOMPATIBLE, pcheck.reason, (pcheck,))
    if req.unknown and not allow_unknown:
        return _Decision(UNKNOWN, f"unknown key{'s' if len(req.unknown) > 1 else ''} "
                                  f"{', '.join(req.unknown)} (--allow-unknown to rank without)", (pcheck,))
    plat_doc = desc_platform or {}
    checks = [pcheck] + _checks(req, host, memo)
    checks[1] = cpu_m.with_variant(checks[1], cand.arch, cand.variant, host)
    if sif:                     # a SIF runs only with some runtimes (every one runs an OCI image)
        checks[-1] = runtime_m.for_sif(checks[-1], host)        # the last matcher's check
    # the index-level formats and NFD artifacts: most descriptors have none of them
    if plat_doc.get("features"):
        flags = memo.host_flags if memo is not None else \
            set(host.cpu.features) if host.cpu.features is not None else None
        checks.append(platform_m.check_features(plat_doc, plat.arch, flags))
    else:
        checks.append(_NO_FEATURES)
    checks.append(compat_sets.check(plat_doc, host, nfd.features if nfd is not None else None)
                  if plat_doc.get("compatibilities") else _NO_SETS)
    try:
        checks.append(nfd_m.check(digest, nfd) if nfd is not None else _NO_NFD)
    except RuleError as exc:
        return _Decision(ERROR, f"nfd: {exc}", tuple(checks))
    for c in checks:
        if not c.ok:
            return _Decision(INCOMPATIBLE, f"{c.dimension}: {c.reason}", tuple(checks))
    by = {c.dimension: c for c in checks}
    rung, os_features = pcheck.fit
    # CPU specificity: archspec depth (the annotation's target or the variant's level), then
    # the variant's rung on the host's ladder, then the number of matching os.features
    cpu_spec = (by["cpu"].fit[0], rung, os_features)
    # weight: the annotation, plus the best holding set's weight or compatibility-score
    weight = req.get("weight", 0) + by["nfd"].fit[0] + by["compatibilities"].fit[0]
    satisfied = req.requirement_count + by["platform.features"].fit[0] + by["nfd"].fit[1] + \
        by["compatibilities"].fit[1]
    fit = (by["gpu"].fit, by["fabric"].fit[0], by["mpi"].fit[0], cpu_spec, satisfied, weight)
    notes = tuple(c.note for c in checks if c.note)
    if req.unknown:
        notes += (f"ignored unknown keys {', '.join(req.unknown)}",)
    summary = "; ".join(f"{c.reason}" for c in checks[1:] if c.reason) or "generic: platform match only"
    return _Decision(COMPATIBLE, summary, tuple(checks), fit, notes)


class _Full(Exception):
    """The walk reached limits.CANDIDATES."""


def _marker(desc, verdict: str, reason: str) -> dict:
    """A walk entry that is decided before evaluation (a nested index not walked, a bound)."""
    d = dict(desc) if isinstance(desc, dict) else {}
    d["_walk"] = (verdict, reason)
    return d


def flatten(index: Mapping, fetch: Optional[Fetch] = None) -> List[Tuple[str, Mapping]]:
    """(path, descriptor) for every leaf, nested indexes walked depth-first: each nested index
    once (by digest), at most ``limits.INDEX_DEPTH`` levels below the top, at most
    ``limits.CANDIDATES`` entries in all. Entries the walk decided carry ``_walk``:
    (verdict, reason); :func:`walk_notes` says which bounds were hit."""
    walk = _Walk(fetch)
    try:
        walk.index(index, "", 0)
    except _Full:
        pass
    return walk.out


class _Walk:
    """One :func:`flatten` (an object, not nested functions: those would refer to each other,
    and the cycle keep all the walk holds alive until the next full garbage collection)."""

    def __init__(self, fetch: Optional[Fetch]):
        self.fetch = fetch
        self.out: List[Tuple[str, Mapping]] = []
        self.walked: Dict[str, str] = {}            # nested index digest -> where it was walked
        self.leaves: Dict[str, str] = {}            # identical descriptor -> where it was listed
        self.first: Dict[str, Optional[Tuple[Mapping, str]]] = {}   # digest -> its first leaf, until another has it

    def index(self, doc, path: str, depth: int) -> None:
        out = self.out
        for i, desc in enumerate(doc.get("manifests") or ()):
            p = f"{path}manifests[{i}]"
            if len(out) >= limits.CANDIDATES:
                out.append((p, _marker(desc, SKIPPED, f"not considered: the index lists more than "
                                                      f"{limits.CANDIDATES} candidates (limits.CANDIDATES); "
                                                      f"entries past the {limits.CANDIDATES}th are ignored")))
                raise _Full
            if isinstance(desc, dict) and desc.get("mediaType") in media.INDEXES \
                    and not descriptor_problems(desc) and not not_image_reason(dict(desc, mediaType="")):
                self.nested(desc, p, depth)
            else:
                self.leaf(desc, p)

    def leaf(self, desc, p: str) -> None:
        digest = desc.get("digest") if isinstance(desc, dict) else None
        if isinstance(digest, str):
            first, leaves = self.first, self.leaves
            if digest not in first:             # no leaf before had it: none is identical
                first[digest] = (desc, p)
            else:
                if first[digest] is not None:   # a second leaf with it: identities from now on
                    leaves[_identity(first[digest][0])] = first[digest][1]
                    first[digest] = None
                ident = _identity(desc)
                if ident in leaves:
                    self.out.append((p, _marker(desc, SKIPPED, f"duplicate of {leaves[ident]} (same digest, "
                                                               "platform and annotations)")))
                    return
                leaves[ident] = p
        self.out.append((p, desc))

    def nested(self, desc, p: str, depth: int) -> None:
        digest, out = desc["digest"], self.out
        if digest in self.walked:
            out.append((p, _marker(desc, SKIPPED, f"nested index already walked at {self.walked[digest]}")))
        elif self.fetch is None:
            out.append((p, _marker(desc, ERROR, "nested index not walked (no way to fetch it)")))
        elif depth >= limits.INDEX_DEPTH:
            out.append((p, _marker(desc, ERROR, f"nested index not walked: deeper than {limits.INDEX_DEPTH} "
                                                "levels (limits.INDEX_DEPTH)")))
        else:
            self.walked[digest] = p
            child, problem = _fetch_index(self.fetch, digest, desc["mediaType"])
            if problem:
                out.append((p, _marker(desc, ERROR, problem)))
            else:
                self.index(child, p + ".", depth + 1)


def _identity(desc: Mapping) -> str:
    """What makes two leaves the same candidate: digest, platform and annotations."""
    return repr((desc.get("digest"), desc.get("platform"), desc.get("annotations")))


def _fetch_index(fetch: Fetch, digest: str, media_type: str) -> Tuple[Optional[Mapping], str]:
    """(child index, "") or (None, why it cannot be walked). A missing or malformed child is
    this candidate's problem; a registry or network failure is everyone's (raised)."""
    try:
        child = fetch(digest, media_type)
    except RegistryError as exc:
        if exc.status != 404:
            raise
        return None, f"nested index {digest[:19]}: {exc}"
    except BadInput as exc:
        return None, f"nested index: {exc}"
    if not isinstance(child, Mapping) or not isinstance(child.get("manifests"), list):
        return None, "typed as an image index, but its blob is not one (no 'manifests' list)"
    return child, ""


def walk_notes(entries: List[Tuple[str, Mapping]]) -> Tuple[str, ...]:
    """What a bound on the walk left out, once per bound (for the ranking's notes)."""
    notes = []
    for _, d in entries:
        if not isinstance(d, dict) or "_walk" not in d:
            continue
        reason = d["_walk"][1]
        if "limits." in reason:
            note = reason.split(":", 1)[1].strip() if reason.startswith("not considered") else reason
            if note not in notes:
                notes.append(note)
    return tuple(notes)


def rank(index: Mapping, host: Host, platform: Optional[str] = None, allow_unknown: bool = False,
         fetch: Optional[Fetch] = None, nfd: Optional[nfd_m.NfdContext] = None,
         entries: Optional[List[Tuple[str, Mapping]]] = None, runtime: Optional[str] = None) -> Ranking:
    """Rank the descriptors of a parsed image index for ``host``.

    ``index`` is the index JSON as a dict; a malformed descriptor is excluded with its reason
    (verdict ``error``), only a malformed index itself is bad input. ``fetch`` resolves nested
    indexes (``entries``: the walk :func:`flatten` already made); ``nfd`` carries the NFD
    artifacts found for candidates and the host's NFD features. ``platform`` (``--platform``)
    replaces the host's platform and bounds its CPU (:func:`seen_host`); ``runtime``
    (``--runtime``) names the runtime that will run the image (default: the host's first).
    """
    if not isinstance(index, Mapping) or not isinstance(index.get("manifests", []), list):
        raise BadInput("index: expected a JSON object whose 'manifests' is a list")
    host, plat = seen_host(host, platform)
    host = runtime_m.running(host, runtime)
    memo = _Memo(host)
    if entries is None:
        entries = flatten(index, fetch)
    cands = []
    for pos, (path, desc) in enumerate(entries):
        if isinstance(desc, dict) and "_walk" in desc:
            verdict, reason = desc["_walk"]
            digest = desc.get("digest") if is_digest(desc.get("digest")) else ""
            cands.append(Candidate(position=pos, digest=digest, media_type=desc.get("mediaType", ""),
                                   platform=desc.get("platform"), annotations=desc.get("annotations") or {},
                                   verdict=verdict, reason=reason, path=path,
                                   artifact_type=desc.get("artifactType") or ""))
            continue
        cands.append(evaluate(desc, pos, path, host, plat, allow_unknown, memo, nfd))
    good = sorted((c for c in cands if c.compatible), key=lambda c: c.key, reverse=True)
    rest = [c for c in cands if not c.compatible]
    return Ranking(candidates=tuple(good + rest), platform=plat, notes=walk_notes(entries))
