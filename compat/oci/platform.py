"""The ``platform`` of a descriptor and of ``--platform``: containerd's grammar and
normalisation (github.com/containerd/platforms), and why a descriptor's platform object is
malformed. Matching a platform against a host (the variant ladder) is compat.match.platform.
"""
from __future__ import annotations

import re

from compat.errors import BadInput, printable
from compat.record import Record
from compat.vocab.data import arch_aliases

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Mapping, Optional, Tuple

_OS = {"macos": "darwin"}
#: containerd's specifier grammar (platforms.go specifierRe, osRe); bounded lengths
COMPONENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_OS_SPEC = re.compile(r"([A-Za-z0-9_-]{1,64})(?:\(([A-Za-z0-9_.%-]{0,64})((?:\+[A-Za-z0-9_.%-]{1,64}){0,32})\))?")
_AMD64 = re.compile(r"v([1-9][0-9]{0,2})")
ARM64_VARIANT = re.compile(r"v?(8|9)(?:\.([0-9]{1,2}))?")
ARM_VARIANT = re.compile(r"v?([1-9])")
V8_MAX = 9            # containerd's table: v8.0 .. v8.9 (there is no v8.10)


class Platform(Record):
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
    shown = "'" + printable(variant, 40) + "'"
    if arch == "amd64":
        return None if _AMD64.fullmatch(variant) else f"variant {shown} is not an amd64 level (v1, v2, v3, v4)"
    if arch == "arm64":
        m = ARM64_VARIANT.fullmatch(variant)
        if m and (m.group(1) == "9" or int(m.group(2) or 0) <= V8_MAX):
            return None
        return f"variant {shown} is not an Arm level (v8, v8.1 .. v8.9, v9, v9.1, ...)"
    if arch == "arm":
        return None if ARM_VARIANT.fullmatch(variant) else f"variant {shown} is not an arm variant (v5, v6, v7, v8)"
    return None if COMPONENT.fullmatch(variant) else f"variant {shown} has characters outside [A-Za-z0-9_.-]"


def normalise(os_: str, arch: str, variant: Optional[str] = "", features=()) -> Platform:
    """containerd's Normalize (normalizeOS, normalizeArch); arm64 ``8.2`` also reads ``v8.2``
    (containerd leaves it unmatched: spec/selection.md, differences)."""
    os_ = (os_ or "").lower()
    os_ = _OS.get(os_, os_)
    arch = (arch or "").lower()
    variant = (variant or "").lower()
    if arch in ("armhf", "armel"):
        arch, variant = "arm", "v7" if arch == "armhf" else "v6"
    arch = arch_aliases().get(arch, arch)
    if arch == "386":
        variant = ""
    elif arch == "amd64" and variant == "v1":
        variant = ""
    elif arch == "arm64":
        m = ARM64_VARIANT.fullmatch(variant)
        if m:
            minor = int(m.group(2) or 0)
            variant = "" if m.group(1) == "8" and minor == 0 else f"v{m.group(1)}" + (f".{minor}" if minor else "")
    elif arch == "arm":
        variant = "v7" if variant in ("", "7") else ("v" + variant if variant.isdigit() else variant)
    return Platform(os_, arch, variant, tuple(sorted(set(features))))


def parse(text: str) -> Platform:
    """``OS[(VERSION[+FEATURE]...)]/ARCH[/VARIANT]`` (containerd's specifier) -> Platform, for
    ``--platform``. Anything else, or a variant its architecture does not have, is bad input."""
    parts = text.split("/") if isinstance(text, str) and len(text) <= 512 else []
    os_m = _OS_SPEC.fullmatch(parts[0]) if parts else None
    if not 2 <= len(parts) <= 3 or os_m is None or not all(COMPONENT.fullmatch(p) for p in parts[1:]):
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
        if not isinstance(v, str) or not COMPONENT.fullmatch(v):
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


def arm64_version(variant: str) -> Tuple[int, int]:
    m = ARM64_VARIANT.fullmatch(variant or "v8")
    return int(m.group(1)), int(m.group(2) or 0)
