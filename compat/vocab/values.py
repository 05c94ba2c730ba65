"""Value grammars of the vocabulary: parse, normalise, or say exactly what is wrong.

Each function takes the raw string and a ``where`` label used in the error message; it
returns the normalised value or raises :class:`compat.errors.ValueProblem`.
"""
from __future__ import annotations

import re

from compat import limits
from compat.errors import ValueProblem
from compat.vocab.data import arch_aliases, load as load_data, runtimes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional, Tuple

_VENDOR_NAME = re.compile(r"[A-Za-z][\w-]*", re.ASCII)
_GPU_COUNT = re.compile(r"[0-9]{1,3}", re.ASCII)
_MAJOR_MINOR = re.compile(r"\s*(\d+)(?:\.(\d+))?(?:\.\d+)*\s*", re.ASCII)
_NUMBER = re.compile(r"\d+", re.ASCII)
_INTEGER = re.compile(r"\s*[-+]?[0-9]+\s*", re.ASCII)
_COMPUTE_CAPABILITY = re.compile(r"\s*(\d+)\.(\d+)\s*", re.ASCII)
_CUDA_ARCH = re.compile(r"(sm|compute)_(\d+)(\d)([af]?)", re.ASCII)
_GFX_TARGET = re.compile(r"gfx[0-9a-f]{3,4}(?::[\w+-]+)*", re.ASCII)
_MPI_VERSION = re.compile(r"\d[\w.+-]*", re.ASCII)   # was \d+(\.\d+)*[\w.+-]*: same language, quadratic
_PROVIDER = re.compile(r"[a-z0-9_;-]+", re.ASCII)
_KERNEL_VERSION = re.compile(r"(\d+(?:\.\d+){0,2})", re.ASCII)
_ARCHSPEC_NAME = re.compile(r"[a-z0-9_.]+", re.ASCII)

PREFIX = "org.hpc-compat."

CPU_VENDORS = ("ARM", "Ampere", "Apple", "AuthenticAMD", "Cavium", "Fujitsu", "GenuineIntel",
               "HiSilicon", "IBM", "Nvidia", "Qualcomm", "SiFive", "SpacemiT")
_VENDOR_ALIASES = {"intel": "GenuineIntel", "amd": "AuthenticAMD", "nvidia": "Nvidia",
                   "hygon": "HygonGenuine", "hygongenuine": "HygonGenuine"}
GPU_VENDORS = ("nvidia", "amd", "intel", "none")
MPI_MODES = ("bind", "hybrid", "pmi", "none")


def csv(value: str) -> List[str]:
    return [x.strip().lower() for x in str(value).split(",") if x.strip()]


def cpu_vendor(value: str, where: str = "cpu.vendor") -> str:
    v = value.strip()
    for known in CPU_VENDORS:
        if v.lower() == known.lower():
            return known
    if v.lower() in _VENDOR_ALIASES:
        return _VENDOR_ALIASES[v.lower()]
    if not _VENDOR_NAME.fullmatch(v):
        raise ValueProblem(f"{where}: {value!r} is not a CPU vendor name")
    return v


def oci_arch(value: str) -> str:
    v = value.strip().lower()
    return arch_aliases().get(v, v)


def gpu_vendor(value: str, where: str = "gpu.vendor") -> str:
    v = value.strip().lower()
    v = {"ati": "amd", "radeon": "amd", "nv": "nvidia"}.get(v, v)
    if v not in GPU_VENDORS:
        raise ValueProblem(f"{where}: {value!r} is not one of {', '.join(GPU_VENDORS)}")
    return v


def gpu_count(value, where: str = "gpu.count") -> int:
    """A number of GPUs in one host: 0..limits.HOST_GPUS (a count from a profile, an NFD
    document or ``--assume`` is refused beyond it, never allocated)."""
    text = str(value).strip()
    if not _GPU_COUNT.fullmatch(text) or int(text) > limits.HOST_GPUS:
        raise ValueProblem(f"{where}: {text[:40]!r} is not a whole number of GPUs from 0 to {limits.HOST_GPUS}")
    return int(text)


def major_minor(value: str, where: str) -> str:
    m = _MAJOR_MINOR.fullmatch(str(value))
    if not m:
        raise ValueProblem(f"{where}: {value!r} is not a version X.Y")
    return f"{int(m.group(1))}.{int(m.group(2) or 0)}"


def version_tuple(value: str) -> Tuple[int, ...]:
    return tuple(int(x) for x in _NUMBER.findall(str(value))[:4])


def compute_capability(value: str, where: str = "gpu.cc") -> str:
    m = _COMPUTE_CAPABILITY.fullmatch(str(value))
    if not m:
        raise ValueProblem(f"{where}: {value!r} is not a compute capability M.m")
    return f"{int(m.group(1))}.{int(m.group(2))}"


# -- CUDA architectures -----------------------------------------------------------------------

class CudaArch(tuple):
    """(kind, major, minor, suffix): ``sm_90a`` -> ("sm", 9, 0, "a")."""

    __slots__ = ()

    def __new__(cls, kind, major, minor, suffix):
        return tuple.__new__(cls, (kind, major, minor, suffix))

    kind = property(lambda s: s[0])
    major = property(lambda s: s[1])
    minor = property(lambda s: s[2])
    suffix = property(lambda s: s[3])

    def __str__(self):
        return f"{self.kind}_{self.major}{self.minor}{self.suffix}"


def cuda_arch_list(value: str, where: str = "gpu.cuda.arch") -> Tuple[CudaArch, ...]:
    items = csv(value)
    if not items:
        raise ValueProblem(f"{where}: empty list")
    out = []
    for item in items:
        m = _CUDA_ARCH.fullmatch(item)
        if not m:
            raise ValueProblem(f"{where}: {item!r} is not sm_XY, sm_XYa, sm_XYf, compute_XY, compute_XYa or compute_XYf")
        out.append(CudaArch(m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)))
    return tuple(out)


def amd_arch_list(value: str, where: str = "gpu.amd.arch") -> Tuple[str, ...]:
    items = csv(value)
    if not items:
        raise ValueProblem(f"{where}: empty list")
    for item in items:
        if not _GFX_TARGET.fullmatch(item):
            raise ValueProblem(f"{where}: {item!r} is not a gfx target (gfx90a, gfx942)")
    return tuple(i.split(":")[0] for i in items)


# -- MPI --------------------------------------------------------------------------------------

def _lookup(value: str, table: dict, where: str, what: str) -> str:
    v = value.strip().lower().replace("_", "-")
    if v in table:
        return v
    for name, info in table.items():
        if v in info.get("aliases", []):
            return name
    raise ValueProblem(f"{where}: {value!r} is not {what} ({', '.join(table)})")


def mpi_abi_of(implementation: str) -> Optional[str]:
    """The ABI family of an MPI implementation (MPICH ABI initiative, Open MPI, ...)."""
    return load_data("mpi")["implementations"].get(implementation, {}).get("abi")


def mpi_implementation(value: str, where: str = "mpi.implementation") -> str:
    return _lookup(value, load_data("mpi")["implementations"], where, "a known MPI")


def mpi_abi(value: str, where: str = "mpi.abi") -> str:
    return _lookup(value, load_data("mpi")["abis"], where, "an MPI ABI")


def mpi_mode(value: str, where: str = "mpi.mode") -> str:
    v = value.strip().lower()
    if v not in MPI_MODES:
        raise ValueProblem(f"{where}: {value!r} is not one of {', '.join(MPI_MODES)}")
    return v


def mpi_version(value: str, where: str = "mpi.version") -> str:
    v = value.strip()
    if not _MPI_VERSION.fullmatch(v):
        raise ValueProblem(f"{where}: {value!r} is not a version")
    return v


def _known_list(value: str, where: str, known, aliases: Mapping[str, str]) -> List[str]:
    """A comma-separated list of names from ``known`` (``aliases`` first spelled out); not empty."""
    out = []
    for item in csv(value):
        item = aliases.get(item, item)
        if item not in known:
            raise ValueProblem(f"{where}: {item!r} is not one of {', '.join(known)}")
        out.append(item)
    if not out:
        raise ValueProblem(f"{where}: empty list")
    return out


def pmi_list(value: str, where: str = "mpi.pmi") -> List[str]:
    return _known_list(value, where, load_data("mpi")["pmi"], {"pmi": "pmi1", "pmi-1": "pmi1", "pmi-2": "pmi2"})


# -- fabric -----------------------------------------------------------------------------------

def fabric_list(value: str, where: str = "fabric") -> List[str]:
    return _known_list(value, where, load_data("fabrics")["fabrics"],
                       {"ib": "infiniband", "opa": "omnipath", "cxi": "slingshot", "ethernet": "tcp"})


def provider_list(value: str, where: str = "fabric.providers") -> List[str]:
    out = csv(value)
    for item in out:
        if not _PROVIDER.fullmatch(item):
            raise ValueProblem(f"{where}: {item!r} is not a libfabric provider name")
    if not out:
        raise ValueProblem(f"{where}: empty list")
    return out


# -- OS ---------------------------------------------------------------------------------------

def kernel_specifier(value: str, where: str = "os.kernel"):
    # start-up: packaging (~20 ms) loads only for an os.kernel value
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if not str(value).isascii():       # packaging reads any Unicode digit as a digit
        raise ValueProblem(f"{where}: {value!r} is not a version specifier like '>=5.10'")
    try:
        spec = SpecifierSet(value)
    except InvalidSpecifier:
        raise ValueProblem(f"{where}: {value!r} is not a version specifier like '>=5.10'") from None
    if not str(spec):
        raise ValueProblem(f"{where}: empty specifier")
    return spec


#: a PEP 440 clause compat compares itself: a comparison operator and a release number X[.Y...]
#: (no ``~=``, ``===``, wildcard, pre/post/dev or local part: those go to ``packaging``)
_PLAIN_CLAUSE = re.compile(r"\s*(>=|<=|==|!=|<|>)\s*(\d{1,15}(?:\.\d{1,15}){0,15})\s*", re.ASCII)
_COMPARE = {">=": lambda c: c >= 0, "<=": lambda c: c <= 0, "==": lambda c: c == 0,
            "!=": lambda c: c != 0, ">": lambda c: c > 0, "<": lambda c: c < 0}


def _plain_clauses(value: str) -> Optional[List[Tuple[str, Tuple[int, ...]]]]:
    """``>=5.10, <7`` -> [(">=", (5, 10)), ("<", (7,))]; None when a clause is not plain."""
    out = []
    for clause in str(value).split(","):
        m = _PLAIN_CLAUSE.fullmatch(clause)
        if m is None:
            return None
        out.append((m.group(1), tuple(int(n) for n in m.group(2).split("."))))
    return out


def version_range(value: str, where: str = "os.kernel") -> str:
    """A PEP 440 specifier as compat keeps it: what ``str(SpecifierSet(value))`` gives (each
    clause once, sorted). A plain one (:data:`_PLAIN_CLAUSE`) is read here, without importing
    ``packaging`` (≈29 ms with typing, subprocess, logging, platform on every select that
    reads ``os.kernel`` or a runtime range); anything else by :func:`kernel_specifier`."""
    clauses = _plain_clauses(value)
    if clauses is None:
        return str(kernel_specifier(value, where))
    kept: Dict[Tuple[str, Tuple[int, ...]], str] = {}    # packaging: sorted, equal clauses once
    for text, (op, bound) in sorted(zip(("".join(t.split()) for t in str(value).split(",")), clauses)):
        kept.setdefault((op, _strip_zeros(bound)), text)
    return ",".join(kept.values())


def _strip_zeros(bound: Tuple[int, ...]) -> Tuple[int, ...]:
    while len(bound) > 1 and bound[-1] == 0:
        bound = bound[:-1]
    return bound


def in_range(release: str, spec: str) -> bool:
    """Whether the release ``X[.Y[.Z]]`` (:func:`kernel_version`) satisfies the specifier, as
    ``SpecifierSet(spec).contains(release, prereleases=True)`` says. For a plain specifier and
    a release without pre/post/local parts PEP 440 is the comparison of the numbers, the
    shorter padded with zeros (``==1.3`` holds for 1.3.0); anything else asks ``packaging``."""
    clauses = _plain_clauses(spec)
    if clauses is None:
        # start-up: packaging (~29 ms with what it imports) loads only for a range compat does not read itself
        from packaging.specifiers import SpecifierSet
        return SpecifierSet(spec).contains(release, prereleases=True)
    version = tuple(int(n) for n in release.split("."))
    return all(_COMPARE[op](_cmp(version, bound)) for op, bound in clauses)


def _cmp(a: Tuple[int, ...], b: Tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def kernel_version(release: str) -> Optional[str]:
    """``6.1.0-18-amd64`` -> ``6.1.0`` (the part PEP 440 can compare)."""
    m = _KERNEL_VERSION.match(release or "")
    return m.group(1) if m else None


# -- container runtimes -------------------------------------------------------------------

def runtime_name(value: str, where: str = "runtime") -> str:
    """A runtime of compat/data/runtimes.json by its name or an alias (``singularity-ce`` ->
    ``singularity``, ``ch-run`` -> ``charliecloud``)."""
    return _lookup(value, runtimes(), where, "a container runtime")


#: one item of org.hpc-compat.runtime (stripped): NAME, NAME CLAUSE, or a CLAUSE continuing the
#: runtime before it (PEP 508's ``name>=1.3,<2``); CLAUSE = a PEP 440 operator and a version
_RUNTIME_ITEM = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)?\s*((?:~=|===?|!=|<=|>=|<|>)\s*[0-9][A-Za-z0-9.*+!_-]*)?",
                           re.ASCII)


def runtime_list(value: str, where: str = "runtime") -> Tuple[Tuple[str, str], ...]:
    """``apptainer>=1.3,<2, singularity>=3.11, podman`` -> (("apptainer", ">=1.3,<2"),
    ("singularity", ">=3.11"), ("podman", "")): the runtimes that can run the image, each
    with the PEP 440 specifier its version must satisfy ("" = any version). A comma followed
    by an operator continues the runtime before it; a name starts the next one."""
    items: List[Tuple[str, List[str]]] = []
    parts = [p for p in (p.strip() for p in str(value).split(",")) if p]
    if len(parts) > limits.RUNTIME_ITEMS:
        raise ValueProblem(f"{where}: more than {limits.RUNTIME_ITEMS} names and version clauses "
                           f"(limits.RUNTIME_ITEMS)")
    for part in parts:
        m = _RUNTIME_ITEM.fullmatch(part)
        if not m or not (m.group(1) or m.group(2)):
            raise ValueProblem(f"{where}: {part[:60]!r} is not a runtime name with an optional version "
                               f"range (apptainer>=1.3,<2, podman)")
        name, clause = m.group(1), "".join((m.group(2) or "").split())
        if name:
            items.append((runtime_name(name, where), [clause] if clause else []))
        elif not items:
            raise ValueProblem(f"{where}: {part[:60]!r} follows no runtime name (apptainer>=1.3,<2)")
        else:
            items[-1][1].append(clause)
    if not items:
        raise ValueProblem(f"{where}: empty list")
    out = []
    for name, clauses in items:
        spec = ",".join(clauses)
        try:
            if spec:
                version_range(spec, where)           # PEP 440, read as os.kernel's
        except ValueProblem:
            raise ValueProblem(f"{where}: {name}{spec} is not a PEP 440 version range like "
                               f"apptainer>=1.3,<2") from None
        out.append((name, spec))
    return tuple(out)


RUNTIME_NEEDS = ("userns", "fakeroot", "fuse", "setuid")


def runtime_needs(value: str, where: str = "runtime.needs") -> Tuple[str, ...]:
    """Capabilities the runtime must have on the host: userns, fakeroot, fuse, setuid."""
    return tuple(dict.fromkeys(_known_list(value, where, RUNTIME_NEEDS, {"suid": "setuid"})))


def weight(value: str, where: str = "weight") -> int:
    text = str(value)
    if not _INTEGER.fullmatch(text):
        raise ValueProblem(f"{where}: {value!r} is not an integer")
    try:
        return int(text)
    except ValueError:          # more digits than Python converts (4,300)
        raise ValueProblem(f"{where}: {value!r} is not an integer of sane size") from None


def archspec_target(value: str, where: str = "cpu.target") -> str:
    v = value.strip().lower()
    if not _ARCHSPEC_NAME.fullmatch(v):
        raise ValueProblem(f"{where}: {value!r} is not an archspec target name")
    return v
