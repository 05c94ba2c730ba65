"""The Python API for schedulers: ``select`` a pinned image for a host, ``rank`` an index.

Example (a Slurm job-submit wrapper or a Kubernetes admission hook does the same)::

    import compat
    host = compat.load_host("/var/lib/compat/nodes/gpu-a001.json")   # or compat.detect()
    sel = compat.select("registry.example.org/hpc/lammps:2024", host=host)
    image = sel.reference                 # registry.example.org/hpc/lammps@sha256:...
    for c in sel.candidates:              # every candidate with its verdict and reason
        print(c.verdict, c.digest, c.reason)
"""
from __future__ import annotations

import os

from compat.errors import NoCompatibleCandidate, printable
from compat.host import detect, load_host
from compat.host.profile import Host
from compat.match import platform as platform_m, runtime as runtime_m
from compat.match.nfd import NfdContext
from compat.match.rank import Candidate, Ranking, flatten, rank as _rank, seen_host
from compat.oci import media
from compat.oci.manifest import descriptor_problems
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Mapping, Optional, Tuple, Union


class Selection(Record):
    ref: object                      # compat.oci.reference.Reference
    index_digest: str
    ranking: Ranking
    host: Host
    nfd: object = None               # compat.match.nfd.NfdContext, when NFD artifacts were read
    runtime: object = None           # compat.host.profile.Runtime that will run the image (None: unknown)

    @property
    def chosen(self) -> Candidate:
        return self.ranking.best

    @property
    def digest(self) -> str:
        return self.chosen.digest

    @property
    def reference(self) -> str:
        return self.ref.pinned(self.digest, "ref")

    @property
    def candidates(self) -> Tuple[Candidate, ...]:
        return self.ranking.candidates

    def formatted(self, fmt: str = "ref") -> str:
        """The pinned reference in the form ``fmt``'s runtime accepts (compat.oci.formats)."""
        # start-up: rank() and check never name a runtime's form
        from compat.oci.formats import pinned
        return pinned(self.ref, self.digest, fmt, sif=self.chosen.artifact_type == media.SIF_CONFIG)

    def to_dict(self, schema: str = "compat.selection/v1") -> dict:
        """schemas/selection.schema.json; also when nothing is compatible (selected: null)."""
        best = self.chosen
        return {"schema": schema, "index": str(self.ref), "indexDigest": self.index_digest,
                "platform": str(self.ranking.platform),
                "selected": best.digest if best else None, "reference": self.reference if best else None,
                "candidates": [c.to_dict(rank=i + 1 if c.compatible else None)
                               for i, c in enumerate(self.candidates)]}


def rank(index: Mapping, host: Union[None, Host, str, "os.PathLike"] = None, platform: Optional[str] = None,
         allow_unknown: bool = False, fetch=None, runtime: Optional[str] = None) -> Ranking:
    """Rank a parsed image index (a dict) for ``host`` (a Host, a profile path, or None to
    detect this machine); ``runtime`` names the runtime that will run the image (apptainer,
    podman, ...; default: the host's first)."""
    host = host_argument(host)
    return _rank(index, host, platform=platform, allow_unknown=allow_unknown, fetch=fetch, runtime=runtime)


def resolve(ref: str, host: Union[None, Host, str, "os.PathLike"] = None, platform: Optional[str] = None,
            allow_unknown: bool = False, plain_http: bool = False, timeout: float = 10.0,
            assume: Union[None, Mapping[str, str], Iterable[str]] = None, referrers: Optional[bool] = None,
            tags: Optional[Iterable[str]] = None, features=None, runtime: Optional[str] = None) -> Selection:
    """Like :func:`select` but returns the ranking even when nothing is compatible.

    ``referrers``: None (default) looks for NFD artifacts of the platform-matching candidates
    that carry no compat annotation; True looks for every candidate; False never looks.
    ``tags`` keeps only the NFD compatibility sets with one of these tags. ``features`` is the
    host in NFD's feature model (built from ``host`` when needed and not given). ``runtime``
    names the runtime that will run the image (``select --runtime``; default: the host's
    first runtime): the ``runtime`` keys and SIF artifacts are judged for it."""
    # start-up: rank() on an index in hand never loads the reference parser or the registry client
    from compat.oci.reference import parse as parse_ref
    from compat.oci.source import Source

    reference = parse_ref(ref)
    host = host_argument(host, assume)
    runtime = None if runtime is None else runtime_m.name_of(runtime)     # a slip before any request
    source = Source(reference, plain_http=plain_http, timeout=timeout)
    try:
        digest, mt, doc = source.resolve(descriptors=False)   # a malformed descriptor is excluded, not fatal
        if mt in media.INDEXES:
            index = doc
        else:  # a single manifest: the only candidate is itself
            index = {"schemaVersion": 2, "manifests": [source.descriptor_of(digest, mt, doc)]}
        # nested indexes walked once, bounded; a SIF child without a platform gets its header's
        entries = [(p, source.sif_descriptor(d)) for p, d in flatten(index, source.fetch)]
        nfd = _nfd_context(source, digest, entries, host, platform, referrers, tags, features)
        ranking = _rank(index, host, platform=platform, allow_unknown=allow_unknown, fetch=source.fetch, nfd=nfd,
                        entries=entries, runtime=runtime)
    finally:
        source.close()
    return Selection(ref=reference, index_digest=digest, ranking=ranking, host=host, nfd=nfd,
                     runtime=runtime_m.current(runtime_m.running(host, runtime)))


def _nfd_context(source, index_digest, entries, host, platform, referrers, tags, features):
    """Find NFD artifacts for the candidates that need them; None when there is nothing to do.
    Only well-formed descriptors take part (a malformed one is excluded by the ranking)."""
    descs = [d for _, d in entries if not descriptor_problems(d) and "_walk" not in d]
    wants_features = any((d.get("platform") or {}).get("compatibilities") for d in descs)
    host, plat = seen_host(host, platform)
    artifacts = {}
    if referrers is not False:
        matching = [d for d in descs if platform_m.check(d.get("platform"), plat).ok]
        # start-up: NFD's artifact reader loads only when artifacts are looked for
        from compat.nfd.artifacts import discover
        artifacts = discover(source, index_digest, matching, want_all=bool(referrers))
    if not artifacts and not wants_features:
        return None
    if features is None:
        # start-up: NFD's feature model loads only when an artifact was found
        from compat.nfd.features import from_host
        features = from_host(host)
    elif callable(features):
        features = features()
    return NfdContext(artifacts=artifacts, features=features, tags=tuple(tags) if tags else None)


def host_argument(host, assume=None) -> Host:
    """``host=`` of the API: a Host, a path (str or os.PathLike) to a saved profile, or None
    (detect this machine); ``assume`` applied on top. Anything else is a TypeError."""
    if host is None:
        return detect(assume=assume)
    if isinstance(host, (str, bytes, os.PathLike)):
        return load_host(host, assume=assume)
    if not isinstance(host, Host):
        raise TypeError(f"host: expected a compat.Host, a path (str or os.PathLike) to a saved profile, "
                        f"or None to detect this machine; got {type(host).__name__}")
    if assume:
        # start-up: the --assume grammar (and the CPU probe it uses) loads only with --assume
        from compat.host.assume import apply_checked, parse as parse_assume
        host = apply_checked(host, parse_assume(assume))
    return host


def select(ref: str, host: Union[None, Host, str, "os.PathLike"] = None, **kwargs) -> Selection:
    """Pick the best image of ``ref`` for ``host`` (a Host, a saved profile's path, or None to
    detect this machine); raises NoCompatibleCandidate (exit 3)."""
    sel = resolve(ref, host=host, **kwargs)
    if sel.ranking.best is None:
        raise NoCompatibleCandidate(no_candidate_message(sel))
    return sel


def no_candidate_message(sel: Selection) -> str:
    """One line per candidate; what comes from the image is escaped (one line each, always)."""
    lines = [f"no compatible image in {printable(str(sel.ref), 300)} for {printable(str(sel.ranking.platform), 100)}:"]
    for c in sel.candidates:
        lines.append(f"  {printable(c.digest[:19], 19)}  {printable(c.platform_text, 60):<16} {c.verdict}: "
                     f"{printable(c.reason, 400)}")
    if not sel.candidates:
        lines.append("  (the index lists no images)")
    return "\n".join(lines)
