"""Slurm features: a node's facts as Slurm feature names, and the ``--constraint`` expression
that selects exactly a set of node classes.

The vocabulary (spec/plan.md, "Slurm features"; tables in compat/data/slurm_features.json):

* ``arch_<oci arch>`` (``arch_amd64``); ``cpu_<target>``, the archspec CPU target alone
  (``cpu_sapphirerapids``), then the target and every ancestor (``sapphirerapids``,
  ``icelake``, ..., ``x86_64_v4``, ``x86_64_v3``, ...): a job needing "at least haswell"
  asks for ``haswell``, a constraint for "exactly these nodes" uses ``cpu_<target>``;
* ``gpu_nvidia`` / ``gpu_amd``, ``gpu_sm_<XY>`` per NVIDIA compute capability,
  ``cuda_<X.Y>`` (the driver's CUDA), ``gpu_<gfx>`` / ``rocm_<X.Y>`` for AMD, ``nogpu`` when
  the node has none;
* the fabric (``ib``, ``roce``, ``efa``, ``slingshot``, ``opa``; ``nofabric`` when TCP only);
* MPI ``<short>_<major.minor>`` (``ompi_4.1``), the site launcher's PMI (``pmix``, ``pmi2``);
* ``glibc_<X.Y>``.
Unknown facts give no feature. Names are lowercase ``[a-z0-9_.-]``.
"""
from __future__ import annotations

import re

from compat.host.profile import Host
from compat.vocab.data import slurm_features as slurm_features_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import FrozenSet, Iterable, List, Optional, Sequence, Tuple


def _name(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]", "_", str(text).lower())[:64]


def _major_minor(version: Optional[str]) -> Optional[str]:
    m = re.match(r"(\d+)(?:\.(\d+))?", version or "")
    return f"{m.group(1)}.{m.group(2) or 0}" if m else None


def _cpu(host: Host) -> List[str]:
    out = []
    if host.os.arch:
        out.append(f"arch_{host.os.arch}")
    target = host.cpu.target
    if target:
        out.append(f"cpu_{target}")      # exact: tells a node from one whose ancestors include it
        out.append(target)
        try:
            import archspec.cpu    # start-up: archspec only when a target is named
            t = archspec.cpu.TARGETS.get(target)
            if t is not None:
                out.extend(a.name for a in t.ancestors)
        except ImportError:   # archspec is a dependency; a broken install loses only the ancestors
            pass
    return out


def _gpu(host: Host) -> List[str]:
    if host.gpus is None:
        return []
    if not host.gpus:
        return ["nogpu"]
    out = []
    for g in host.gpus:
        out.append(f"gpu_{g.vendor}")
        if g.cc:
            out.append("gpu_sm_" + g.cc.replace(".", ""))
        if g.gfx:
            out.append(f"gpu_{g.gfx}")
        cuda, rocm = _major_minor(g.cuda), _major_minor(g.rocm)
        if cuda:
            out.append(f"cuda_{cuda}")
        if rocm:
            out.append(f"rocm_{rocm}")
    return out


def _fabric_mpi(host: Host) -> List[str]:
    t = slurm_features_table()
    out = []
    if host.fabrics is not None:
        out.extend(t["fabric"].get(f.type, f.type) for f in host.fabrics)
        if not host.fabrics:
            out.append("nofabric")
    for m in host.mpi or ():
        mm = _major_minor(m.version)
        short = t["mpi"].get(m.implementation, m.implementation)
        out.append(f"{short}_{mm}" if mm else short)
    out.extend(p for p in host.pmi or () if p in t["pmi"])
    gl = _major_minor(host.os.glibc)
    if gl:
        out.append(f"glibc_{gl}")
    return out


def slurm_features(host: Host) -> Tuple[str, ...]:
    """The node's facts as Slurm feature names, in a stable order, without repeats."""
    return tuple(dict.fromkeys(_name(f) for f in _cpu(host) + _gpu(host) + _fabric_mpi(host) if f))


# -- the constraint rule ----------------------------------------------------------------------

class NoConstraint(Exception):
    """The feature vocabulary cannot tell the wanted classes from another one."""


def constraint(wanted: Sequence[FrozenSet[str]], others: Sequence[FrozenSet[str]]) -> str:
    """A Slurm ``--constraint`` that a node with features F satisfies exactly when F is the
    feature set of a ``wanted`` class, not of an ``others`` class: an OR over the wanted
    classes of an AND of features that class has and that rule out every other class (chosen
    greedily, fewest first). ``""`` when nothing needs excluding; :class:`NoConstraint` when a
    wanted class's features are a subset of another class's (no feature expression can
    separate them)."""
    if not others:
        return ""
    terms: List[str] = []
    for feats in dict.fromkeys(wanted):
        chosen = _separating(feats, others)
        term = "&".join(chosen)
        if term not in terms:
            terms.append(term)
    if len(terms) == 1:
        return terms[0]
    return "|".join(f"({t})" if "&" in t else t for t in terms)


def _separating(feats: FrozenSet[str], others: Sequence[FrozenSet[str]]) -> List[str]:
    left = [o for o in others if feats <= o]
    if left:
        raise NoConstraint(f"a class with features {','.join(sorted(feats)) or '(none)'} "
                           f"cannot be told from one with {','.join(sorted(left[0]))}")
    remaining = list(others)
    chosen: List[str] = []
    while remaining:
        best = max(sorted(feats - set(chosen)), key=lambda f: sum(1 for o in remaining if f not in o))
        chosen.append(best)
        remaining = [o for o in remaining if best in o]
    return sorted(chosen)


def satisfies(features: Iterable[str], expr: str) -> bool:
    """Evaluate a constraint of this module's form (``a&b|(c&d)``) on a node's features: the
    reference the tests use beside real Slurm."""
    have = set(features)
    if not expr:
        return True
    return any(all(f in have for f in term.strip("()").split("&")) for term in expr.split("|"))
