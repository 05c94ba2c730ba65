"""Every problem of an extended index, with its location: what ``compat validate`` reports
and what ``compat annotate`` checks before it pushes anything.

Errors (the index is wrong): a malformed structure, a value outside its grammar, an unknown
``org.hpc-compat.*`` key, a contradiction between keys.  Warnings (the index works for
compat but not well for runtimes that ignore it): two descriptors with the same platform and
annotations, a platform without a generic baseline or with it not first, a descriptor
without ``platform`` (Charliecloud refuses such an index; containers/image takes it last).
"""
from __future__ import annotations

from typing import Dict, List, Mapping, NamedTuple, Optional

from compat.vocab import annotations as A

ERROR, WARNING = "error", "warning"


class Problem(NamedTuple):
    level: str          # error | warning
    location: str       # "manifests[3] (sha256:1234abcd5678)" or "variants[2] (registry/app:zen4)"
    message: str

    def __str__(self):
        return f"{self.level}: {self.location}: {self.message}"


def _where(i: int, desc: Mapping, labels: Optional[List[str]]) -> str:
    if labels and i < len(labels) and labels[i]:
        return labels[i]
    digest = desc.get("digest", "") if isinstance(desc, Mapping) else ""
    return f"manifests[{i}]" + (f" ({digest[:19]})" if digest else "")


def _is_image(desc: Mapping) -> bool:
    from compat.match.rank import _skip_reason
    return _skip_reason(desc) is None


def check_annotations(annotations: Mapping, where: str) -> List[Problem]:
    """Grammar (schema and parser) of one descriptor's annotations."""
    from compat.schema import full_errors

    out = []
    req = A.parse(annotations)
    for err in req.errors:
        out.append(Problem(ERROR, where, err))
    for key in req.unknown:
        out.append(Problem(ERROR, where, f"{key}: unknown key (known: {', '.join(A.PREFIX + k for k in A.KEYS)})"))
    reported = {e.split(":", 1)[0] for e in req.errors} | set(req.unknown)
    for err in full_errors(dict(annotations), "annotations"):
        # the parser already explained these keys in its own words; keep what it missed
        key = err.split("'")[1] if err.startswith("$") and "'" in err else ""
        if not any(r and r in err for r in reported) and key not in reported:
            out.append(Problem(ERROR, where, f"schema: {err}"))
    return out


def lint_index(doc: Mapping, labels: Optional[List[str]] = None) -> List[Problem]:
    from compat.errors import BadInput
    from compat.oci import manifest

    try:
        manifest.check_index(dict(doc), "index")
    except BadInput as exc:
        return [Problem(ERROR, "index", str(exc).split(": ", 1)[-1])]
    out: List[Problem] = []
    seen: Dict[tuple, int] = {}
    first_for_platform: Dict[tuple, int] = {}
    generic_for_platform: Dict[tuple, int] = {}
    for i, desc in enumerate(doc["manifests"]):
        where = _where(i, desc, labels)
        if not _is_image(desc):
            continue
        ann = desc.get("annotations") or {}
        out += check_annotations(ann, where)
        plat = desc.get("platform")
        if not plat:
            out.append(Problem(WARNING, where, "no platform: Charliecloud refuses the whole index, "
                                               "containers/image takes it as a last resort, compat skips it"))
            continue
        pkey = (plat.get("os"), plat.get("architecture"))
        ours = tuple(sorted((k, v) for k, v in ann.items() if k.startswith(A.PREFIX)))
        full = pkey + (plat.get("variant", ""),) + ours
        if full in seen:
            out.append(Problem(WARNING, where, f"same platform and annotations as {_where(seen[full], doc['manifests'][seen[full]], labels)}: "
                                               "runtimes and compat can never prefer it"))
        seen.setdefault(full, i)
        first_for_platform.setdefault(pkey, i)
        if A.parse(ann).generic and not plat.get("variant"):
            generic_for_platform.setdefault(pkey, i)
    for pkey, first in first_for_platform.items():
        name = "/".join(x for x in pkey if x)
        generic = generic_for_platform.get(pkey)
        if generic is None:
            out.append(Problem(WARNING, f"platform {name}",
                               "no generic baseline (an entry without org.hpc-compat.* keys and without variant): "
                               "runtimes that ignore compat take the first entry, which may not run on their host"))
        elif generic != first:
            out.append(Problem(WARNING, f"platform {name}",
                               f"the generic baseline is {_where(generic, doc['manifests'][generic], labels)} but "
                               f"{_where(first, doc['manifests'][first], labels)} comes first: Apptainer and Enroot "
                               "take the first match"))
    return out
