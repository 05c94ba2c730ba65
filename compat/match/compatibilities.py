"""``platform.compatibilities`` (OCI WG proposal H): flat compatibility sets inline in the
index descriptor. Sets are alternatives; a set holds when every label holds; the best holding
set's ``compatibility-score`` enters the ranking where ``weight`` does.

Labels compat understands (values as the proposal writes them):
``oci.cpu.vendor`` (GenuineIntel/AuthenticAMD, or intel/amd), ``oci.cpu.features`` (comma list,
any case: ``AVX512F,``), ``oci.kernel.versions`` / ``oci.os.glibc`` / ``oci.os.<mpi>`` (an
interval ``[4.19, 5.16)`` or a comma list of versions), ``oci.pci.devices`` (``15B3.020D``
vendor.device, any listed present). Any other label makes its set fail ("unknown label"):
never silently compatible.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from compat.errors import printable
from compat.host.profile import Host
from compat.match.check import Check, fail, ok
from compat.nfd.cpuid import cpuid_name
from compat.vocab import values as V
from compat.vocab.data import load as load_data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple

SCORE_KEYS = ("compatibility-score", "oci.compatibility-score")
IGNORED = ("description", "oci.description")


def _in_range(spec: str, version: str) -> bool:
    m = re.fullmatch(r"\s*([\[(])\s*([^,\s]*)\s*,\s*([^,\s]*)\s*([\])])\s*", spec)
    have = V.version_tuple(version)
    if m:
        lo, hi = m.group(2), m.group(3)
        if lo and (have < V.version_tuple(lo) or (m.group(1) == "(" and have == V.version_tuple(lo))):
            return False
        if hi and (have > V.version_tuple(hi) or (m.group(4) == ")" and have == V.version_tuple(hi))):
            return False
        return True
    wanted = [x for x in (p.strip() for p in spec.split(",")) if x]
    if not wanted or not all(re.fullmatch(r"\d+(\.\d+)*", w) for w in wanted):
        raise ValueError(f"{spec!r} is neither an interval nor a list of versions")
    return any(have[:len(V.version_tuple(w))] == V.version_tuple(w) for w in wanted)


def _label(key: str, value: str, host: Host, features) -> Tuple[Optional[bool], str]:
    """(holds, why); holds None = unknown host fact."""
    if key == "oci.cpu.vendor":
        if not host.cpu.vendor:
            return None, "unknown: cpu.vendor"
        want = V.cpu_vendor(value)
        return want == host.cpu.vendor, f"{key}={value} (host {host.cpu.vendor})"
    if key == "oci.cpu.features":
        if host.cpu.features is None:
            return None, "unknown: cpu.features"
        table = load_data("platform_features").get(host.os.arch or "", {})
        have = set(host.cpu.features)
        have_cpuid = {cpuid_name(f) for f in have}
        missing = []
        for f in (x.strip() for x in value.split(",")):
            if f and not (table.get(f.lower()) in have or f.lower() in have or f.upper() in have_cpuid):
                missing.append(f)
        return not missing, f"{key}: host lacks {', '.join(missing)}" if missing else f"{key}={value}"
    if key in ("oci.kernel.versions", "oci.kernel.version"):
        kv = V.kernel_version(host.os.kernel or "")
        if kv is None:
            return None, "unknown: os.kernel"
        return _in_range(value, kv), f"{key} {value} (host {kv})"
    if key == "oci.os.glibc":
        if not host.os.glibc:
            return None, "unknown: os.glibc"
        return _in_range(value, host.os.glibc), f"{key} {value} (host {host.os.glibc})"
    m = re.fullmatch(r"oci\.os\.([\w-]+)", key)
    if m:
        try:
            impl = V.mpi_implementation(m.group(1))
        except Exception:  # noqa: BLE001 - not an MPI label: unknown
            return False, f"unknown label {key}"
        if host.mpi is None:
            return None, "unknown: mpi.implementation"
        versions = [x.version for x in host.mpi if x.implementation == impl and x.version]
        return any(_in_range(value, v) for v in versions), f"{key} {value} (host {impl}: {', '.join(versions) or 'none'})"
    if key == "oci.pci.devices":
        inst = (features.instances.get("pci.device") if features is not None else None)
        if inst is None:
            return None, "unknown: pci devices"
        want = {tuple(x.strip().lower().split(".", 1)) for x in value.split(",") if x.strip()}
        have = {(d.get("vendor", ""), d.get("device", "")) for d in inst}
        return bool(want & have), f"{key}={value}"
    return False, f"unknown label {key}"


def check(desc_platform: Optional[Mapping], host: Host, features=None) -> Check:
    sets = (desc_platform or {}).get("compatibilities")
    if not sets:
        return ok("compatibilities", "", (0, 0))
    if not isinstance(sets, list) or not all(isinstance(s, Mapping) for s in sets):
        return fail("compatibilities", "platform.compatibilities must be a list of objects")
    best = None
    first_failure = None
    for i, s in enumerate(sets):
        score = 0
        holds, why = True, ""
        for key, value in s.items():
            if key in SCORE_KEYS:
                try:
                    score = int(value)
                except (TypeError, ValueError, OverflowError):
                    return fail("compatibilities", f"set {i + 1}: {key} {printable(value, 40)} is not an integer")
                continue
            if key in IGNORED:
                continue
            try:
                h, why = _label(key, str(value), host, features)
            except ValueError as exc:
                return fail("compatibilities", f"set {i + 1}: {key}: {exc}")
            if not h:
                holds = False
                why = why if h is False else why
                break
        if holds:
            if best is None or score > best[0]:
                best = (score, i, len([k for k in s if k not in SCORE_KEYS + IGNORED]))
        elif first_failure is None:
            first_failure = f"set {i + 1}: {why}"
    if best is None:
        return fail("compatibilities", f"no compatibility set holds ({first_failure})")
    return ok("compatibilities", f"set {best[1] + 1} holds (score {best[0]})", (best[0], best[2]))
