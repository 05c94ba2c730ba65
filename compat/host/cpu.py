"""CPU: archspec target, vendor, generic level and features, read below a sysroot.

archspec's ``host()`` reads ``/proc/cpuinfo`` of the running machine and trusts
``platform.machine()``.  compat must also read another machine's capture, so this module
parses the first cpuinfo block itself and then applies archspec's own registered
compatibility checks and its choice rule (deepest descendant of the best generic level).
Where archspec collapses an Arm host to bare ``aarch64`` (unknown implementer) the level is
derived from the HWCAP flags instead (table in ``compat/data/arm_levels.json``).
"""
from __future__ import annotations

import platform
import re

from archspec.cpu import TARGETS, generic_microarchitecture
from archspec.cpu.detect import COMPATIBILITY_CHECKS, partial_uarch
from archspec.cpu.schema import TARGETS_JSON

from compat.host.profile import CPU
from compat.host.root import Root
from compat.vocab.data import arch_families, load as load_data, machine_archs

_POWER_ANY = re.compile(r"POWER\d|PowerPC|ppc")
_POWER_GEN = re.compile(r"POWER(\d+)")
_X86_LEVEL = re.compile(r"x86_64_v(\d)$")
_LDSO_LEVEL = re.compile(r"x86-64-v(\d) \(supported")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple


def read_cpuinfo(root: Root) -> Optional[Dict[str, str]]:
    """The first processor block of /proc/cpuinfo (as archspec reads it), or None."""
    text = root.read("/proc/cpuinfo")
    if text is None:
        return None
    data: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep != ":" and data:
            break
        if sep:
            data[key.strip()] = value.strip()
    return data or None


def arch_from_cpuinfo(info: Dict[str, str]) -> Optional[str]:
    """Tell the machine's OCI architecture from the shape of a cpuinfo block."""
    if "vendor_id" in info or "flags" in info:
        return "amd64"
    if "CPU implementer" in info or "Features" in info:
        return "arm64"
    if _POWER_ANY.search(info.get("cpu", "")):
        return "ppc64le"   # endianness is not in cpuinfo; little-endian is what HPC runs
    if "isa" in info and info["isa"].startswith("rv64"):
        return "riscv64"
    return None


def running_arch() -> Optional[str]:
    return machine_archs().get(platform.machine().lower())


def _partial(family: str, info: Dict[str, str]):
    if family == "x86_64":
        return partial_uarch(vendor=info.get("vendor_id", "generic"),
                             features=set(info.get("flags", "").split()))
    if family == "aarch64":
        return partial_uarch(vendor=_aarch64_vendor(info),
                             features=set(info.get("Features", "").split()),
                             cpu_part=info.get("CPU part", ""))
    if family in ("ppc64le", "ppc64"):
        m = _POWER_GEN.search(info.get("cpu", ""))
        return partial_uarch(generation=int(m.group(1)) if m else 0)
    if family == "riscv64":
        uarch = info.get("uarch", "riscv64")
        if uarch == "sifive,u74-mc":
            uarch = "u74mc"
        elif uarch == "spacemit,x60" or info.get("model name") == "Spacemit(R) X60":
            uarch = "x60"
        return partial_uarch(name=uarch)
    return None


def _aarch64_vendor(info: Dict[str, str]) -> str:
    """The vendor name archspec gives an Arm "CPU implementer" code, from archspec's own public
    table (``conversions.arm_vendors`` of microarchitectures.json), as its detection does."""
    code = info.get("CPU implementer")
    if code is None:
        return "generic"
    return TARGETS_JSON["conversions"]["arm_vendors"].get(code, code)


def _compatible(family: str, info, target) -> bool:
    """archspec's registered check for the family, without consulting platform.machine()."""
    if family in ("ppc64le", "ppc64"):   # archspec's check reads platform.machine(): inline it
        root = TARGETS[family]
        return (target == root or root in target.ancestors) and \
            target.generation <= info.generation
    check = COMPATIBILITY_CHECKS.get(family)
    return bool(check and check(info, target))


def choose_target(family: str, info) -> Tuple[object, List[object]]:
    """archspec's host() rule applied to partial info: (chosen target, all compatible)."""
    candidates = [t for t in TARGETS.values() if _compatible(family, info, t)]
    if not candidates:
        fallback = TARGETS.get(family) or generic_microarchitecture(family)
        return fallback, [fallback]

    def depth(t):
        return len(t.ancestors), len(t.features)

    best_generic = max((c for c in candidates if c.vendor == "generic"), key=depth,
                       default=TARGETS.get(family))
    narrowed = candidates
    if info.cpu_part and any(c.cpu_part == info.cpu_part for c in candidates):
        narrowed = [c for c in candidates if c.cpu_part == info.cpu_part]
    narrowed = [c for c in narrowed if best_generic is None or c > best_generic]
    return (max(narrowed, key=depth) if narrowed else best_generic), candidates


def arm_level_from_hwcaps(features) -> Optional[str]:
    """Highest armv8.x/9.x level whose indicative HWCAPs are all present."""
    table = load_data("arm_levels")["levels"]
    have = set(features)
    level = None
    needed: set = set()
    for row in table:
        needed |= set(row["hwcaps"])
        if not needed <= have:
            break
        level = row["name"]
    return level


def oci_variant(arch: Optional[str], cpu: CPU) -> Optional[str]:
    """The highest OCI platform variant the CPU runs: amd64 ``v3``, arm64 ``v8.2``/``v9``."""
    if arch == "amd64" and cpu.x86_64_level:
        level = cpu.x86_64_level
        if cpu.glibc_level:
            level = min(level, cpu.glibc_level)
        return f"v{level}" if level > 1 else "v1"
    if arch == "arm64" and cpu.generic:
        g = cpu.generic
        if g.startswith("armv9"):
            minor = g[len("armv9."):-1]
            return "v9" if minor in ("0", "") else f"v9.{minor}"
        if g.startswith("armv8"):
            minor = g[len("armv8."):-1]
            return "v8" if minor in ("0", "") else f"v8.{minor}"
        return "v8"
    return None


def x86_level(generic_name: Optional[str]) -> Optional[int]:
    if not generic_name or not generic_name.startswith("x86_64"):
        return None
    m = _X86_LEVEL.match(generic_name)
    return int(m.group(1)) if m else 1


def glibc_level(root: Root) -> Optional[int]:
    """The x86-64 level glibc's loader calls supported (``ld.so --help``), live only."""
    for loader in ("/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"):
        if root.live and root.exists(loader):
            out = root.run([loader, "--help"])
            if not out:
                return None
            levels = [int(m) for m in _LDSO_LEVEL.findall(out)]
            return max(levels) if levels else 1
    return None


def probe_cpu(root: Root, arch: Optional[str], sources: Dict[str, str]) -> CPU:
    info = read_cpuinfo(root)
    where = root.path("/proc/cpuinfo")
    model = None
    if info is None:
        if not root.live:
            sources["cpu"] = f"unknown: {where} unreadable"
            return CPU()
        return _from_py_cpuinfo(arch, sources)
    family = arch_families().get(arch or "")
    if family is None:
        sources["cpu"] = f"unknown: architecture {arch!r} has no archspec family"
        return CPU()
    partial = _partial(family, info)
    if partial is None:
        sources["cpu"] = f"unknown: no archspec detection for {family}"
        return CPU(family=family)
    target, _ = choose_target(family, partial)
    generic = target.generic.name if hasattr(target, "generic") else None
    features = tuple(sorted(partial.features))
    model = info.get("model name") or info.get("cpu") or info.get("uarch")
    sources["cpu.target"] = f"archspec rules on {where}"
    level_name = generic
    if family == "aarch64" and target.name == "aarch64":
        level_name = arm_level_from_hwcaps(features) or "aarch64"
        sources["cpu.generic"] = f"HWCAP flags in {where} (archspec knows no target for " \
                                 f"implementer {info.get('CPU implementer', '?')})"
    vendor = partial.vendor if partial.vendor != "generic" else target.vendor
    return CPU(target=target.name, vendor=vendor, family=family, generic=level_name,
               features=features, model=model, x86_64_level=x86_level(level_name))


def _from_py_cpuinfo(arch: Optional[str], sources: Dict[str, str]) -> CPU:
    """Last resort where /proc/cpuinfo says nothing (non-Linux, hidden procfs): ~1 s."""
    try:
        # start-up: py-cpuinfo (~1 s a call) loads only where /proc/cpuinfo says nothing
        import cpuinfo  # py-cpuinfo
        data = cpuinfo.get_cpu_info()
    except Exception as exc:  # noqa: BLE001 - a probe never crashes the program
        sources["cpu"] = f"unknown: /proc/cpuinfo unreadable and py-cpuinfo failed ({exc})"
        return CPU()
    family = arch_families().get(arch or "") or arch_families().get(machine_archs().get(data.get("arch_string_raw", ""), ""))
    if family is None:
        sources["cpu"] = "unknown: py-cpuinfo gave no usable architecture"
        return CPU()
    flags = set(data.get("flags", []))
    vendor = data.get("vendor_id_raw") or "generic"
    partial = partial_uarch(vendor=vendor, features=flags)
    target, _ = choose_target(family, partial)
    sources["cpu.target"] = "archspec rules on py-cpuinfo (CPUID)"
    generic = target.generic.name
    return CPU(target=target.name, vendor=vendor, family=family, generic=generic,
               features=tuple(sorted(flags)), model=data.get("brand_raw"),
               x86_64_level=x86_level(generic))
