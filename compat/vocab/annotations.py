"""The ``org.hpc-compat.*`` annotation keys of a descriptor, parsed into requirements.

One table, :data:`KEYS`, names every key with its value grammar and a one-line meaning;
``spec/vocabulary.md`` and ``schemas/annotations.schema.json`` describe the same set.
:func:`parse` never raises: it returns the requirements it could read, the malformed
values (each naming its key) and the unknown keys, so that the caller decides.
"""
from __future__ import annotations

import functools
import re

from compat.errors import ValueProblem, printable
from compat.record import Record
from compat.vocab import aliases, values as V
from compat.vocab.data import load as load_data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Mapping, Optional, Tuple

PREFIX = V.PREFIX


class Key(Record):
    name: str                       # without the prefix
    parse: Callable[[str, str], object]
    meaning: str
    requirement: bool = True        # False: informs ranking or display only


def _text(value: str, where: str) -> str:
    return value


def _cpu_features(value: str, where: str) -> Tuple[str, ...]:
    items = V.csv(value)
    if not items:
        raise ValueProblem(f"{where}: empty list")
    return tuple(items)


def _glibc(value: str, where: str) -> str:
    return V.major_minor(value, where)


KEYS: Dict[str, Key] = {k.name: k for k in [
    Key("cpu.target", V.archspec_target, "archspec microarchitecture the image was built for"),
    Key("cpu.features", _cpu_features, "ISA features the image needs (archspec spelling)"),
    Key("cpu.vendor", V.cpu_vendor, "CPU vendor (archspec spelling)"),
    Key("gpu.vendor", V.gpu_vendor, "GPU vendor the image uses; none = CPU only"),
    Key("gpu.cuda.version", lambda v, w: V.major_minor(v, w), "CUDA runtime inside the image"),
    Key("gpu.cuda.arch", V.cuda_arch_list, "SASS (sm_XY, sm_XYa, sm_XYf) and PTX (compute_XY) in the image"),
    Key("gpu.amd.arch", V.amd_arch_list, "AMD gfx targets compiled into the image"),
    Key("gpu.rocm.version", lambda v, w: V.major_minor(v, w), "minimum ROCm stack"),
    Key("mpi.implementation", V.mpi_implementation, "MPI inside the image"),
    Key("mpi.version", V.mpi_version, "version of the MPI inside the image"),
    Key("mpi.abi", V.mpi_abi, "MPI ABI family of the image"),
    Key("mpi.mode", V.mpi_mode, "how ranks are launched: bind, hybrid, pmi, none"),
    Key("mpi.pmi", lambda v, w: tuple(V.pmi_list(v, w)), "PMI flavours the image's MPI speaks"),
    Key("fabric", lambda v, w: tuple(V.fabric_list(v, w)), "fabrics the image can drive"),
    Key("fabric.providers", lambda v, w: tuple(V.provider_list(v, w)), "libfabric providers in the image",
        requirement=False),
    Key("os.kernel", V.version_range, "kernel version specifier (PEP 440)"),
    Key("runtime", V.runtime_list, "container runtimes that can run the image, each with an optional version range"),
    Key("runtime.needs", V.runtime_needs, "what the runtime must be able to do on the host: userns, fakeroot, fuse, setuid"),
    Key("libc.glibc", _glibc, "glibc inside the image (warns in bind mode)", requirement=False),
    Key("weight", V.weight, "tie-break, higher first", requirement=False),
    Key("description", _text, "free text shown in explanations", requirement=False),
]}


class Requirements(Record):
    """What one descriptor's annotations ask of a host (normalised values)."""

    values: Mapping[str, object] = {}     # read only
    errors: Tuple[str, ...] = ()
    unknown: Tuple[str, ...] = ()

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.values

    @property
    def generic(self) -> bool:
        """No compat key at all (known, unknown or malformed)."""
        return not self.values and not self.errors and not self.unknown

    @property
    def gpu_vendor(self) -> Optional[str]:
        """Explicit vendor, or the one a CUDA/ROCm key implies."""
        if "gpu.vendor" in self.values:
            return self.values["gpu.vendor"]
        if "gpu.cuda.version" in self.values or "gpu.cuda.arch" in self.values:
            return "nvidia"
        if "gpu.amd.arch" in self.values or "gpu.rocm.version" in self.values:
            return "amd"
        return None

    @property
    def requirement_count(self) -> int:
        return sum(1 for k in self.values if KEYS[k].requirement)


def _alias_keys() -> frozenset:
    return frozenset(load_data("aliases")["keys"])


_ALIAS_KEYS = _alias_keys()


_LONG_NUMBER = re.compile(r"[0-9]{19}", re.ASCII)     # no version part, count or weight is this long


@functools.lru_cache(maxsize=4096)
def _parse_value(name: str, raw_value: str):
    """(value, None) or (None, problem): one key's value, memoised (indexes repeat values).
    A run of 19 or more digits is refused before any grammar converts it (Python refuses
    to convert more than 4,300 digits, and nothing real is that long)."""
    if name != "description" and _LONG_NUMBER.search(raw_value):
        return None, f"{PREFIX}{name}: a number of more than 18 digits in {printable(raw_value, 40)}"
    try:
        return KEYS[name].parse(raw_value, PREFIX + name), None
    except ValueProblem as exc:
        return None, str(exc)


def locate(problem: str, where: str) -> str:
    """A problem of a descriptor's annotations, naming the descriptor (its digest)."""
    return f"{problem} ({where})" if where else problem


_DESCRIPTION = PREFIX + "description"


def decision_key(annotations: Mapping[str, str]) -> tuple:
    """An exact, hashable key of string-valued annotations but the description (free text,
    never a requirement): the keys, then the values, in their order. Two descriptors with
    equal keys get equal requirements, errors and unknown keys from :func:`parse` (errors
    follow the order), and so equal verdicts. Other keys stay in it (exact and cheap: one
    tuple, built in C, which a ranking memo keeps per distinct set)."""
    if _DESCRIPTION in annotations:
        annotations = dict(annotations)
        del annotations[_DESCRIPTION]
    return (*annotations, *annotations.values())


def parse(annotations: Optional[Mapping[str, str]], where: str = "") -> Requirements:
    """Read the compat keys of one descriptor's annotations (other keys are ignored); each
    error names ``where`` (the descriptor's digest), when given."""
    req = _parse(annotations)
    if where and req.errors:
        return req._replace(errors=tuple(locate(e, where) for e in req.errors))
    return req


def _parse(annotations: Optional[Mapping[str, str]]) -> Requirements:
    values: Dict[str, object] = {}
    errors: List[str] = []
    unknown: List[str] = []
    if annotations and not _ALIAS_KEYS.isdisjoint(annotations):
        annotations, _ = aliases.normalise(annotations)
    for raw_key, raw_value in (annotations or {}).items():
        if not raw_key.startswith(PREFIX):
            continue
        name = raw_key[len(PREFIX):]
        key = KEYS.get(name)
        if key is None:
            unknown.append(raw_key)
            continue
        if not isinstance(raw_value, str):
            errors.append(f"{raw_key}: value must be a string, got {type(raw_value).__name__}")
            continue
        value, problem = _parse_value(name, raw_value)
        if problem:
            errors.append(problem)
        else:
            values[name] = value
    # combinations
    vendor = values.get("gpu.vendor")
    implied = None
    if "gpu.cuda.version" in values or "gpu.cuda.arch" in values:
        implied = "nvidia"
    elif "gpu.amd.arch" in values or "gpu.rocm.version" in values:
        implied = "amd"
    if vendor and implied and vendor != implied:
        errors.append(f"{PREFIX}gpu.vendor: {vendor!r} contradicts the {implied} keys beside it")
    if values.get("mpi.mode") == "pmi" and "mpi.pmi" not in values:
        errors.append(f"{PREFIX}mpi.mode: 'pmi' needs {PREFIX}mpi.pmi (pmi1, pmi2, pmix)")
    impl = values.get("mpi.implementation")
    if "mpi.abi" in values and impl and impl != "none":
        expected = V.mpi_abi_of(impl)
        if expected and values["mpi.abi"] not in (expected, "mpi-abi"):
            errors.append(f"{PREFIX}mpi.abi: {values['mpi.abi']!r} is not the ABI of {impl} ({expected})")
    if values.get("mpi.mode") in ("bind", "hybrid") and not (impl or "mpi.abi" in values):
        errors.append(f"{PREFIX}mpi.mode: {values['mpi.mode']!r} needs {PREFIX}mpi.implementation or "
                      f"{PREFIX}mpi.abi")
    return Requirements(values=values, errors=tuple(errors), unknown=tuple(sorted(unknown)))
