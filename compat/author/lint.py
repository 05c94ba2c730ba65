"""Every problem of an extended index, with its location: what ``compat validate`` reports
and what ``compat annotate`` checks before it pushes anything.

Errors (the index is wrong): a malformed structure, a value outside its grammar, an unknown
``org.hpc-compat.*`` key, a contradiction between keys.  Warnings (the index works for
compat but not well for runtimes that ignore it): two descriptors with the same platform and
annotations, a platform without a generic baseline or with it not first, a descriptor
without ``platform`` (Charliecloud refuses such an index; containers/image takes it last).

Errors include everything selection could never honour (:mod:`compat.author.honour`): a
value that passes the grammar but that ``select`` would call unknown, or that excludes the
variant on every host.  Descriptors are numbered ``#1``, ``#2``, ... in index order, the
numbers ``annotate --set '#N'`` takes.
"""
from __future__ import annotations

from collections.abc import Mapping

from compat.author import honour
from compat.errors import BadInput, printable
from compat.match.rank import flatten, walk_notes
from compat.oci import manifest, media
from compat.oci.manifest import not_image_reason
from compat.record import Record
from compat.schema import full_errors
from compat.vocab import annotations as A
from compat.vocab.aliases import normalise

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional

ERROR, WARNING = "error", "warning"


class Problem(Record):
    level: str          # error | warning
    location: str       # "#4 (sha256:1234abcd5678)" or "#2 (registry/app:zen4)": 1-based positions
    message: str

    def __str__(self):
        # locations and messages quote the index's own text: escape it for the terminal
        return f"{self.level}: {printable(self.location, 400)}: {printable(self.message, 4000)}"


def position(i: int, what: str = "") -> str:
    """The location of the ``i``-th (0-based) descriptor or variant as users count it:
    ``#1`` is the first, as in ``annotate --set '#1'`` and ``select --explain``."""
    return f"#{i + 1}" + (f" ({what})" if what else "")


def _where(i: int, desc: Mapping, labels: Optional[List[str]]) -> str:
    if labels and i < len(labels) and labels[i]:
        return labels[i]
    digest = desc.get("digest", "") if isinstance(desc, Mapping) else ""
    return position(i, digest[:19] if isinstance(digest, str) else "")


def _with_aliases(annotations: Mapping):
    """(annotations as selection reads them, notes about aliases selection ignores)."""
    return normalise(annotations)


def check_annotations(annotations: Mapping, where: str, platform: Optional[Mapping] = None) -> List[Problem]:
    """Grammar (schema and parser) of one descriptor's annotations, and whatever in them
    selection could never honour (on ``platform``, when known)."""
    out = []
    req = A.parse(annotations)
    effective, notes = _with_aliases(annotations)
    target = honour.target_problem(effective.get(A.PREFIX + "cpu.target"))
    if target:
        out.append(Problem(ERROR, where, target))
    for err in req.errors:
        if not (target and err.startswith(A.PREFIX + "cpu.target:")):
            out.append(Problem(ERROR, where, err))
    for key in req.unknown:
        out.append(Problem(ERROR, where, f"{key}: unknown key (known: {', '.join(A.PREFIX + k for k in A.KEYS)})"))
    for level, message in honour.problems(annotations, platform, req):
        out.append(Problem(level, where, message))
    for note in notes:
        out.append(Problem(WARNING, where, f"{note}: selection does not read it"))
    reported = {e.split(":", 1)[0] for e in req.errors} | set(req.unknown)
    if target:
        reported.add(A.PREFIX + "cpu.target")
    for err in full_errors(dict(annotations), "annotations"):
        # the parser already explained these keys in its own words; keep what it missed
        key = err.split("'")[1] if err.startswith("$") and "'" in err else ""
        if not any(r and r in err for r in reported) and key not in reported:
            out.append(Problem(ERROR, where, f"schema: {err}"))
    return out


def _never_read(annotations, where: str, why: str) -> List[Problem]:
    """Compat keys where selection never looks: an error, not a silent no-op."""
    if not isinstance(annotations, Mapping):
        return []
    keys = sorted(k for k in annotations if isinstance(k, str) and k.startswith(A.PREFIX))
    if not keys:
        return []
    return [Problem(ERROR, where, f"{', '.join(keys)}: never read: {why}")]


def check_index_annotations(annotations, where: str = "index") -> List[Problem]:
    """The index's own annotations: compat keys there are never read."""
    return _never_read(annotations, where, "selection reads the annotations of each descriptor in "
                                           "manifests[], not those of the index itself")


def _no_platform(desc: Mapping, ann: Mapping, where: str, is_sif: bool) -> List[Problem]:
    """An entry without ``platform``: compat skips an image but reads a SIF's from its header."""
    others = "Charliecloud refuses the whole index, containers/image takes it as a last resort"
    if is_sif:
        return [Problem(WARNING, where, f"no platform: compat reads it from the SIF header (one request); {others}")]
    return [Problem(WARNING, where, f"no platform: {others}, compat skips it")] + \
        _never_read(ann, where, "compat selects no entry without a platform")


def lint_index(doc: Mapping, labels: Optional[List[str]] = None, fetch=None, sifs=frozenset()) -> List[Problem]:
    """Every problem of an index; ``fetch(digest, media_type)`` lets the walk read nested
    indexes, so that the bounds select's walk keeps to are checked all the way down;
    ``sifs``: digests of children known to be SIFs though not typed so (validate reads
    their manifests as select does, :func:`compat.author.sif.sif_children`)."""
    try:
        manifest.check_index(dict(doc), "index", descriptors=False)
    except BadInput as exc:
        return [Problem(ERROR, "index", str(exc).split(": ", 1)[-1])]
    out: List[Problem] = [Problem(ERROR, "index", f"select reads only part of this index: {note}")
                          for note in walk_notes(flatten(doc, fetch))]
    seen: Dict[tuple, int] = {}
    first_for_platform: Dict[tuple, int] = {}
    generic_for_platform: Dict[tuple, int] = {}
    out += check_index_annotations(doc.get("annotations"))
    for i, desc in enumerate(doc["manifests"]):
        where = _where(i, desc, labels)
        malformed = manifest.descriptor_problems(desc)
        if malformed:                      # selection excludes it with the first of these
            out += [Problem(ERROR, where, f"malformed descriptor: {m}") for m in malformed]
            continue
        skip = not_image_reason(desc)
        if skip:
            out += _never_read(desc.get("annotations"), where, f"selection skips this entry ({skip})")
            continue
        if desc.get("mediaType") in media.INDEXES:
            out += _never_read(desc.get("annotations"), where, "a nested index: selection reads the "
                               "annotations of the descriptors inside it")
            continue
        ann = desc.get("annotations") or {}
        plat = desc.get("platform")
        out += [Problem(level, where, message) for level, message in honour.platform_problems(plat)]
        out += check_annotations(ann, where, plat)
        if not plat:
            out += _no_platform(desc, ann, where, media.is_sif(desc) or desc.get("digest") in sifs)
            continue
        # a SIF and an OCI image serve different runtimes: neither duplicates nor baselines the other
        pkey = (plat.get("os"), plat.get("architecture")) + (("SIF",) if media.is_sif(desc) else ())
        ours = tuple(sorted((k, v) for k, v in ann.items()
                            if k.startswith(A.PREFIX) and k != A.PREFIX + "description"))
        full = pkey + (plat.get("variant", ""),) + ours
        if full in seen:
            out.append(Problem(WARNING, where, f"same platform and annotations as {_where(seen[full], doc['manifests'][seen[full]], labels)}: "
                                               "runtimes and compat can never prefer it"))
        seen.setdefault(full, i)
        first_for_platform.setdefault(pkey, i)
        if honour.excludes_no_host(A.parse(ann)) and not plat.get("variant"):
            generic_for_platform.setdefault(pkey, i)
    for pkey, first in first_for_platform.items():
        name = "/".join(x for x in pkey if x)
        generic = generic_for_platform.get(pkey)
        if generic is None:
            out.append(Problem(WARNING, f"platform {name}",
                               "no generic baseline (an entry without platform variant whose annotations exclude no host: "
                               "no CPU, GPU, kernel or fabric requirement, no MPI mode): "
                               "runtimes that ignore compat take the first entry, which may not run on their host"))
        elif generic != first:
            out.append(Problem(WARNING, f"platform {name}",
                               f"the generic baseline is {_where(generic, doc['manifests'][generic], labels)} but "
                               f"{_where(first, doc['manifests'][first], labels)} comes first: Apptainer and Enroot "
                               "take the first match"))
    return out
