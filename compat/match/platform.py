"""Platform filter with containerd's semantics: OS and architecture equal after
normalisation, a variant ladder (amd64 ``v1``..``v4`` against the host's x86-64 level, arm64
``v8.x``/``v9.x``), and ``os.features`` a subset of the host's."""
from __future__ import annotations

import re
from typing import Mapping, NamedTuple, Optional, Tuple

from compat.match.check import Check, fail, ok

_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}
#: containerd's arm64 v9.x <-> v8.y table (arm64variantToVersion)
_V9_TO_V8 = {0: 5, 1: 6, 2: 7, 3: 8, 4: 9, 5: 9, 6: 9, 7: 9}


class Platform(NamedTuple):
    os: str
    arch: str
    variant: str = ""
    features: Tuple[str, ...] = ()

    def __str__(self):
        return "/".join(x for x in (self.os, self.arch, self.variant) if x)


def normalise(os_: str, arch: str, variant: Optional[str] = "") -> Platform:
    os_ = (os_ or "").lower()
    arch = _ARCH.get((arch or "").lower(), (arch or "").lower())
    variant = (variant or "").lower()
    if arch == "amd64" and variant == "v1":
        variant = ""
    if arch == "arm64":
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        elif re.fullmatch(r"\d+(\.\d+)?", variant):
            variant = "v" + variant
    return Platform(os_, arch, variant)


def parse(text: str) -> Platform:
    """``linux/amd64/v3`` -> Platform (for ``--platform``)."""
    parts = text.strip().split("/")
    if len(parts) < 2 or not all(parts[:2]):
        from compat.errors import BadInput
        raise BadInput(f"--platform {text!r}: expected OS/ARCH[/VARIANT]")
    return normalise(parts[0], parts[1], parts[2] if len(parts) > 2 else "")


def from_descriptor(platform: Optional[Mapping]) -> Optional[Platform]:
    if not platform:
        return None
    p = normalise(platform.get("os", ""), platform.get("architecture", ""), platform.get("variant", ""))
    return Platform(p.os, p.arch, p.variant, tuple(platform.get("os.features") or ()))


def _arm_version(variant: str) -> Optional[Tuple[int, int]]:
    if variant == "":
        return (8, 0)
    m = re.fullmatch(r"v(\d+)(?:\.(\d+))?", variant)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def variant_rank(cand: Platform, host: Platform) -> Optional[int]:
    """How high the candidate's variant sits on the host's ladder (None: not on it)."""
    if cand.variant == host.variant:
        return _level(cand)
    if cand.arch == "amd64":
        c = int(cand.variant[1:]) if cand.variant else 1
        h = int(host.variant[1:]) if host.variant else 1
        return c if c <= h else None
    if cand.arch == "arm64":
        c, h = _arm_version(cand.variant), _arm_version(host.variant)
        if c is None or h is None:
            return None
        if c[0] == 8 and h[0] == 9:
            h = (8, _V9_TO_V8.get(h[1], 9))
        return c[1] + 10 * c[0] if c[0] == h[0] and c[1] <= h[1] else None
    if cand.variant == "":
        return 0
    return None


def _level(p: Platform) -> int:
    if p.arch == "amd64":
        return int(p.variant[1:]) if p.variant else 1
    v = _arm_version(p.variant) if p.arch == "arm64" else None
    return v[1] + 10 * v[0] if v else 0


def check(desc_platform: Optional[Mapping], host: Platform) -> Check:
    cand = from_descriptor(desc_platform)
    if cand is None:
        return fail("platform", "descriptor has no platform; compat does not guess an architecture")
    if (cand.os, cand.arch) != (host.os, host.arch):
        return fail("platform", f"{cand} is not {host.os}/{host.arch}")
    rank = variant_rank(cand, host)
    if rank is None:
        return fail("platform", f"variant {cand.variant} is above what the host runs ({host})")
    missing = sorted(set(cand.features) - set(host.features))
    if missing:
        return fail("platform", f"os.features {', '.join(missing)} not offered by the host")
    return ok("platform", f"{cand} runs on {host}", (rank,))


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
