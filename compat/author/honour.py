"""What selection can never honour, found at authoring time.

The vocabulary's grammar (``compat/vocab/``) says whether a value is well formed; selection
then needs more: an archspec target it knows, a feature some host of that architecture can
report, keys that do not contradict each other or the descriptor's platform.  A value that
passes the grammar but fails here would be pushed, then make its variant impossible to select
(``select`` excludes it on every host).  Each rule below mirrors one step of ``compat/match/``
and says which.

Errors: selection rejects the variant on every host (or silently ignores what it says).
Warnings: selection can honour it only on hosts that report something archspec does not know.
"""
from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping

from archspec.cpu import TARGETS
from archspec.cpu.detect import partial_uarch

from compat.oci.platform import from_descriptor, problems as malformed, variant_problem
from compat.vocab import annotations as A, values as V
from compat.vocab.annotations import PREFIX, Requirements
from compat.vocab.data import arch_families, load as load_data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, FrozenSet, List, Optional, Tuple

ERROR, WARNING = "error", "warning"


# -- archspec knowledge, read from archspec itself ------------------------------------------

@functools.lru_cache(maxsize=None)
def _targets():
    return TARGETS


_FLAG = re.compile(r"-m(?:arch|cpu)=([A-Za-z0-9_.-]+)(?=\s|$)")


def _open_ended(entry: Mapping) -> bool:
    return str(entry.get("versions", "")).endswith(":")


@functools.lru_cache(maxsize=None)
def compiler_names() -> Dict[str, Tuple[str, ...]]:
    """Compiler spelling (``-march=``/``-mcpu=``/nvhpc ``-tp`` name) -> archspec targets.

    Built from each target's ``compilers`` section in archspec's JSON: for every compiler, the
    entries of current versions (an open-ended version range), whose ``name`` (default: the
    target's own name) is what that compiler calls the target.  Older entries are skipped:
    they name an older stand-in (gcc 10 builds zen4 with ``-march=znver3``)."""
    out: Dict[str, set] = {}
    for name, target in _targets().items():
        for entries in (target.compilers or {}).values():
            for entry in entries:
                if not _open_ended(entry):
                    continue
                spelled = entry.get("name") or name
                flags = str(entry.get("flags", "")).replace("{name}", spelled)
                found = [spelled] if "{name}" in str(entry.get("flags", "")) or entry.get("name") else []
                found += _FLAG.findall(flags)
                for s in found:
                    if "+" not in s and s.lower() != name:
                        out.setdefault(s.lower(), set()).add(name)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def target_suggestion(raw: str) -> str:
    """`` (did you mean 'zen4'? ...)`` for a name archspec does not know, or ``""``."""
    v = raw.strip().lower()
    targets = _targets()
    underscored = v.replace("-", "_")
    if underscored in targets and underscored != v:
        return f" (did you mean {underscored!r}? archspec spells it with underscores)"
    hits = compiler_names().get(v)
    if hits:
        # a spelling several targets use names what they share: suggest the most generic
        depth = {h: len(targets[h].ancestors) for h in hits}
        shown = " or ".join(repr(h) for h in hits if depth[h] == min(depth.values()))
        return f" (did you mean {shown}? {raw.strip()!r} is the compiler's spelling)"
    close = difflib.get_close_matches(underscored, list(targets), n=3, cutoff=0.6)
    if close:
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    return ""


def target_problem(raw) -> Optional[str]:
    """Why selection can never use this ``cpu.target`` value, or None."""
    if not isinstance(raw, str):
        return None                       # the grammar reports the type
    name = raw.strip().lower()
    if name in _targets():
        return None
    return (f"{PREFIX}cpu.target: {raw!r} is not a microarchitecture archspec knows, so selection "
            f"would exclude this variant on every host{target_suggestion(raw)}")


@functools.lru_cache(maxsize=None)
def _family_features() -> Dict[str, FrozenSet[str]]:
    out: Dict[str, set] = {}
    for t in _targets().values():
        out.setdefault(t.family.name, set()).update(t.features)
    return {k: frozenset(v) for k, v in out.items()}


@functools.lru_cache(maxsize=4096)
def _host_could_report(feature: str, family: str) -> bool:
    """True when a host of ``family`` that has every feature archspec lists for that family
    satisfies ``feature`` by selection's own test (``feature in partial_uarch(...)``)."""
    return feature in partial_uarch(features=set(_family_features().get(family, ())))


@functools.lru_cache(maxsize=None)
def _vendor_families() -> Dict[str, FrozenSet[str]]:
    out: Dict[str, set] = {}
    for t in _targets().values():
        if t.vendor != "generic":
            out.setdefault(t.vendor, set()).add(t.family.name)
    return {k: frozenset(v) for k, v in out.items()}


def _family_of(platform: Optional[Mapping]) -> Optional[str]:
    if not isinstance(platform, Mapping):
        return None
    try:
        p = from_descriptor(platform)
    except (AttributeError, TypeError):
        return None
    return arch_families().get(p.arch) if p else None


# -- the rules -------------------------------------------------------------------------------

def _cpu(req: Requirements, family: Optional[str], arch: str) -> List[Tuple[str, str]]:
    out = []
    targets = _targets()
    target = targets.get(req.get("cpu.target", "")) if "cpu.target" in req else None
    if target is not None and family and target.family.name != family:
        out.append((ERROR, f"{PREFIX}cpu.target: {target.name} is a microarchitecture of the {target.family.name} "
                           f"family; this descriptor's platform is {arch} ({family}), "
                           "so no host that passes the platform filter is a descendant of it"))
    vendor = req.get("cpu.vendor")
    if vendor:
        families = _vendor_families().get(vendor)
        known = set(_vendor_families()) | set(V.CPU_VENDORS) | {"HygonGenuine"}
        if vendor not in known:
            close = difflib.get_close_matches(vendor, sorted(known), n=2, cutoff=0.6)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            out.append((WARNING, f"{PREFIX}cpu.vendor: {vendor!r} is not a vendor archspec or compat knows; "
                                 f"only a host reporting exactly that vendor matches{hint}"))
        elif families and family and family not in families:
            out.append((ERROR, f"{PREFIX}cpu.vendor: {vendor} makes no {family} CPUs archspec knows; "
                               f"this descriptor's platform is {arch}"))
        if target is not None and target.vendor not in ("generic", vendor):
            out.append((ERROR, f"{PREFIX}cpu.vendor: {vendor!r} contradicts {PREFIX}cpu.target "
                               f"{target.name} (made by {target.vendor}): no host is both"))
    for feature in req.get("cpu.features", ()):
        fams = [f for f in _family_features() if _host_could_report(feature, f)]
        if not fams:
            out.append((WARNING, f"{PREFIX}cpu.features: no archspec microarchitecture has {feature!r}; "
                                 "selection matches it only on hosts whose cpuinfo lists it by that name"))
        elif family and family not in fams:
            out.append((ERROR, f"{PREFIX}cpu.features: {feature!r} exists only on {'/'.join(sorted(fams))} "
                               f"CPUs (archspec); no {arch} host has it"))
    if not out and ("cpu.features" in req or ("cpu.vendor" in req and target is not None)):
        out += _no_cpu_has_it_all(req, target, family)
    return out


@functools.lru_cache(maxsize=None)
def _as_host(name: str):
    """A host whose CPU is exactly the archspec target ``name``, as selection sees hosts."""
    return partial_uarch(features=set(_targets()[name].features))


@functools.lru_cache(maxsize=1024)
def _some_cpu_has_it_all(features: Tuple[str, ...], target_name: Optional[str], vendor: Optional[str],
                         family: Optional[str]) -> bool:
    target = _targets().get(target_name) if target_name else None
    vendor_known = vendor in _vendor_families()
    for t in _targets().values():
        if family and t.family.name != family:
            continue
        if target is not None and not (t == target or target in t.ancestors):
            continue
        if vendor_known and t.vendor not in (vendor, "generic"):
            continue
        host = _as_host(t.name)
        if all(f in host for f in features):
            return True
    return False


def _no_cpu_has_it_all(req: Requirements, target, family: Optional[str]) -> List[Tuple[str, str]]:
    """Every feature is known on its own: does some microarchitecture archspec knows have
    them all, descend from ``cpu.target`` and come from ``cpu.vendor``? (Selection's own
    tests: ``target <= host``, vendor equality, ``feature in partial_uarch(host features)``.)"""
    vendor = req.get("cpu.vendor")
    features = tuple(req.get("cpu.features", ()))
    if _some_cpu_has_it_all(features, target.name if target is not None else None, vendor, family):
        return []
    wanted = [f"{PREFIX}cpu.features {','.join(features)}"] if features else []
    wanted += [f"{PREFIX}cpu.target {target.name}"] if target is not None else []
    wanted += [f"{PREFIX}cpu.vendor {vendor}"] if vendor else []
    key = "cpu.features" if features else "cpu.vendor"
    return [(WARNING, f"{PREFIX}{key}: no microarchitecture archspec knows"
                      f"{' in the ' + family + ' family' if family else ''} "
                      f"meets {' and '.join(wanted)} together; only a CPU newer than archspec's data could")]


def _cuda(req: Requirements) -> List[Tuple[str, str]]:
    version = req.get("gpu.cuda.version")
    arches = req.get("gpu.cuda.arch")
    if not version or not arches:
        return []
    dropped = load_data("cuda")["dropped_sass_majors"].get(version.split(".")[0], [])
    bad = [str(a) for a in arches if f"{a.major}.{a.minor}" in dropped]
    if not bad:
        return []
    return [(ERROR, f"{PREFIX}gpu.cuda.arch: CUDA {version} cannot build {', '.join(bad)} "
                    f"(capabilities it dropped), so {PREFIX}gpu.cuda.version and {PREFIX}gpu.cuda.arch "
                    "contradict each other")]


def _mpi(req: Requirements) -> List[Tuple[str, str]]:
    impl = req.get("mpi.implementation")
    if impl is None and "mpi.abi" not in req and ("mpi.version" in req or "mpi.mode" in req):
        keys = ", ".join(PREFIX + k for k in ("mpi.version", "mpi.mode") if k in req)
        return [(WARNING, f"{keys} without {PREFIX}mpi.implementation or {PREFIX}mpi.abi: selection cannot "
                          "tell which MPI is meant, so no host MPI ever matches it")]
    if impl != "none":
        return []
    ignored = [k for k in ("mpi.mode", "mpi.version", "mpi.abi", "mpi.pmi")
               if k in req and not (k == "mpi.mode" and req.get(k) == "none")]
    if not ignored:
        return []
    return [(ERROR, f"{PREFIX}mpi.implementation: 'none' (the image has no MPI) contradicts "
                    f"{', '.join(PREFIX + k for k in ignored)}, which selection then ignores")]


def _kernel_candidates(spec) -> List[str]:
    """Kernel releases (``X.Y.Z``, what selection compares) around every bound of ``spec``:
    a satisfiable specifier holds for one of them (each bound, its successors, its
    predecessors), so none holding means none ever will."""
    out = {"0.0.0", "999.0.0"}
    for clause in spec:
        parts = [int(x) for x in re.findall(r"\d+", clause.version)[:3]] + [0, 0, 0]
        a, b, c = parts[:3]
        out.update(f"{x}.{y}.{z}" for x, y, z in
                   [(a, b, c), (a, b, c + 1), (a, b + 1, 0), (a + 1, 0, 0),
                    (a, b, max(c - 1, 0)), (a, max(b - 1, 0), 999), (max(a - 1, 0), 999, 999)])
    return sorted(out)


def _kernel(req: Requirements) -> List[Tuple[str, str]]:
    if "os.kernel" not in req:
        return []
    try:
        spec = V.kernel_specifier(req.get("os.kernel"))
    except ValueError:
        return []                          # the grammar reports it
    if any(spec.contains(v, prereleases=True) for v in _kernel_candidates(spec)):
        return []
    return [(ERROR, f"{PREFIX}os.kernel: no kernel release X.Y.Z satisfies {str(spec)!r} (selection "
                    "compares the release's numbers, e.g. 6.1.0 of 6.1.0-18-amd64)")]


def platform_problems(platform: Optional[Mapping]) -> List[Tuple[str, str]]:
    """What in a descriptor's platform no host's platform filter accepts."""
    if not isinstance(platform, Mapping):
        return []
    bad = malformed(dict(platform))        # the descriptor check selection uses (one source)
    if bad:
        return [(ERROR, m) for m in bad]
    p = from_descriptor(platform)
    out = []
    if p.arch == "amd64" and p.variant not in ("", "v1", "v2", "v3", "v4") and \
            not variant_problem(p.arch, p.variant):
        out.append((ERROR, f"platform variant {p.variant!r}: amd64 variants are the x86-64 levels v1 to v4; "
                           "no host runs another"))
    feats = platform.get("features")
    if isinstance(feats, list):
        table = load_data("platform_features").get(p.arch, {})
        unknown = [f for f in feats if not isinstance(f, str) or f.lower() not in table]
        if unknown:
            out.append((ERROR, f"platform features {', '.join(map(str, unknown))}: unknown for {p.arch} "
                               "(OCI proposal E makes such an entry ineligible on every host)"))
    return out


def problems(annotations: Mapping, platform: Optional[Mapping] = None,
             req: Optional[Requirements] = None) -> List[Tuple[str, str]]:
    """(level, message) for everything in these annotations selection cannot honour.
    ``cpu.target`` values archspec does not know are reported by :func:`target_problem`."""
    req = req if req is not None else A.parse(annotations)
    family = _family_of(platform)
    arch = str(platform.get("architecture", "")) if isinstance(platform, Mapping) else ""
    return _cpu(req, family, arch) + _cuda(req) + _mpi(req) + _kernel(req)


def excludes_no_host(req: Requirements) -> bool:
    """True when these requirements exclude no host of the descriptor's platform: no CPU, GPU,
    kernel or runtime requirement, a fabric list that includes ``tcp`` (always present), and MPI keys
    only without a launch mode (MPI keys then rank, never exclude).  What a generic baseline
    is; ``description``, ``weight``, ``fabric.providers`` and ``libc.glibc`` never exclude."""
    if req.errors or req.unknown:
        return False
    for key in req.values:
        if key.startswith(("cpu.", "runtime")) or key == "os.kernel":
            return False
        if key.startswith("gpu.") and req.gpu_vendor != "none":
            return False
    if "fabric" in req.values and "tcp" not in req.get("fabric"):
        return False
    mode = req.get("mpi.mode")
    return mode is None or mode == "none" or req.get("mpi.implementation") == "none"
