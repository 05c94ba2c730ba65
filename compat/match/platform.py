"""Platform filter with containerd's semantics (github.com/containerd/platforms): OS and
architecture equal after normalisation, the variant on the host's *ladder* (containerd's
``platformVector``: the exact variant first, then each lower one in order), and ``os.features``
a subset of the host's, more of them preferred.

The ladder is the platform's own and independent of archspec: amd64 ``vN .. v2, v1``; arm64
``v9.y .. v9.1, v9, v8.min(y+5, 9) .. v8.1, v8``; arm ``vN .. v5``; other architectures their
exact variant. spec/selection.md lists where compat deliberately differs from containerd.
"""
from __future__ import annotations

import re
from typing import Any, List, Mapping, NamedTuple, Optional, Tuple

from compat.match.check import Check, fail, ok, unknown

_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}
_OS = {"macos": "darwin"}
#: containerd's specifier grammar (platforms.go specifierRe, osRe); bounded lengths
_COMPONENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_OS_SPEC = re.compile(r"([A-Za-z0-9_-]{1,64})(?:\(([A-Za-z0-9_.%-]{0,64})((?:\+[A-Za-z0-9_.%-]{1,64}){0,32})\))?")
_AMD64 = re.compile(r"v([1-9][0-9]{0,2})")
_ARM64 = re.compile(r"v?(8|9)(?:\.([0-9]{1,2}))?")
_ARM = re.compile(r"v?([1-9])")
_V8_MAX = 9            # containerd's table: v8.0 .. v8.9 (there is no v8.10)
_V9_TO_V8 = 5          # v9.y runs what v8.(y+5) runs (containerd's arm64variantToVersion)


class Platform(NamedTuple):
    os: str
    arch: str
    variant: str = ""
    features: Tuple[str, ...] = ()

    def __str__(self):
        feats = "(" + "".join("+" + f for f in sorted(self.features)) + ")" if self.features else ""
        return "/".join(x for x in (self.os + feats, self.arch, self.variant) if x)


def variant_problem(arch: str, variant: str) -> Optional[str]:
    """Why ``variant`` (lower-cased) is not a variant of ``arch``; None when it is one."""
    if not variant:
        return None
    from compat.errors import printable
    shown = "'" + printable(variant, 40) + "'"
    if arch == "amd64":
        return None if _AMD64.fullmatch(variant) else f"variant {shown} is not an amd64 level (v1, v2, v3, v4)"
    if arch == "arm64":
        m = _ARM64.fullmatch(variant)
        if m and (m.group(1) == "9" or int(m.group(2) or 0) <= _V8_MAX):
            return None
        return f"variant {shown} is not an Arm level (v8, v8.1 .. v8.9, v9, v9.1, ...)"
    if arch == "arm":
        return None if _ARM.fullmatch(variant) else f"variant {shown} is not an arm variant (v5, v6, v7, v8)"
    return None if _COMPONENT.fullmatch(variant) else f"variant {shown} has characters outside [A-Za-z0-9_.-]"


def normalise(os_: str, arch: str, variant: Optional[str] = "", features=()) -> Platform:
    """containerd's Normalize (normalizeOS, normalizeArch); arm64 ``8.2`` also reads ``v8.2``
    (containerd leaves it unmatched: spec/selection.md, differences)."""
    os_ = (os_ or "").lower()
    os_ = _OS.get(os_, os_)
    arch = (arch or "").lower()
    variant = (variant or "").lower()
    if arch in ("armhf", "armel"):
        arch, variant = "arm", "v7" if arch == "armhf" else "v6"
    arch = _ARCH.get(arch, arch)
    if arch == "386":
        variant = ""
    elif arch == "amd64" and variant == "v1":
        variant = ""
    elif arch == "arm64":
        m = _ARM64.fullmatch(variant)
        if m:
            minor = int(m.group(2) or 0)
            variant = "" if m.group(1) == "8" and minor == 0 else f"v{m.group(1)}" + (f".{minor}" if minor else "")
    elif arch == "arm":
        variant = "v7" if variant in ("", "7") else ("v" + variant if variant.isdigit() else variant)
    return Platform(os_, arch, variant, tuple(sorted(set(features))))


def parse(text: str) -> Platform:
    """``OS[(VERSION[+FEATURE]...)]/ARCH[/VARIANT]`` (containerd's specifier) -> Platform, for
    ``--platform``. Anything else, or a variant its architecture does not have, is bad input."""
    from compat.errors import BadInput, printable

    parts = text.split("/") if isinstance(text, str) and len(text) <= 512 else []
    os_m = _OS_SPEC.fullmatch(parts[0]) if parts else None
    if not 2 <= len(parts) <= 3 or os_m is None or not all(_COMPONENT.fullmatch(p) for p in parts[1:]):
        raise BadInput(f"--platform {printable(text, 80)}: expected OS[(+FEATURE...)]/ARCH[/VARIANT], "
                       "e.g. linux/amd64/v3")
    features = [f for f in (os_m.group(3) or "").split("+") if f]
    p = normalise(os_m.group(1), parts[1], parts[2] if len(parts) > 2 else "", features)
    problem = variant_problem(p.arch, p.variant)
    if problem:
        raise BadInput(f"--platform {printable(text, 80)}: {problem}")
    return p


def problems(platform: Any) -> List[str]:
    """Why a descriptor's ``platform`` object is malformed (types, grammar); [] when it is not.
    An absent platform is not malformed (it is incompatible: compat does not guess)."""
    if platform is None:
        return []
    if not isinstance(platform, dict):
        return [f"platform must be an object, not {type(platform).__name__}"]
    out = []
    for key in ("os", "architecture"):
        v = platform.get(key)
        if not isinstance(v, str) or not _COMPONENT.fullmatch(v):
            out.append(f"platform.{key} must be a string of [A-Za-z0-9_.-] (got {_brief(v)})")
    for key in ("variant", "os.version"):
        v = platform.get(key)
        if v is not None and not isinstance(v, str):
            out.append(f"platform.{key} must be a string (got {_brief(v)})")
    for key in ("os.features", "features"):
        v = platform.get(key)
        if v is not None and not (isinstance(v, list) and all(isinstance(f, str) for f in v)):
            out.append(f"platform.{key} must be a list of strings (got {_brief(v)})")
    if not out and isinstance(platform.get("variant"), str) and platform["variant"]:
        p = normalise(platform["os"], platform["architecture"], platform["variant"])
        problem = variant_problem(p.arch, p.variant)
        if problem:
            out.append("platform." + problem)
    return out


def _brief(value: Any) -> str:
    from compat.errors import printable
    if isinstance(value, (dict, list)):
        return type(value).__name__
    if isinstance(value, int) and not isinstance(value, bool):
        return "a number"
    return printable(value, 40) if value is not None else "nothing"


def from_descriptor(platform: Optional[Mapping]) -> Optional[Platform]:
    """The normalised platform of a descriptor; None when it has none or it is malformed."""
    if not platform or problems(platform):
        return None
    return checked(platform)


def checked(platform: Mapping) -> Platform:
    """The normalised platform of a descriptor whose platform has no :func:`problems`."""
    return normalise(platform.get("os", ""), platform.get("architecture", ""), platform.get("variant", ""),
                     platform.get("os.features") or ())


# -- the ladder ---------------------------------------------------------------------------------

def _arm64_version(variant: str) -> Tuple[int, int]:
    m = _ARM64.fullmatch(variant or "v8")
    return int(m.group(1)), int(m.group(2) or 0)


def _arm64_name(major: int, minor: int) -> str:
    return "" if (major, minor) == (8, 0) else f"v{major}" + (f".{minor}" if minor else "")


def ladder(host: Platform) -> Tuple[str, ...]:
    """The variants a host of this platform runs, best first (containerd's platformVector for
    the host's own architecture)."""
    if host.arch == "amd64":
        level = int(host.variant[1:]) if host.variant else 1
        return tuple(f"v{n}" for n in range(level, 1, -1)) + ("",)
    if host.arch == "arm64":
        major, minor = _arm64_version(host.variant)
        steps = [(major, m) for m in range(minor, -1, -1)]
        if major == 9:
            steps += [(8, m) for m in range(min(minor + _V9_TO_V8, _V8_MAX), -1, -1)]
        return tuple(_arm64_name(*s) for s in steps)
    if host.arch == "arm":
        level = int(host.variant[1:]) if _ARM.fullmatch(host.variant or "") else 7
        return tuple(f"v{n}" for n in range(level, 4, -1)) if level >= 5 else (host.variant,)
    return (host.variant,)


def rung(cand: Platform, host: Platform) -> Optional[int]:
    """How high the candidate's variant sits on the host's ladder (the exact variant highest);
    None: not on it."""
    steps = ladder(host)
    return len(steps) - steps.index(cand.variant) if cand.variant in steps else None


def _shown(arch: str, variant: str) -> str:
    return variant or {"amd64": "v1", "arm64": "v8"}.get(arch, "no variant")


def _above(cand: Platform, host: Platform) -> bool:
    """The candidate's level is higher than the host's (same architecture)."""
    if cand.arch == "amd64":
        return int(cand.variant[1:] or 1) > int(host.variant[1:] or 1)
    if cand.arch == "arm64" and not variant_problem("arm64", cand.variant):
        return _arm64_version(cand.variant) > _arm64_version(host.variant)
    return False


def check(desc_platform: Optional[Mapping], host: Platform) -> Check:
    """Verdict; fit = (rung on the host's ladder, number of matching os.features)."""
    bad = problems(desc_platform)
    if bad:
        return fail("platform", "; ".join(bad))
    if not desc_platform:
        return fail("platform", "descriptor has no platform; compat does not guess an architecture")
    cand = checked(desc_platform)
    if not host.arch:                      # e.g. an NFD NodeFeature without CPU facts
        return unknown("platform", "os.arch")
    if (cand.os, cand.arch) != (host.os, host.arch):
        return fail("platform", f"{cand} is not {host.os}/{host.arch}")
    step = rung(cand, host)
    if step is None:
        runs = ", ".join(_shown(host.arch, v) for v in ladder(host))
        where = "above what" if _above(cand, host) else "not one"
        return fail("platform", f"variant {cand.variant} is {where} the host runs ({host} runs {runs})")
    missing = sorted(set(cand.features) - set(host.features))
    if missing:
        return fail("platform", f"os.features {', '.join(missing)} not offered by the host")
    return ok("platform", f"{cand} runs on {host}", (step, len(cand.features)))


def check_features(desc_platform: Optional[Mapping], arch: str, host_flags) -> Check:
    """``platform.features`` (OCI WG proposal E): every feature is mandatory; one compat does
    not know makes the entry ineligible. Fit: the number of features (more specific)."""
    feats = (desc_platform or {}).get("features")
    if not feats:
        return ok("platform.features", "", (0,))
    if not isinstance(feats, list) or not all(isinstance(f, str) for f in feats):
        return fail("platform.features", "platform.features must be a list of strings")
    from compat.vocab.data import load as load_data
    table = load_data("platform_features").get(arch, {})
    unknown = [f for f in feats if f.lower() not in table]
    if unknown:
        return fail("platform.features", f"unknown platform feature{'s' if len(unknown) > 1 else ''} "
                                         f"{', '.join(unknown)} (proposal E: ineligible)")
    if host_flags is None:
        return Check("platform.features", False, "unknown: cpu.features (state them with --assume cpu.features=...)")
    missing = [f for f in feats if table[f.lower()] not in host_flags]
    if missing:
        return fail("platform.features", f"host CPU lacks {', '.join(missing)}")
    return ok("platform.features", "features " + ",".join(feats), (len(feats),))
