"""Platform filter with containerd's semantics (github.com/containerd/platforms): OS and
architecture equal after normalisation, the variant on the host's *ladder* (containerd's
``platformVector``: the exact variant first, then each lower one in order), and ``os.features``
a subset of the host's, more of them preferred.

The ladder is the platform's own and independent of archspec: amd64 ``vN .. v2, v1``; arm64
``v9.y .. v9.1, v9, v8.min(y+5, 9) .. v8.1, v8``; arm ``vN .. v5``; other architectures their
exact variant. spec/selection.md lists where compat deliberately differs from containerd.
"""
from __future__ import annotations


from compat.match.check import Check, fail, ok, undecided, unknown
from compat.oci.platform import ARM_VARIANT, V8_MAX, Platform, arm64_version, checked, from_descriptor, normalise, \
    parse, problems, variant_problem  # noqa: F401 - re-exported: the matcher's vocabulary
from compat.vocab.data import load as load_data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping, Optional, Tuple

__all__ = ["ARM_VARIANT", "V8_MAX", "Platform", "arm64_version", "checked", "from_descriptor", "normalise",
           "parse", "problems", "variant_problem", "ladder", "rung", "check", "check_features"]

_V9_TO_V8 = 5          # v9.y runs what v8.(y+5) runs (containerd's arm64variantToVersion)


# -- the ladder ---------------------------------------------------------------------------------

def _arm64_name(major: int, minor: int) -> str:
    return "" if (major, minor) == (8, 0) else f"v{major}" + (f".{minor}" if minor else "")


def ladder(host: Platform) -> Tuple[str, ...]:
    """The variants a host of this platform runs, best first (containerd's platformVector for
    the host's own architecture)."""
    if host.arch == "amd64":
        level = int(host.variant[1:]) if host.variant else 1
        return tuple(f"v{n}" for n in range(level, 1, -1)) + ("",)
    if host.arch == "arm64":
        major, minor = arm64_version(host.variant)
        steps = [(major, m) for m in range(minor, -1, -1)]
        if major == 9:
            steps += [(8, m) for m in range(min(minor + _V9_TO_V8, V8_MAX), -1, -1)]
        return tuple(_arm64_name(*s) for s in steps)
    if host.arch == "arm":
        level = int(host.variant[1:]) if ARM_VARIANT.fullmatch(host.variant or "") else 7
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
        return arm64_version(cand.variant) > arm64_version(host.variant)
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
    table = load_data("platform_features").get(arch, {})
    unknown = [f for f in feats if f.lower() not in table]
    if unknown:
        return fail("platform.features", f"unknown platform feature{'s' if len(unknown) > 1 else ''} "
                                         f"{', '.join(unknown)} (proposal E: ineligible)")
    if host_flags is None:
        return undecided("platform.features", "unknown: cpu.features (state them with --assume cpu.features=...)")
    missing = [f for f in feats if table[f.lower()] not in host_flags]
    if missing:
        return fail("platform.features", f"host CPU lacks {', '.join(missing)}")
    return ok("platform.features", "features " + ",".join(feats), (len(feats),))
